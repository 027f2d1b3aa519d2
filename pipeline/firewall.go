package pipeline

import (
	"net/netip"

	"github.com/portcullis/portcullis/sink"
)

// rebuild replaces the firewall table with eng's jails and its active bans.
func (d *Daemon) rebuild(eng *engine) error {
	var specs []sink.JailSpec
	for _, j := range eng.jails {
		if j.Firewall {
			specs = append(specs, sink.JailSpec{Name: j.Name, Ports: j.Ports, Protocol: j.Protocol, BlockType: j.BlockType,
				Input: j.ChainHookInput, Forward: j.ChainHookForward})
		}
	}
	now := d.opts.Now().Unix()
	var elems []sink.Element
	for _, a := range eng.bans.Active(0, true) {
		if !eng.jails[a.Jail].Firewall {
			continue
		}
		el, ok := sink.ElementOf(eng.jails[a.Jail].Name, a.Prefix, a.End, now)
		if ok {
			elems = append(elems, el)
		}
	}
	return d.fw.Build(specs, elems)
}

// checkFirewall rebuilds the table when it or a jail set is gone and otherwise, with reconcile,
// brings the sets' elements in line with the bans in force.
func (d *Daemon) checkFirewall(reconcile bool) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	eng := d.current()
	ok, err := d.fw.Present()
	switch {
	case err != nil:
		d.log.Warn("cannot check the nftables table", "err", err)
	case !ok:
		d.log.Warn("the nftables table or a jail set is missing (deleted, or the ruleset flushed); rebuilding it from the bans in force")
		if err := d.rebuild(eng); err != nil {
			d.log.Error("cannot rebuild the nftables table", "err", err)
		}
	case reconcile:
		d.reconcile(eng)
	}
}

// reconcileEvery is how many table checks pass between element-by-element reconciles (a minute at
// the default --check-every of 5 s): listing every set costs more than checking it exists.
const reconcileEvery = 12

// reconcile makes each jail's sets hold exactly the bans in force, in one transaction: elements
// someone deleted (nft delete element) are added back with their remaining time, elements no ban
// accounts for are removed. Never by unbanning everything first.
func (d *Daemon) reconcile(eng *engine) {
	now := d.opts.Now().Unix()
	var add, del []sink.Element
	for id, j := range eng.jails {
		if !j.Firewall {
			continue // its actions name no firewall: nothing of it is in the kernel
		}
		have, err := d.fw.Elements(j.Name)
		if err != nil {
			d.log.Warn("cannot list the nftables set", "jail", j.Name, "err", err)
			return
		}
		want := make(map[netip.Prefix]int64)
		for _, a := range eng.bans.Active(uint16(id), false) {
			if a.End == 0 || a.End > now+1 { // about to expire: the kernel's own timeout is due
				want[a.Prefix] = a.End
			}
		}
		inSet := make(map[netip.Prefix]bool, len(have))
		for _, p := range have {
			inSet[p] = true
			if _, ok := want[p]; !ok {
				del = append(del, sink.Element{Jail: j.Name, Prefix: p})
			}
		}
		for p, end := range want {
			if !inSet[p] {
				if el, ok := sink.ElementOf(j.Name, p, end, now); ok {
					add = append(add, el)
				}
			}
		}
	}
	if len(add) == 0 && len(del) == 0 {
		return
	}
	d.log.Warn("nftables sets differ from the bans in force; reconciling", "missing", len(add), "stale", len(del))
	if err := d.fw.Apply(add, del); err != nil {
		d.log.Error("cannot reconcile the nftables sets", "err", err)
	}
}
