package ban

import "net/netip"

// Imported is the reason of bans taken over from fail2ban's database.
const Imported = "imported"

// ProtectedPrefix is Protected for a ban of a network: its address, and any protected address
// inside it.
func (m *Manager) ProtectedPrefix(jail uint16, p netip.Prefix) error {
	if err := m.Protected(jail, p.Addr()); err != nil {
		return err
	}
	if !p.IsSingleIP() && m.protectedInside(jail, p) {
		return &ProtectedError{Addr: p.Addr(), Reason: "the network " + p.String() + " holds a protected address"}
	}
	return nil
}

// Import takes over bans decided elsewhere (fail2ban's database: reason Imported; another node:
// Fleet) with their own start, end and count, and merges their ban history (the larger count
// wins) so bantime.increment goes on from where it was. The caller has left out protected
// prefixes (ProtectedPrefix); a prefix banned here already keeps its ban. It appends a decision
// with reason per ban taken.
func (m *Manager) Import(list []Active, hist map[netip.Prefix]History, jailHist map[uint16]map[netip.Prefix]History, reason string, dst []Decision) []Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	merge := func(cur, h History) History {
		cur.Count, cur.Last = max(cur.Count, h.Count), max(cur.Last, h.Last)
		return cur
	}
	for p, h := range hist {
		m.hist[p] = merge(m.hist[p], h)
	}
	for j, hs := range jailHist {
		for p, h := range hs {
			k := bkey{prefix: p, jail: j}
			m.histJail[k] = merge(m.histJail[k], h)
		}
	}
	for _, a := range list {
		k := bkey{prefix: a.Prefix, jail: a.Jail}
		if int(a.Jail) >= len(m.pols) {
			continue
		}
		if _, ok := m.active[k]; ok || m.coveredLocked(a.Jail, a.Prefix) {
			continue
		}
		m.setActiveLocked(k, a)
		dst = append(dst, Decision{Op: OpBan, Jail: a.Jail, Prefix: a.Prefix, Start: a.Start, End: a.End,
			Count: a.Count, JailCount: m.histJail[k].Count, Reason: reason})
	}
	return dst
}

// Prolong extends the ban of addr in jail as banning it again does in fail2ban (addBanTicket on a
// banned address): its end moves to the jail's bantime from now when that is later. It appends
// the pair of decisions that replaces the ban, or nothing.
func (m *Manager) Prolong(jail uint16, addr netip.Addr, dst []Decision) []Decision {
	return m.prolong(m.banKey(jail, addr, netip.Prefix{}), dst)
}

// ExtendTo moves the end of the ban of prefix in jail to end (0: forever) when that is later, as
// another node's longer ban of it says: the pair of decisions that replaces it (the ban's reason
// FleetProlonged), or nothing.
func (m *Manager) ExtendTo(jail uint16, prefix netip.Prefix, end int64, dst []Decision) []Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.extendLocked(bkey{prefix: prefix, jail: jail}, end, FleetProlonged, dst)
}

// Fleet is the reason of bans and unbans another node of the fleet decided; FleetProlonged of a
// ban here extended by another node's longer one (a prolongation, as Prolonged, that another node
// decided: not shared again, no actions run for it here).
const (
	Fleet          = "fleet"
	FleetProlonged = "fleet prolonged"
)

// FromFleet reports whether a change of this reason was decided by another node: it is not
// shared again and runs no action here.
func FromFleet(reason string) bool { return reason == Fleet || reason == FleetProlonged }

// Extends reports whether a ban of this reason extends one in force (a prolongation, here or
// from the fleet) rather than starting one: no new ban for the timeline or recidive.
func Extends(reason string) bool { return reason == Prolonged || reason == FleetProlonged }
