package pipeline

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/sink"
	"github.com/portcullis/portcullis/store"
)

// change is one decision on its way to the store and the firewall, with names instead of the
// engine's jail ids so it survives a reload.
type change struct {
	unban    bool
	ban      store.Ban
	firewall bool // false for expiries: the kernel already dropped the element
	reason   string
	evidence *ban.Evidence // bans from failures
}

type applyReq struct {
	changes []change
	done    chan error
}

// applier is the one goroutine that writes: it takes every decision queued (up to maxBatch
// changes), commits them to Pebble with fsync, then applies them to nftables in one transaction, and
// only then tells waiters they are done.
type applier struct {
	st  *store.Store
	fw  sink.Firewall
	now func() time.Time
	log *slog.Logger
	// audit gets one JSON line per ban and unban once it is stored and applied (auditlog).
	audit io.Writer
	in    chan applyReq
	quit  chan struct{}
	gone  chan struct{}
}

// maxBatch caps the changes of one commit (one Pebble batch, one nftables transaction).
const maxBatch = 4096

func newApplier(st *store.Store, fw sink.Firewall, now func() time.Time, log *slog.Logger, audit io.Writer) *applier {
	a := &applier{st: st, fw: fw, now: now, log: log, audit: audit, in: make(chan applyReq, 1024), quit: make(chan struct{}), gone: make(chan struct{})}
	go a.run()
	return a
}

func (a *applier) submit(cs []change, done chan error) {
	a.in <- applyReq{changes: cs, done: done}
}

// flush waits until everything submitted so far is applied.
func (a *applier) flush() {
	done := make(chan error, 1)
	a.in <- applyReq{done: done}
	<-done
}

func (a *applier) close() {
	close(a.quit)
	<-a.gone
}

func (a *applier) run() {
	defer close(a.gone)
	var batch []change
	var waiters []chan error
	take := func(r applyReq) {
		batch = append(batch, r.changes...)
		if r.done != nil {
			waiters = append(waiters, r.done)
		}
	}
	for {
		batch, waiters = batch[:0], waiters[:0]
		select {
		case r := <-a.in:
			take(r)
		case <-a.quit:
			// Drain what is queued so no decision is lost on shutdown.
			for {
				select {
				case r := <-a.in:
					take(r)
				default:
					a.commit(batch, waiters)
					return
				}
			}
		}
		// Group commit: take whatever else is queued right now, up to maxBatch, and commit. No
		// timer: an idle daemon commits a lone ban at once, and under a storm the requests that
		// arrive during one commit (fsync, netlink) form the next batch.
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-a.in:
				take(r)
			default:
				break gather
			}
		}
		a.commit(batch, waiters)
	}
}

func (a *applier) commit(batch []change, waiters []chan error) {
	if len(batch) == 0 {
		for _, w := range waiters {
			w <- nil
		}
		return
	}
	sc := make([]store.Change, len(batch))
	for i, c := range batch {
		sc[i] = store.Change{Unban: c.unban, Ban: c.ban}
	}
	err := a.st.Commit(sc)
	if err != nil {
		// The firewall still gets the bans: protection first; the error goes to the log and waiters.
		a.log.Error("cannot commit bans to the store", "err", err)
	}
	now := a.now().Unix()
	add, del := netEffect(batch, now)
	if ferr := a.fw.Apply(add, del); ferr != nil {
		a.log.Error("cannot apply bans to nftables", "err", ferr)
		if err == nil {
			err = ferr
		}
	}
	for _, c := range batch {
		if c.unban {
			if c.firewall {
				a.log.Info("unban", "jail", c.ban.Jail, "prefix", c.ban.Prefix, "reason", c.reason)
			}
			continue
		}
		until := "forever"
		if c.ban.End != 0 {
			until = time.Unix(c.ban.End, 0).UTC().Format(time.RFC3339)
		}
		a.log.Info("ban", "jail", c.ban.Jail, "prefix", c.ban.Prefix, "until", until, "count", c.ban.Count, "reason", c.reason)
	}
	a.writeAudit(batch, now)
	for _, w := range waiters {
		w <- err
	}
}

// netEffect is what a batch changes in the kernel's sets, key by key in order of first change: the
// first change of a key says whether its element is there before the batch (an unban: it is; a
// ban: it is not, or the key would not be banned again), the last whether it should be after. So a
// ban lifted later in the same batch (aggregated into a wider one) never reaches the kernel, an
// element lifted and banned again (a prolonged ban) is removed and added with its new timeout (the
// kernel keeps an element's timeout when it is added over), and one lifted, banned and lifted
// again is removed. Expiries (firewall false) are left out: the kernel dropped those elements itself.
func netEffect(batch []change, now int64) (add, del []sink.Element) {
	type key struct {
		jail   string
		prefix netip.Prefix
	}
	type state struct {
		before, after bool
		el            sink.Element
	}
	states := map[key]*state{}
	var order []key
	for _, c := range batch {
		if !c.firewall {
			continue
		}
		k := key{c.ban.Jail, c.ban.Prefix}
		st := states[k]
		if st == nil {
			st = &state{before: c.unban}
			states[k] = st
			order = append(order, k)
		}
		if c.unban {
			st.after = false
		} else {
			st.el, st.after = element(c.ban.Jail, c.ban.Prefix, c.ban.End, now)
		}
	}
	for _, k := range order {
		st := states[k]
		if st.before {
			del = append(del, sink.Element{Jail: k.jail, Prefix: k.prefix})
		}
		if st.after {
			add = append(add, st.el)
		}
	}
	return add, del
}

// auditRecord is one line of the audit log.
type auditRecord struct {
	Time     string   `json:"time"`
	Op       string   `json:"op"`
	Jail     string   `json:"jail"`
	Prefix   string   `json:"prefix"`
	Reason   string   `json:"reason"`
	Start    int64    `json:"start"`
	End      int64    `json:"end"`                // 0: forever
	Duration int64    `json:"duration"`           // seconds; -1: forever
	Count    uint32   `json:"count"`              // bans of this prefix so far
	Failures int      `json:"failures,omitempty"` // bans from failures: how many were counted
	Times    []uint32 `json:"failure_times,omitempty"`
	Matches  []string `json:"matches,omitempty"` // the failures' lines, the last maxmatches
}

// writeAudit appends the batch's decisions to the audit log in one write.
func (a *applier) writeAudit(batch []change, now int64) {
	if a.audit == nil {
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, c := range batch {
		r := auditRecord{Time: time.Unix(now, 0).UTC().Format(time.RFC3339), Op: "ban", Jail: c.ban.Jail, Prefix: prefixString(c.ban.Prefix),
			Reason: c.reason, Start: c.ban.Start, End: c.ban.End, Duration: -1, Count: c.ban.Count}
		if c.unban {
			r.Op = "unban"
		}
		if c.ban.End != 0 {
			r.Duration = c.ban.End - c.ban.Start
		}
		if ev := c.evidence; ev != nil && !c.unban {
			r.Failures, r.Times = ev.Failures, ev.Times
			r.Matches = ev.Matches
		}
		_ = enc.Encode(r)
	}
	if _, err := a.audit.Write(buf.Bytes()); err != nil {
		a.log.Error("cannot write the audit log", "err", err)
	}
}
