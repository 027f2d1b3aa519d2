package sink

import (
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/store"
)

// Change is one ban decision on its way out, with the jail by name so it survives a reload. It is
// made once from a ban.Decision (pipeline's toChanges) and every sink reads the same value.
type Change struct {
	Unban bool
	Ban   store.Ban
	// Kernel is false for expiries: the kernel's own timeout removed the element already.
	Kernel bool
	Reason string
	// Evidence is why a ban from failures was made; nil for other changes.
	Evidence *ban.Evidence
	// Bulk: one of many applied together (the fleet's bans in force as a node joins), which the
	// daemon logs as a whole; the log sink leaves it out.
	Bulk bool
}

// Sink receives every committed batch of changes, in commit order, on the applier's one
// goroutine, after the batch is in the store. The batch belongs to the applier: a sink copies
// what it keeps past Apply. A sink never blocks on slow work; it queues it. now is the commit's
// wall clock in unix seconds. Apply reports what it could not apply; the batch is not retried.
type Sink interface {
	Name() string
	Apply(batch []Change, now int64) error
}

// Stager is a sink whose work must survive a crash: the applier commits the jobs Stage makes from
// a batch in the same synced Pebble batch as the batch's bans, before any sink's Apply.
type Stager interface {
	Stage(batch []Change) []store.Job
}

// Firewall is what the pipeline needs from a firewall: NFT in the kernel, sinktest.Firewall in
// unit tests. Implementations are safe for concurrent use.
type Firewall interface {
	// Build replaces the whole table atomically: chain, sets, rules and the given elements.
	Build(jails []JailSpec, elems []Element) error
	// Apply adds and removes elements in one transaction.
	Apply(add, del []Element) error
	// Present reports whether the table and every jail's sets are still there.
	Present() (bool, error)
	// Elements lists the prefixes in a jail's sets now.
	Elements(jail string) ([]netip.Prefix, error)
	// WatchDeletes calls changed (from another goroutine) when elements or sets are deleted
	// behind our back, until stop is called.
	WatchDeletes(changed func()) (stop func(), err error)
}

// Kernel is the firewall as a sink: each batch is one transaction of its net effect. Skip, when
// set, names the jails that ban nothing in the kernel (their actions name no firewall).
type Kernel struct {
	FW   Firewall
	Skip func(jail string) bool
}

func (Kernel) Name() string { return "nftables" }

func (k Kernel) Apply(batch []Change, now int64) error {
	if k.Skip != nil {
		kept := make([]Change, 0, len(batch))
		for _, c := range batch {
			if !k.Skip(c.Ban.Jail) {
				kept = append(kept, c)
			}
		}
		batch = kept
	}
	add, del := NetEffect(batch, now)
	return k.FW.Apply(add, del)
}

// NetEffect is what a batch changes in the kernel's sets, key by key in order of first change: the
// first change of a key says whether its element is there before the batch (an unban: it is; a
// ban: it is not, or the key would not be banned again), the last whether it should be after. So a
// ban lifted later in the same batch (aggregated into a wider one) never reaches the kernel, an
// element lifted and banned again (a prolonged ban) is removed and added with its new timeout (the
// kernel keeps an element's timeout when it is added over), and one lifted, banned and lifted
// again is removed. Expiries (Kernel false) are left out: the kernel dropped those elements itself.
func NetEffect(batch []Change, now int64) (add, del []Element) {
	type key struct {
		jail   string
		prefix netip.Prefix
	}
	type state struct {
		before, after bool
		el            Element
	}
	states := map[key]*state{}
	var order []key
	for _, c := range batch {
		if !c.Kernel {
			continue
		}
		k := key{c.Ban.Jail, c.Ban.Prefix}
		st := states[k]
		if st == nil {
			st = &state{before: c.Unban}
			states[k] = st
			order = append(order, k)
		}
		if c.Unban {
			st.after = false
		} else {
			st.el, st.after = ElementOf(c.Ban.Jail, c.Ban.Prefix, c.Ban.End, now)
		}
	}
	for _, k := range order {
		st := states[k]
		if st.before {
			del = append(del, Element{Jail: k.jail, Prefix: k.prefix})
		}
		if st.after {
			add = append(add, st.el)
		}
	}
	return add, del
}

// ElementOf makes the element of a ban ending at end (unix seconds, 0: never) as of now: its
// timeout is what remains of the ban. A ban already over has no element (false).
func ElementOf(jail string, p netip.Prefix, end, now int64) (Element, bool) {
	el := Element{Jail: jail, Prefix: p}
	if end != 0 {
		if end <= now {
			return el, false
		}
		el.Timeout = time.Duration(end-now) * time.Second
	}
	return el, true
}
