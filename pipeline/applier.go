package pipeline

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/portcullis/portcullis/sink"
	"github.com/portcullis/portcullis/store"
)

type applyReq struct {
	changes []sink.Change
	done    chan error
}

// applier is the one goroutine that writes: it takes every change queued (up to maxBatch),
// commits them to Pebble with fsync, then hands the batch to each sink in order (the firewall
// first), and only then tells waiters they are done.
type applier struct {
	st    *store.Store
	sinks []sink.Sink
	now   func() time.Time
	log   *slog.Logger
	in    chan applyReq
	quit  chan struct{}
	gone  chan struct{}
}

// maxBatch caps the changes of one commit (one Pebble batch, one nftables transaction).
const maxBatch = 4096

func newApplier(st *store.Store, sinks []sink.Sink, now func() time.Time, log *slog.Logger) *applier {
	a := &applier{st: st, sinks: sinks, now: now, log: log, in: make(chan applyReq, 1024), quit: make(chan struct{}), gone: make(chan struct{})}
	go a.run()
	return a
}

func (a *applier) submit(cs []sink.Change, done chan error) {
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
	var batch []sink.Change
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

func (a *applier) commit(batch []sink.Change, waiters []chan error) {
	if len(batch) == 0 {
		for _, w := range waiters {
			w <- nil
		}
		return
	}
	sc := make([]store.Change, len(batch))
	for i, c := range batch {
		sc[i] = store.Change{Unban: c.Unban, Ban: c.Ban}
	}
	var jobs []store.Job
	for _, s := range a.sinks {
		if st, ok := s.(sink.Stager); ok {
			jobs = append(jobs, st.Stage(batch)...)
		}
	}
	err := a.st.CommitWith(sc, jobs)
	if err != nil {
		// The sinks still get the bans: protection first; the error goes to the log and waiters.
		a.log.Error("cannot commit bans to the store", "err", err)
	}
	now := a.now().Unix()
	for _, s := range a.sinks {
		if serr := s.Apply(batch, now); serr != nil {
			a.log.Error("a sink could not apply a batch of bans", "sink", s.Name(), "changes", len(batch), "err", serr)
			if err == nil {
				err = fmt.Errorf("%s: %w", s.Name(), serr)
			}
		}
	}
	for _, w := range waiters {
		w <- err
	}
}
