// Package sink applies ban decisions to the kernel firewall through nftables netlink (no shelling
// out). Table "inet portcullis" holds one input chain, and per jail and family two sets — single
// addresses in a hash set with "flags timeout" (one element per ban, looked up in constant time),
// networks in a set with "flags interval, timeout" — and per set one rule per port range dropping
// or rejecting its members; jails
// that ask for it (chain_hook = forward) get the same rules in a forward chain. Bans are
// set elements with a kernel timeout equal to the ban's remaining time, so the kernel lifts them even
// if the daemon is gone. Every batch of changes is one netlink transaction.
package sink

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/portcullis/portcullis/config"
)

// JailSpec is what the firewall needs to know about a jail.
type JailSpec struct {
	Name      string
	Ports     []config.PortRange // empty: every port
	Protocol  string             // tcp, udp or all
	BlockType string             // drop or reject
	// Forward also filters forwarded traffic (containers, VMs: Docker publishes ports through
	// the forward path, which an input chain never sees); Input the host's own (the default).
	Input, Forward bool
}

// Element is one banned prefix in a jail's set. Timeout 0 means no timeout (a permanent ban).
type Element struct {
	Jail    string
	Prefix  netip.Prefix
	Timeout time.Duration
}

// NFTOptions configure the sink.
type NFTOptions struct {
	Table string // "portcullis" when empty
	Chain string // "input" when empty
	// Chunk caps elements per netlink message so a batch stays under the kernel's message limits.
	Chunk int
	// DefaultBuffers keeps the socket's default buffer sizes (tests of the in-parts fallback).
	DefaultBuffers bool
	// conn replaces the connection's options (benchmarks pass google/nftables' test dial, which
	// hands the netlink messages to a stand-in instead of the kernel).
	conn []nftables.ConnOption
}

// NFT is the nftables sink. It is safe for concurrent use.
type NFT struct {
	opts  NFTOptions
	mu    sync.Mutex
	conn  *nftables.Conn
	table *nftables.Table
	jails map[string]*jailSets
}

type jailSets struct {
	spec       JailSpec
	v4, v6     *nftables.Set // single addresses
	net4, net6 *nftables.Set // networks
}

// setOf is the set a prefix belongs in.
func (js *jailSets) setOf(p netip.Prefix) *nftables.Set {
	switch {
	case p.IsSingleIP() && p.Addr().Is4():
		return js.v4
	case p.IsSingleIP():
		return js.v6
	case p.Addr().Is4():
		return js.net4
	}
	return js.net6
}

func (js *jailSets) all() []*nftables.Set { return []*nftables.Set{js.v4, js.v6, js.net4, js.net6} }

var _ Firewall = (*NFT)(nil)

// NewNFT opens a netlink connection to nftables in the current network namespace.
func NewNFT(opts NFTOptions) (*NFT, error) {
	if opts.Table == "" {
		opts.Table = "portcullis"
	}
	if opts.Chain == "" {
		opts.Chain = "input"
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 512
	}
	// Large batches (a restart restoring 100k bans is one transaction) need socket buffers beyond
	// the default wmem_max: as root, force them; otherwise keep the defaults.
	bigBuffers := func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return nil
		}
		_ = raw.Control(func(fd uintptr) {
			for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
				if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], 64<<20) != nil {
					_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], 64<<20)
				}
			}
		})
		return nil
	}
	var connOpts []nftables.ConnOption
	switch {
	case opts.conn != nil:
		connOpts = opts.conn
	case !opts.DefaultBuffers:
		connOpts = append(connOpts, nftables.WithSockOptions(bigBuffers))
	}
	c, err := nftables.New(connOpts...)
	if err != nil {
		return nil, fmt.Errorf("cannot open nftables netlink: %w", err)
	}
	return &NFT{opts: opts, conn: c, table: &nftables.Table{Name: opts.Table, Family: nftables.TableFamilyINet},
		jails: make(map[string]*jailSets)}, nil
}

// SetName returns the set of a jail's single addresses of a family ("sshd-v4", "sshd-v6").
func SetName(jail string, v6 bool) string {
	if v6 {
		return jail + "-v6"
	}
	return jail + "-v4"
}

// NetSetName returns the set of a jail's networks of a family ("sshd-v4-net", "sshd-v6-net").
func NetSetName(jail string, v6 bool) string { return SetName(jail, v6) + "-net" }

// Build replaces the table in one transaction (add, delete, add: the idiom that works whether the
// table exists or not), so there is never a moment without the bans.
func (n *NFT) Build(jails []JailSpec, elems []Element) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.conn
	c.AddTable(n.table)
	c.DelTable(n.table)
	c.AddTable(n.table)
	policy := nftables.ChainPolicyAccept
	chain := c.AddChain(&nftables.Chain{
		Name: n.opts.Chain, Table: n.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(-1), Policy: &policy,
	})
	// The forward chain, when a jail asks for it, runs at priority -1 like the input chain: before
	// iptables-nft's filter table (0), so before Docker's own FORWARD and DOCKER-USER rules.
	var forward *nftables.Chain
	for _, j := range jails {
		if j.Forward && forward == nil {
			forward = c.AddChain(&nftables.Chain{
				Name: "forward", Table: n.table, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-1), Policy: &policy,
			})
		}
	}
	n.jails = make(map[string]*jailSets, len(jails))
	for _, j := range jails {
		js := &jailSets{spec: j}
		js.v4 = &nftables.Set{Table: n.table, Name: SetName(j.Name, false), KeyType: nftables.TypeIPAddr, HasTimeout: true}
		js.v6 = &nftables.Set{Table: n.table, Name: SetName(j.Name, true), KeyType: nftables.TypeIP6Addr, HasTimeout: true}
		js.net4 = &nftables.Set{Table: n.table, Name: NetSetName(j.Name, false), KeyType: nftables.TypeIPAddr, Interval: true, HasTimeout: true}
		js.net6 = &nftables.Set{Table: n.table, Name: NetSetName(j.Name, true), KeyType: nftables.TypeIP6Addr, Interval: true, HasTimeout: true}
		for _, s := range js.all() {
			if err := c.AddSet(s, nil); err != nil {
				return fmt.Errorf("cannot add set %s: %w", s.Name, err)
			}
		}
		for _, ch := range []*nftables.Chain{chain, forward} {
			if ch == nil || ch == chain && !j.Input && j.Forward || ch == forward && !j.Forward {
				continue
			}
			for _, set := range js.all() {
				for _, r := range jailRules(n.table, ch, js.spec, set) {
					c.AddRule(r)
				}
			}
		}
		n.jails[j.Name] = js
	}
	if err := n.queue(elems, false); err != nil {
		return err
	}
	err := c.Flush()
	if err != nil && errors.Is(err, syscall.EMSGSIZE) && len(elems) > 0 {
		// Too big for one message even with forced buffers: build the table first, then add the
		// elements in several transactions.
		if err := n.buildInParts(jails, elems); err != nil {
			return fmt.Errorf("cannot build nftables table %s in parts: %w", n.opts.Table, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot build nftables table %s: %w", n.opts.Table, err)
	}
	return nil
}

// buildInParts is Build for element lists too large for one netlink transaction.
func (n *NFT) buildInParts(jails []JailSpec, elems []Element) error {
	n.mu.Unlock()
	err := n.Build(jails, nil)
	n.mu.Lock()
	if err != nil {
		return err
	}
	const part = 1000 // bans per transaction: at most two elements each, well under the default 208 KiB
	for len(elems) > 0 {
		k := min(part, len(elems))
		if err := n.queue(elems[:k], false); err != nil {
			return err
		}
		if err := n.conn.Flush(); err != nil {
			return err
		}
		elems = elems[k:]
	}
	return nil
}

// jailRules are the rules dropping or rejecting the members of one of a jail's sets.
func jailRules(t *nftables.Table, ch *nftables.Chain, spec JailSpec, set *nftables.Set) []*nftables.Rule {
	proto, off, ln := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if set.KeyType == nftables.TypeIP6Addr {
		proto, off, ln = byte(unix.NFPROTO_IPV6), 8, 16
	}
	base := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
	var l4 byte
	switch spec.Protocol {
	case "tcp":
		l4 = unix.IPPROTO_TCP
	case "udp":
		l4 = unix.IPPROTO_UDP
	}
	if l4 != 0 {
		base = append(base,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}})
	}
	tail := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: ln},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{},
	}
	if spec.BlockType == "reject" {
		if l4 == unix.IPPROTO_TCP {
			tail = append(tail, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		} else {
			tail = append(tail, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH})
		}
	} else {
		tail = append(tail, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	ports := spec.Ports
	if l4 == 0 || len(ports) == 0 {
		return []*nftables.Rule{{Table: t, Chain: ch, Exprs: concat(base, tail)}}
	}
	var rules []*nftables.Rule
	for _, p := range ports {
		match := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
		if p.From == p.To {
			match = append(match, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.From)})
		} else {
			match = append(match, &expr.Range{Op: expr.CmpOpEq, Register: 1,
				FromData: binaryutil.BigEndian.PutUint16(p.From), ToData: binaryutil.BigEndian.PutUint16(p.To)})
		}
		rules = append(rules, &nftables.Rule{Table: t, Chain: ch, Exprs: concat(base, match, tail)})
	}
	return rules
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// appendElems appends a prefix's elements: an address alone, a network as an interval.
func appendElems(dst []nftables.SetElement, p netip.Prefix, timeout time.Duration) []nftables.SetElement {
	if p.IsSingleIP() {
		return append(dst, nftables.SetElement{Key: p.Addr().AsSlice(), Timeout: timeout})
	}
	return append(dst, intervalElems(p, timeout)...)
}

// intervalElems returns the start and (exclusive) end elements of a prefix.
func intervalElems(p netip.Prefix, timeout time.Duration) []nftables.SetElement {
	p = p.Masked()
	start := p.Addr()
	out := []nftables.SetElement{{Key: start.AsSlice(), Timeout: timeout}}
	last := lastAddr(p)
	if next := last.Next(); next.IsValid() {
		out = append(out, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// queue appends element messages to the connection's pending batch, chunked.
func (n *NFT) queue(list []Element, del bool) error {
	groups := make(map[*nftables.Set][]nftables.SetElement)
	var order []*nftables.Set
	for _, e := range list {
		js, ok := n.jails[e.Jail]
		if !ok {
			return fmt.Errorf("no nftables sets for jail %q", e.Jail)
		}
		set := js.setOf(e.Prefix)
		g, ok := groups[set]
		if !ok {
			order = append(order, set)
			g = make([]nftables.SetElement, 0, len(list))
		}
		groups[set] = appendElems(g, e.Prefix, e.Timeout)
	}
	for _, set := range order {
		list := groups[set]
		for len(list) > 0 {
			// Never split a start element from its interval end.
			m := min(len(list), n.opts.Chunk)
			if m < len(list) && list[m].IntervalEnd {
				m++
			}
			var err error
			if del {
				err = n.conn.SetDeleteElements(set, list[:m])
			} else {
				err = n.conn.SetAddElements(set, list[:m])
			}
			if err != nil {
				return err
			}
			list = list[m:]
		}
	}
	return nil
}

// overlapping reports whether an added network overlaps a different removed one in the same jail
// (aggregation: a /56 replacing its /64s) — both in one interval set. Addresses are in sets of
// their own. The same prefix removed and added (a prolonged ban: a new timeout) is replaced in one
// transaction, so no reader of the set ever misses it.
func overlapping(add, del []Element) bool {
	var nets []Element
	for _, d := range del {
		if !d.Prefix.IsSingleIP() {
			nets = append(nets, d)
		}
	}
	if len(nets) == 0 {
		return false
	}
	for _, a := range add {
		if a.Prefix.IsSingleIP() {
			continue
		}
		for _, d := range nets {
			if a.Jail == d.Jail && a.Prefix != d.Prefix && a.Prefix.Overlaps(d.Prefix) {
				return true
			}
		}
	}
	return false
}

// Apply adds and removes elements in one transaction. If the kernel refuses the batch, each change
// is retried alone so one bad element cannot hold back the rest; removing an element that already
// expired is not an error.
func (n *NFT) Apply(add, del []Element) error {
	if len(add) == 0 && len(del) == 0 {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.queue(del, true); err != nil {
		return err
	}
	if overlapping(add, del) {
		// Aggregation: removing and adding the same interval boundaries in one transaction leaves the kernel's interval tree with a stray range, so
		// the removals go first, in their own transaction, the additions right after.
		if err := n.conn.Flush(); err != nil && !isNotFound(err) {
			return fmt.Errorf("cannot remove the elements an aggregated ban replaces: %w", err)
		}
	}
	if err := n.queue(add, false); err != nil {
		return err
	}
	err := n.conn.Flush()
	if err == nil {
		return nil
	}
	if len(add)+len(del) == 1 && !(len(del) == 1 && isNotFound(err)) {
		return err
	}
	var errs []error
	for _, d := range del {
		if err := n.queue([]Element{d}, true); err != nil {
			return err
		}
		if err := n.conn.Flush(); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("cannot remove %s from %s: %w", d.Prefix, d.Jail, err))
		}
	}
	for _, a := range add {
		if err := n.queue([]Element{a}, false); err != nil {
			return err
		}
		if err := n.conn.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("cannot add %s to %s: %w", a.Prefix, a.Jail, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	// google/nftables formats the cause with %v on its listing paths (GetSets), which drops the
	// error chain; the text is all that is left there.
	return errors.Is(err, syscall.ENOENT) || strings.Contains(err.Error(), syscall.ENOENT.Error())
}

// Present reports whether our table and every jail's sets exist.
func (n *NFT) Present() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	sets, err := n.conn.GetSets(n.table)
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, err
	}
	have := make(map[string]bool, len(sets))
	for _, s := range sets {
		have[s.Name] = true
	}
	for _, js := range n.jails {
		for _, s := range js.all() {
			if !have[s.Name] {
				return false, nil
			}
		}
	}
	return true, nil
}

// Elements lists the prefixes in a jail's sets, as the kernel holds them now (expired elements
// are gone). The networks' interval elements are paired back into prefixes.
func (n *NFT) Elements(jail string) ([]netip.Prefix, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	js, ok := n.jails[jail]
	if !ok {
		return nil, fmt.Errorf("no nftables sets for jail %q", jail)
	}
	var out []netip.Prefix
	for _, set := range js.all() {
		els, err := n.conn.GetSetElements(set)
		if err != nil {
			return nil, fmt.Errorf("cannot list set %s: %w", set.Name, err)
		}
		if set.Interval {
			out = append(out, pairIntervals(els)...)
			continue
		}
		for _, e := range els {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			}
		}
	}
	return out, nil
}

// pairIntervals turns interval set elements (a start, and the first address after the range
// flagged as its end) back into prefixes; a start without an end runs to the top of the space.
func pairIntervals(els []nftables.SetElement) []netip.Prefix {
	type point struct {
		a   netip.Addr
		end bool
	}
	var pts []point
	for _, e := range els {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			continue
		}
		pts = append(pts, point{a.Unmap(), e.IntervalEnd})
	}
	// By address; where one range ends exactly where the next starts (adjacent bans), the end
	// comes first.
	slices.SortFunc(pts, func(x, y point) int {
		if c := x.a.Compare(y.a); c != 0 {
			return c
		}
		if x.end == y.end {
			return 0
		}
		if x.end {
			return -1
		}
		return 1
	})
	var out []netip.Prefix
	for i, p := range pts {
		if p.end {
			continue
		}
		// The prefix is the largest one starting at p.a that ends before the next point.
		bits := 0
		for ; bits <= p.a.BitLen(); bits++ {
			pf := netip.PrefixFrom(p.a, bits)
			if pf.Masked().Addr() != p.a {
				continue
			}
			next := lastAddr(pf).Next()
			if i+1 < len(pts) && pts[i+1].end && next == pts[i+1].a || (i+1 == len(pts) || !pts[i+1].end) && !next.IsValid() {
				break
			}
		}
		if bits <= p.a.BitLen() {
			out = append(out, netip.PrefixFrom(p.a, bits))
		}
	}
	return out
}

// WatchDeletes calls changed whenever nftables reports that a table, chain, rule, set or set
// element was deleted — by anyone: element notifications do not say which table they belong to,
// so the caller checks (cheaply, and not more often than it can afford). It returns a function
// that stops watching.
func (n *NFT) WatchDeletes(changed func()) (stop func(), err error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	// Every event, filtered here: with a narrower action filter the library never delivers the
	// generation marker that ends each batch of events, and nothing arrives.
	mon := nftables.NewMonitor(nftables.WithMonitorAction(nftables.MonitorActionAny), nftables.WithMonitorObject(nftables.MonitorObjectAny))
	events, err := c.AddMonitor(mon)
	if err != nil {
		return nil, fmt.Errorf("cannot watch nftables: %w", err)
	}
	go func() {
		for ev := range events {
			switch ev.Type {
			case nftables.MonitorEventTypeDelTable, nftables.MonitorEventTypeDelChain, nftables.MonitorEventTypeDelRule,
				nftables.MonitorEventTypeDelSet, nftables.MonitorEventTypeDelSetElem:
			default:
				continue
			}
			var t *nftables.Table
			switch d := ev.Data.(type) {
			case *nftables.Table:
				t = d
			case *nftables.Chain:
				t = d.Table
			case *nftables.Set:
				t = d.Table
			case *nftables.Rule:
				t = d.Table
			default: // set elements: their table is not said
				changed()
				continue
			}
			if t != nil && t.Name == n.opts.Table {
				changed()
			}
		}
	}()
	return func() { mon.Close() }, nil
}

// Remove deletes the table (used by tests and on explicit request; a normal stop keeps the bans).
func (n *NFT) Remove() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conn.AddTable(n.table)
	n.conn.DelTable(n.table)
	return n.conn.Flush()
}
