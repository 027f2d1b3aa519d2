// Package pipeline wires the stages together: sources produce blocks, one worker per core runs
// matcher → window → ban on each block, and one applier commits decisions to the store and the
// firewall in batches. Everything a reload replaces lives in an engine; the store, the firewall
// connection, the control socket and the metrics server outlive reloads.
package pipeline

import (
	"context"
	"os"
	"slices"

	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/matcher"
)

// engine is one generation of the configuration: compiled matcher, windows, ban policies, readers
// and workers. Jail ids are indexes into jails.
type engine struct {
	*stages
	cfg     *config.Config
	byName  map[string]int
	sources []*source
	syslog  *ingest.SyslogServer
	blocks  chan *ingest.Block
	// ordered[i] feeds only worker i: sources whose jails keep state across lines (fail2ban's
	// multi-line <F-MLFID> tracking, maxlines buffers) send every block to one worker, so their
	// lines are matched in file order.
	ordered []chan *ingest.Block
	mw      []*matcher.Worker // per-worker scratch between open and run
	ctx     context.Context
	cancel  context.CancelFunc
	readers sync.WaitGroup
	workers sync.WaitGroup
	errors  atomic.Uint64 // blocks that failed to scan or panicked, skipped
	lines   atomic.Uint64 // lines that went through the whole data path
	// lag returns the histogram of seconds from a block's arrival to its ban decisions, by source.
	lag func(source string) *metrics.Histogram
	now func() time.Time
	// idle marks jails set idle (fail2ban-client set JAIL idle on): their failures are not
	// counted until set off or a reload. anyIdle spares the per-event look when none is.
	idle    []atomic.Bool
	anyIdle atomic.Bool
	// shareFailures, when set, gets each block's counted failures on the worker (the fleet's
	// publisher) with their block and the worker's chain (for captures); it keeps neither the
	// block nor evs.
	shareFailures func(b *ingest.Block, evs []matcher.Event, e *engine, c *chain)
}

// setIdle sets jail id idle or not.
func (e *engine) setIdle(id uint16, on bool) {
	e.idle[id].Store(on)
	any := false
	for i := range e.idle {
		any = any || e.idle[i].Load()
	}
	e.anyIdle.Store(any)
}

func newEngine(cfg *config.Config, opts *Options) (*engine, error) {
	e := &engine{cfg: cfg, byName: make(map[string]int), now: opts.Now, idle: make([]atomic.Bool, len(cfg.Jails))}
	if e.now == nil {
		e.now = time.Now
	}
	for id, j := range cfg.Jails {
		e.byName[j.Name] = id
	}
	var cache string // no database directory (tests): nothing is cached, never in the working directory
	if opts.DBDir != "" {
		cache = filepath.Join(opts.DBDir, "hscache")
	}
	st, err := newStages(cfg, stageOptions{Now: e.now, CacheDir: cache, MaxKeys: opts.MaxKeys, SelfAddrs: opts.SelfAddrs,
		Evidence: cfg.Daemon.AuditLog != "" || slices.ContainsFunc(cfg.Jails, (*config.Jail).Queued)})
	if err != nil {
		return nil, err
	}
	for _, w := range st.m.Warnings {
		opts.Log.Warn(w)
	}
	e.stages = st

	e.buildSources(opts)
	return e, nil
}

// open prepares everything of a generation that can fail — matcher scratch per worker and the
// syslog listeners — without starting to read files or journals. After an error nothing is left
// open; after success, run or abort must follow.
func (e *engine) open(opts *Options) error {
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx, e.cancel = ctx, cancel
	n := opts.Workers
	if n <= 0 {
		n = runtime.NumCPU()
	}
	e.blocks = make(chan *ingest.Block, 4*n)
	e.ordered = make([]chan *ingest.Block, n)
	for i := range e.ordered {
		e.ordered[i] = make(chan *ingest.Block, 4)
	}
	e.mw = make([]*matcher.Worker, 0, n)
	for range n {
		w, err := e.m.NewWorker()
		if err != nil {
			e.abort()
			return err
		}
		e.mw = append(e.mw, w)
	}
	if err := e.startSyslog(opts); err != nil {
		e.abort()
		return err
	}
	return nil
}

// abort undoes open: listeners closed, scratch freed; the matcher stays for the caller to close.
func (e *engine) abort() {
	e.cancel()
	if e.syslog != nil {
		e.syslog.Close()
		e.syslog = nil
	}
	for _, w := range e.mw {
		w.Close()
	}
	e.mw = nil
	e.cancel = nil
}

// run starts the readers and workers of an opened generation; decisions go to apply.
func (e *engine) run(opts *Options, apply func([]ban.Decision, *engine)) {
	n := len(e.mw)
	for _, s := range e.sources {
		s.reader.Prime()
	}
	for i, s := range e.sources {
		out := e.blocks
		if e.needsOrder(s) {
			out = e.ordered[i%n]
		}
		e.readers.Add(1)
		go func(r ingest.Reader, out chan *ingest.Block) {
			defer e.readers.Done()
			r.Run(e.ctx, out)
		}(s.reader, out)
	}
	for i, w := range e.mw {
		e.workers.Add(1)
		go e.work(w, e.ordered[i], opts.Log, apply)
	}
	e.mw = nil // the workers own their scratch now
}

// takeTotals adds a stopped generation's counters to e's, by jail and by source name, so the
// totals (status's Total failed and Total banned, the *_total metrics) survive a reload, as
// fail2ban's do for the jails it keeps.
func (e *engine) takeTotals(old *engine) {
	for id, j := range e.jails {
		oid, ok := old.byName[j.Name]
		if !ok {
			continue
		}
		ms, oms := &e.m.Stats[id], &old.m.Stats[oid]
		ms.Matched.Add(oms.Matched.Load())
		ms.Ignored.Add(oms.Ignored.Load())
		ms.NoDate.Add(oms.NoDate.Load())
		ms.BadAddr.Add(oms.BadAddr.Load())
		ms.Stale.Add(oms.Stale.Load())
		bs, obs := &e.bans.Stats[id], &old.bans.Stats[oid]
		bs.Bans.Add(obs.Bans.Load())
		bs.Ignored.Add(obs.Ignored.Load())
		bs.IgnoreCommandErrors.Add(obs.IgnoreCommandErrors.Load())
	}
	for _, s := range e.sources {
		for _, o := range old.sources {
			if o.pattern != s.pattern {
				continue
			}
			st, ost := s.src.Stats, o.src.Stats
			st.Lines.Add(ost.Lines.Load())
			st.Bytes.Add(ost.Bytes.Load())
			st.Overlong.Add(ost.Overlong.Load())
			st.Binary.Add(ost.Binary.Load())
			st.Malformed.Add(ost.Malformed.Load())
			st.Rotated.Add(ost.Rotated.Load())
		}
	}
	e.lines.Add(old.lines.Load())
	e.errors.Add(old.errors.Load())
}

// work is one worker goroutine: the stage chain for each block, then the block goes back.
func (e *engine) work(mw *matcher.Worker, own chan *ingest.Block, log *slog.Logger, apply func([]ban.Decision, *engine)) {
	defer e.workers.Done()
	c := e.newChain(mw, wallClock{}, func(ds []ban.Decision) { apply(ds, e) })
	defer c.close()
	c.admit = func(b *ingest.Block, evs []matcher.Event) []matcher.Event {
		evs = e.admitLive(b, evs)
		if e.shareFailures != nil && len(evs) > 0 {
			e.shareFailures(b, evs, e, c)
		}
		return evs
	}
	shared := e.blocks
	for shared != nil || own != nil {
		var b *ingest.Block
		var ok bool
		select {
		case b, ok = <-shared:
			if !ok {
				shared = nil
				continue
			}
		case b, ok = <-own:
			if !ok {
				own = nil
				continue
			}
		}
		n := len(b.Lines)
		if err := c.process(b); err != nil {
			e.errors.Add(1)
			log.Error("matching a block failed; its lines are skipped", "source", b.Source.Name, "lines", n, "err", err)
		}
		if !b.Arrived.IsZero() && e.lag != nil {
			e.lag(b.Source.Name).Update(time.Since(b.Arrived).Seconds())
		}
		ingest.PutBlock(b)
		e.lines.Add(uint64(n))
	}
}

// admitLive removes from a backlog's events (lines a file held when it was opened) the failures
// older than their jail's findtime, as fail2ban ignores them while it starts: an attack that is
// over bans no one. Lines read as they are written are counted by their own times whatever the
// clock says, so a log in an unexpected time zone still bans.
func (e *engine) admitLive(b *ingest.Block, events []matcher.Event) []matcher.Event {
	if e.anyIdle.Load() {
		events = slices.DeleteFunc(events, func(ev matcher.Event) bool { return e.idle[ev.Jail].Load() })
	}
	if !b.Backlog || len(events) == 0 {
		return events
	}
	now := e.now().Unix()
	kept := events[:0]
	for _, ev := range events {
		if int(ev.Jail) < len(e.params) && ev.Time < now-e.params[ev.Jail].FindTime {
			e.m.Stats[ev.Jail].Stale.Add(1)
			continue
		}
		kept = append(kept, ev)
	}
	return kept
}

// stop stops the readers, lets the workers finish what was queued, and frees the matcher.
func (e *engine) stop() {
	if e.cancel != nil {
		e.cancel()
		e.readers.Wait()
		if e.syslog != nil {
			e.syslog.Close()
		}
		close(e.blocks)
		for _, c := range e.ordered {
			close(c)
		}
		e.workers.Wait()
	}
	e.m.Close()
}

// UserCacheDir is where tools run by a user (regex, replay) keep compiled databases:
// $XDG_CACHE_HOME/portcullis or ~/.cache/portcullis; empty when there is no such folder.
func UserCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "portcullis")
}
