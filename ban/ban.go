// Package ban turns window crossings and manual requests into ban and unban decisions. It owns the
// set of active bans, refuses to ban anything protected (loopback always; ignoreip; ignoreself: every
// address of this machine), and expires bans when their time is up.
package ban

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/window"
)

// Op is what a decision does.
type Op uint8

const (
	OpBan Op = iota + 1
	OpUnban
)

func (o Op) String() string {
	switch o {
	case OpBan:
		return "ban"
	case OpUnban:
		return "unban"
	}
	return "?"
}

// Decision is a ban or unban of a prefix in a jail.
type Decision struct {
	Op     Op
	Jail   uint16
	Prefix netip.Prefix
	Start  int64  // unix seconds
	End    int64  // unix seconds; 0 means forever
	Count  uint32 // how many times this prefix has been banned, this ban included
	// JailCount is Count in this jail only.
	JailCount uint32
	Reason    string
	// Evidence is why a ban from failures was made (nil otherwise), for the audit log.
	Evidence *Evidence
}

// Evidence is what led to a ban: the failures counted and their lines.
type Evidence struct {
	Failures int
	Times    []uint32          // unix seconds, oldest first
	Matches  []string          // the failures' lines, the last maxmatches of them (none with maxmatches = 0)
	Fields   map[string]string // the filter's captures (user, fid, …) for actions' <F-*> tags
}

// Active is a ban in force.
type Active struct {
	Jail   uint16
	Prefix netip.Prefix
	Start  int64
	End    int64 // 0 means forever
	Count  uint32
}

// Policy is one jail's ban rules. Jails are indexed by jail ID.
type Policy struct {
	Name string
	// Recidive marks a jail that counts the other jails' bans (Offences), not log lines.
	Recidive   bool
	BanTime    time.Duration // negative means forever
	MaxRetry   int           // caps a known offender's failure weight (Weights)
	IgnoreIP   []netip.Prefix
	IgnoreSelf bool
	Increment  Increment
	// IgnoreCommand, when set, is asked about every address that passed the other checks.
	IgnoreCommand *IgnoreCommand
	// Escalate aggregates bans: when Count bans of this jail lie inside one network of Bits
	// (banprefix6_escalate = 56:3 48:5, banprefix4_escalate = 16:4), that network is banned and
	// the bans inside it lifted, in one go. Rules of both families may be mixed.
	Escalate []Escalation
}

// Escalation and Increment are the jail's settings as config reads them.
type (
	Escalation = config.Escalation
	Increment  = config.Increment
)

// JailStats counts per-jail outcomes.
type JailStats struct {
	Bans    atomic.Uint64 // bans decided (automatic and manual)
	Ignored atomic.Uint64 // crossings or requests refused because the address is protected
	// IgnoreCommandErrors counts ignorecommand runs that failed (the address was banned).
	IgnoreCommandErrors atomic.Uint64
}

var (
	// ErrAlreadyBanned is returned for a manual ban of a prefix already banned in the jail.
	ErrAlreadyBanned = errors.New("already banned")
	// ErrNotBanned is returned for an unban of a prefix that is not banned.
	ErrNotBanned = errors.New("not banned")
	// ErrUnknownJail is returned for a jail id the manager does not know.
	ErrUnknownJail = errors.New("no such jail")
)

// ProtectedError says why an address may not be banned.
type ProtectedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *ProtectedError) Error() string { return fmt.Sprintf("%s is protected: %s", e.Addr, e.Reason) }

type bkey struct {
	prefix netip.Prefix
	jail   uint16
}

// Manager is safe for concurrent use.
type Manager struct {
	recidive []uint16 // jails with Policy.Recidive
	pols     []Policy
	self     []netip.Prefix
	now      func() time.Time
	Stats    []JailStats
	mu       sync.Mutex
	active   map[bkey]Active
	hist     map[netip.Prefix]History
	// histJail counts bans per jail and prefix, for bantime.increment without overalljails.
	histJail map[bkey]History
	// inWide counts the active bans strictly inside each network of an escalation rule (keyed by
	// jail and network), so a ban checks its rules without scanning every active ban.
	inWide map[bkey]int
	// anyIncrement: some jail has bantime.increment, so Weights has work to do.
	anyIncrement bool
	// ends orders the bans that end by their end time, so Expire looks only at the ones due. An
	// entry whose ban was lifted or changed since is stale and dropped when it comes up.
	ends endHeap
}

// History is how often a prefix was banned and when it was last banned (unix seconds).
type History struct {
	Count uint32
	Last  int64
}

// Options tune a Manager.
type Options struct {
	Now func() time.Time
	// SelfAddrs are this machine's addresses for ignoreself; read from the interfaces when nil.
	SelfAddrs []netip.Addr
}

// New returns a manager for the given jails.
func New(pols []Policy, opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SelfAddrs == nil {
		opts.SelfAddrs = LocalAddrs()
	}
	m := &Manager{pols: pols, now: opts.Now, Stats: make([]JailStats, len(pols)),
		active: make(map[bkey]Active), hist: make(map[netip.Prefix]History), histJail: make(map[bkey]History), inWide: make(map[bkey]int)}
	for id, p := range pols {
		m.anyIncrement = m.anyIncrement || p.Increment.Enabled
		if p.Recidive {
			m.recidive = append(m.recidive, uint16(id))
		}
	}
	for _, a := range opts.SelfAddrs {
		a = a.Unmap()
		m.self = append(m.self, netip.PrefixFrom(a, a.BitLen()))
	}
	return m
}

// decide bans addr, or the network pfx it was counted in (banprefix4/6; pfx invalid or a single
// address otherwise). A network that holds a protected address is never banned whole: the
// address alone is.
func (m *Manager) decide(jail uint16, addr netip.Addr, pfx netip.Prefix, reason string) (Decision, error) {
	if err := m.Protected(jail, addr); err != nil {
		if int(jail) < len(m.Stats) {
			m.Stats[jail].Ignored.Add(1)
		}
		return Decision{}, err
	}
	k := m.banKey(jail, addr, pfx)
	now := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.active[k]; ok || m.coveredLocked(jail, k.prefix) {
		return Decision{}, ErrAlreadyBanned
	}
	return m.banLocked(jail, k.prefix, now, reason), nil
}

// banKey is what a ban of addr, counted in network pfx, bans in jail: the network, or the
// address alone when pfx is invalid, not wider than the address, or holds a protected address.
func (m *Manager) banKey(jail uint16, addr netip.Addr, pfx netip.Prefix) bkey {
	addr = addr.Unmap()
	if !pfx.IsValid() || pfx.Bits() >= addr.BitLen() || !pfx.Contains(addr) || m.protectedInside(jail, pfx) {
		pfx = netip.PrefixFrom(addr, addr.BitLen())
	}
	return bkey{prefix: pfx, jail: jail}
}

// prolong extends the ban of key k, already banned, as fail2ban's BanManager
// does when maxretry failures come again during a ban (addBanTicket): the ban then ends bantime
// (the jail's, never increased) after now, if that is later than its end. The ban keeps its
// start and count; the pair of decisions it returns (lift, ban again, reason "prolonged") makes
// the firewall replace the element with one of the new timeout.
func (m *Manager) prolong(k bkey, dst []Decision) []Decision {
	now := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	end := int64(0)
	if bt := m.pols[k.jail].BanTime; bt >= 0 {
		end = now + int64((bt+time.Second-1)/time.Second)
	}
	return m.extendLocked(k, end, Prolonged, dst)
}

// extendLocked moves the end of the ban k in force to end (0: forever) when that is later,
// appending the pair of decisions that replaces it (the unban's reason Prolonged, the ban's
// reason).
func (m *Manager) extendLocked(k bkey, end int64, reason string, dst []Decision) []Decision {
	a, ok := m.active[k]
	if !ok || a.End == 0 || (end != 0 && end <= a.End) {
		return dst
	}
	dst = append(dst, a.unban(Prolonged))
	a.End = end
	m.setActiveLocked(k, a)
	return append(dst, Decision{Op: OpBan, Jail: k.jail, Prefix: k.prefix, Start: a.Start, End: end, Count: a.Count,
		JailCount: m.histJail[k].Count, Reason: reason})
}

// Prolonged is the reason of the decisions that extend a ban in force (Manager.prolong).
const Prolonged = "prolonged"

// Expired is the Reason of an unban whose time is up (the kernel's element timeout lifts it too).
const Expired = "expired"

// wider is the network of rule e that holds pfx in jail, when e is of pfx's family and wider.
func wider(e Escalation, jail uint16, pfx netip.Prefix) (bkey, bool) {
	if e.V6 != pfx.Addr().Is6() || e.Bits >= pfx.Bits() {
		return bkey{}, false
	}
	wide, _ := pfx.Addr().Prefix(e.Bits)
	return bkey{prefix: wide, jail: jail}, true
}

// coveredLocked reports whether an aggregated ban of jail already holds pfx.
func (m *Manager) coveredLocked(jail uint16, pfx netip.Prefix) bool {
	for _, e := range m.pols[jail].Escalate {
		if wk, ok := wider(e, jail, pfx); ok {
			if _, banned := m.active[wk]; banned {
				return true
			}
		}
	}
	return false
}

// banLocked records a ban of pfx in jail, with the jail's ban time and escalation.
func (m *Manager) banLocked(jail uint16, pfx netip.Prefix, now int64, reason string) Decision {
	k := bkey{prefix: pfx, jail: jail}
	pol := &m.pols[jail]
	previous := m.histJail[k].Count
	if pol.Increment.OverallJails {
		previous = m.hist[pfx].Count
	}
	bt := incrementedBanTime(&pol.Increment, pol.BanTime, previous, rand.Int64N)
	end := int64(0)
	if bt >= 0 {
		end = now + int64((bt+time.Second-1)/time.Second)
	}
	h, hj := m.hist[pfx], m.histJail[k]
	h.Count, h.Last, hj.Count, hj.Last = h.Count+1, now, hj.Count+1, now
	m.hist[pfx], m.histJail[k] = h, hj
	a := Active{Jail: jail, Prefix: pfx, Start: now, End: end, Count: h.Count}
	m.setActiveLocked(k, a)
	m.Stats[jail].Bans.Add(1)
	return Decision{Op: OpBan, Jail: jail, Prefix: pfx, Start: now, End: end, Count: a.Count, JailCount: hj.Count, Reason: reason}
}

// setActiveLocked and deleteActiveLocked change the active bans and keep inWide in step.
func (m *Manager) setActiveLocked(k bkey, a Active) {
	if _, ok := m.active[k]; !ok {
		m.countWideLocked(k, 1)
	}
	m.active[k] = a
	if a.End != 0 {
		heap.Push(&m.ends, endEntry{end: a.End, key: k})
	}
}

func (m *Manager) deleteActiveLocked(k bkey) {
	if _, ok := m.active[k]; ok {
		m.countWideLocked(k, -1)
		delete(m.active, k)
	}
}

func (m *Manager) countWideLocked(k bkey, d int) {
	if int(k.jail) >= len(m.pols) {
		return
	}
	for _, e := range m.pols[k.jail].Escalate {
		wk, ok := wider(e, k.jail, k.prefix)
		if !ok {
			continue
		}
		if m.inWide[wk] += d; m.inWide[wk] <= 0 {
			delete(m.inWide, wk)
		}
	}
}

// escalate applies the jail's aggregation rules after a ban of pfx: the decisions it returns ban
// the wider network and lift the bans inside it (removed from the set in the same transaction:
// an nftables interval set holds no overlapping elements). Rules cascade (/64s → /56 → /48).
func (m *Manager) escalate(jail uint16, pfx netip.Prefix) []Decision {
	pol := &m.pols[jail]
	if len(pol.Escalate) == 0 {
		return nil
	}
	now := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Decision
	for _, e := range pol.Escalate {
		wk, ok := wider(e, jail, pfx) // pfx: the ban, or the network it escalated to (cascade)
		if !ok || e.Count < 2 {
			continue
		}
		wide := wk.prefix
		if _, ok := m.active[wk]; ok || m.inWide[wk] < e.Count || m.protectedInside(jail, wide) {
			continue
		}
		var inside []bkey
		for k := range m.active {
			if k.jail == jail && k.prefix.Bits() > e.Bits && wide.Contains(k.prefix.Addr()) {
				inside = append(inside, k)
			}
		}
		if len(inside) < e.Count {
			continue
		}
		for _, k := range inside {
			a := m.active[k]
			m.deleteActiveLocked(k)
			out = append(out, a.unban("aggregated into "+wide.String()))
		}
		out = append(out, m.banLocked(jail, wide, now, fmt.Sprintf("%d bans inside", len(inside))))
		pfx = wide
	}
	return out
}

// unban is the decision lifting a.
func (a Active) unban(reason string) Decision {
	return Decision{Op: OpUnban, Jail: a.Jail, Prefix: a.Prefix, Start: a.Start, End: a.End, Count: a.Count, Reason: reason}
}

// Decide appends a ban decision for every crossing whose address is neither protected nor already
// banned in its jail, and prolongs the ban of one that is (prolong).
func (m *Manager) Decide(cs []window.Crossing, dst []Decision) []Decision {
	for _, c := range cs {
		d, err := m.decide(c.Jail, c.Addr, c.Prefix, "failures")
		switch {
		case err == nil:
			d.Evidence = &Evidence{Failures: c.Count, Times: c.Times, Matches: c.Matches, Fields: c.Fields}
			dst = append(dst, d)
			dst = append(dst, m.escalate(c.Jail, d.Prefix)...)
		case errors.Is(err, ErrAlreadyBanned):
			dst = m.prolong(m.banKey(c.Jail, c.Addr, c.Prefix), dst)
		}
	}
	return dst
}

// Ban decides a manual ban.
func (m *Manager) Ban(jail uint16, addr netip.Addr) (Decision, error) {
	return m.decide(jail, addr, netip.Prefix{}, "manual")
}

// Unban removes the ban of prefix in jail, or in every jail when all is set.
func (m *Manager) Unban(jail uint16, all bool, prefix netip.Prefix, reason string) []Decision {
	var out []Decision
	m.mu.Lock()
	defer m.mu.Unlock()
	single := prefix.IsSingleIP()
	for k, a := range m.active {
		// An address also lifts the network ban (banprefix) that holds it.
		if (k.prefix == prefix || single && k.prefix.Contains(prefix.Addr())) && (all || k.jail == jail) {
			m.deleteActiveLocked(k)
			out = append(out, a.unban(reason))
		}
	}
	return out
}

// Active lists the bans in force, of one jail or (all) of every jail.
func (m *Manager) Active(jail uint16, all bool) []Active {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Active, 0, len(m.active))
	for k, a := range m.active {
		if all || k.jail == jail {
			out = append(out, a)
		}
	}
	return out
}

// IsBanned reports whether prefix is banned in jail.
func (m *Manager) IsBanned(jail uint16, prefix netip.Prefix) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.active[bkey{prefix: prefix, jail: jail}]
	return ok
}

// Offences appends what the recidive jails count of ds: for each new ban in another jail (from
// failures or the CLI; not a prolonged one, for which fail2ban logs no "Ban"), one offence of the
// banned address at the ban's start per recidive jail. A recidive jail's own bans are not fed back.
func (m *Manager) Offences(ds []Decision, dst []window.Offence) []window.Offence {
	if len(m.recidive) == 0 {
		return dst
	}
	for _, d := range ds {
		if d.Op != OpBan || Extends(d.Reason) || int(d.Jail) < len(m.pols) && m.pols[d.Jail].Recidive {
			continue
		}
		for _, r := range m.recidive {
			dst = append(dst, window.Offence{Jail: r, Addr: d.Prefix.Addr(), Time: d.Start})
		}
	}
	return dst
}
