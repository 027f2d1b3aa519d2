// Package pipeline wires the stages together: sources produce blocks, one worker per core runs
// matcher → window → ban on each block, and one applier commits decisions to the store and the
// firewall in batches. Everything a reload replaces lives in an engine; the store, the firewall
// connection, the control socket and the metrics server outlive reloads.
package pipeline

import (
	"context"
	"errors"
	"os"
	"strings"

	"fmt"
	"log/slog"
	"os/exec"
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
}

type source struct {
	pattern      string // a logpath, or "journal:<jail>"
	journalMatch string // journal sources: what journalctl is asked for
	src          *ingest.Source
	tailer       *ingest.Tailer  // file sources
	journal      *ingest.Journal // journal sources
}

func newEngine(cfg *config.Config, opts *Options) (*engine, error) {
	e := &engine{cfg: cfg, byName: make(map[string]int), now: opts.Now}
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
		Evidence: cfg.Daemon.AuditLog != ""})
	if err != nil {
		return nil, err
	}
	for _, w := range st.m.Warnings {
		opts.Log.Warn(w)
	}
	e.stages = st

	// A backend = auto jail whose log files do not exist, on a machine with journalctl (Debian 12
	// has no auth.log without rsyslog), reads the journal instead when its filter says how to
	// match it — instead, not as well: were the file to appear later, the same events would come
	// from both and count twice. Installing rsyslog then takes a reload.
	fallback := make(map[int]bool)
	for id, j := range cfg.Jails {
		if !j.Journal && journalFallback(j, cfg.Daemon.Journalctl) {
			fallback[id] = true
		}
	}
	// One reader per distinct logpath; jails sharing a file share its reader.
	byPattern := make(map[string]*source)
	for id, j := range cfg.Jails {
		if fallback[id] {
			continue
		}
		for _, lp := range j.LogPaths {
			s, ok := byPattern[lp.Pattern]
			if !ok {
				s = &source{pattern: lp.Pattern, src: &ingest.Source{Name: lp.Pattern, Stats: &ingest.SourceStats{}}}
				byPattern[lp.Pattern] = s
				e.sources = append(e.sources, s)
			}
			s.src.Jails = s.src.Jails.With(id)
		}
	}
	for _, s := range e.sources {
		// A backlog starts at the end only when every jail reading the file says tail; failures
		// in it count back to the longest findtime of those jails.
		head, tail, longest := false, true, time.Duration(0)
		for id, j := range cfg.Jails {
			if !s.src.Jails.Has(id) {
				continue
			}
			longest = max(longest, j.FindTime)
			for _, lp := range j.LogPaths {
				if lp.Pattern == s.pattern {
					head = head || lp.Head
					tail = tail && lp.Tail
				}
			}
		}
		now := e.now
		stamp := func(line []byte) (int64, bool) { return matcher.LineTime(line, now(), time.Local) }
		oldest := func() int64 { return now().Add(-longest).Unix() }
		var format *ingest.JSONFormat
		for id, j := range cfg.Jails {
			if s.src.Jails.Has(id) && j.JSON {
				format = &ingest.JSONFormat{Time: j.JSONTime, Host: j.JSONHost, Message: j.JSONMessage, Now: opts.Now}
				break
			}
		}
		s.tailer = ingest.NewTailer(ingest.TailOptions{Pattern: s.pattern, Head: head, Tail: tail, Stamp: stamp, Oldest: oldest,
			Source: s.src, Poll: opts.Poll, Log: opts.Log, Format: format})
	}
	// One journalctl per journal jail: each has its own matches.
	for id, j := range cfg.Jails {
		if !j.Journal && !fallback[id] {
			continue
		}
		if fallback[id] {
			opts.Log.Warn("no log file for the jail; reading the systemd journal instead (reload once the file exists)", "jail", j.Name, "logpath", j.LogPaths[0].Pattern, "journalmatch", j.Filter.JournalMatch)
			j.JournalMatch = j.Filter.JournalMatch
		}
		name := "journal:" + j.Name
		src := &ingest.Source{Name: name, Jails: ingest.NewJailSet(id), Stats: &ingest.SourceStats{}}
		e.sources = append(e.sources, &source{pattern: name, journalMatch: j.JournalMatch, src: src, journal: ingest.NewJournal(ingest.JournalOptions{
			Command: cfg.Daemon.Journalctl, Match: j.JournalMatch, Source: src, Log: opts.Log,
			Since: e.now().Add(-j.FindTime)})})
	}
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
		if s.tailer != nil {
			s.tailer.Prime()
		}
	}
	for i, s := range e.sources {
		out := e.blocks
		if e.needsOrder(s) {
			out = e.ordered[i%n]
		}
		e.readers.Add(1)
		go func(s *source, out chan *ingest.Block) {
			defer e.readers.Done()
			if s.journal != nil {
				s.journal.Run(e.ctx, out)
				return
			}
			s.tailer.Run(e.ctx, out)
		}(s, out)
	}
	for i, w := range e.mw {
		e.workers.Add(1)
		go e.work(w, e.ordered[i], opts.Log, apply)
	}
	e.mw = nil // the workers own their scratch now
}

// startSyslog opens the network syslog listeners when a jail reads them.
func (e *engine) startSyslog(opts *Options) error {
	d := e.cfg.Daemon
	var routes []ingest.SyslogRoute
	ordered := false
	for id, j := range e.jails {
		if j.Syslog {
			routes = append(routes, ingest.SyslogRoute{Jail: id, Programs: j.SyslogPrograms, Senders: j.SyslogSenders, Identities: j.SyslogIdentities})
			ordered = ordered || e.m.Stateful(id)
		}
	}
	if len(routes) == 0 || (d.SyslogUDP == "" && d.SyslogTCP == "" && d.SyslogTLS == "") {
		return nil
	}
	out := e.blocks
	if ordered {
		out = e.ordered[0] // multi-line jails see the messages in arrival order
	}
	s, err := ingest.StartSyslog(ingest.SyslogOptions{UDP: d.SyslogUDP, TCP: d.SyslogTCP, TLS: d.SyslogTLS,
		TLSCert: d.SyslogTLSCert, TLSKey: d.SyslogTLSKey, TLSClientCA: d.SyslogTLSClientCA, Allow: d.SyslogAllow,
		MaxMessage: d.SyslogMaxMessage, MaxConns: d.SyslogMaxConns, MaxConnsPerSender: d.SyslogMaxConnsPerSender,
		IdleTimeout: d.SyslogIdleTimeout, Routes: routes, Now: opts.Now, Log: opts.Log}, out)
	if err != nil {
		return err
	}
	e.syslog = s
	opts.Log.Info("syslog input", "udp", d.SyslogUDP, "tcp", d.SyslogTCP, "tls", d.SyslogTLS, "jails", len(routes))
	return nil
}

// withLogs returns cfg without the jails that would watch nothing — file jails none of whose
// logpaths matches a file, with no journal to read instead — when they set skip_if_nologs, and
// an error naming them when they do not (fail2ban refuses to start such a jail too).
func withLogs(cfg *config.Config, log *slog.Logger) (*config.Config, error) {
	var keep []*config.Jail
	var missing []string
	for _, j := range cfg.Jails {
		if len(j.LogPaths) == 0 || j.Journal || j.Syslog || anyLogExists(j) || journalFallback(j, cfg.Daemon.Journalctl) {
			keep = append(keep, j)
			continue
		}
		var pats []string
		for _, lp := range j.LogPaths {
			pats = append(pats, lp.Pattern)
		}
		if j.SkipIfNoLogs {
			log.Warn("no log file for the jail and no journal to read instead; the jail is skipped (skip_if_nologs)", "jail", j.Name, "logpath", pats)
			continue
		}
		missing = append(missing, fmt.Sprintf("jail %s: no log file matches %s, and there is no journal to read instead (set skip_if_nologs = true to skip the jail)", j.Name, strings.Join(pats, " ")))
	}
	if len(missing) > 0 {
		return nil, errors.New(strings.Join(missing, "; "))
	}
	if len(keep) == len(cfg.Jails) {
		return cfg, nil
	}
	out := *cfg
	out.Jails = keep
	return &out, nil
}

// anyLogExists reports whether one of j's logpaths matches a file now.
func anyLogExists(j *config.Jail) bool {
	for _, lp := range j.LogPaths {
		if m, _ := filepath.Glob(lp.Pattern); len(m) > 0 {
			return true
		}
	}
	return false
}

// journalFallback reports whether a file jail should read the journal: backend auto, no logpath
// matches an existing file, the filter has a journalmatch and journalctl is installed.
func journalFallback(j *config.Jail, journalctl string) bool {
	if j.Backend != "auto" || j.Syslog || len(j.LogPaths) == 0 || j.Filter == nil || j.Filter.JournalMatch == "" || anyLogExists(j) {
		return false
	}
	if journalctl == "" {
		journalctl = "journalctl"
	}
	_, err := exec.LookPath(journalctl)
	return err == nil
}

// setResume gives every file reader the positions of an earlier run or generation.
func (e *engine) setResume(m map[string]ingest.Position) {
	for _, s := range e.sources {
		if s.tailer != nil {
			s.tailer.SetResume(m)
		}
	}
}

// setCursors gives journal sources the cursors of an earlier run.
func (e *engine) setCursors(m map[string]string) {
	for _, s := range e.sources {
		if s.journal != nil && m[s.pattern] != "" {
			s.journal.SetCursor(m[s.pattern])
		}
	}
}

// cursors collects every journal source's cursor.
func (e *engine) cursors() map[string]string {
	out := map[string]string{}
	for _, s := range e.sources {
		if s.journal != nil {
			if c := s.journal.Cursor(); c != "" {
				out[s.pattern] = c
			}
		}
	}
	return out
}

// positions collects how far every file has been read.
func (e *engine) positions() []ingest.Position {
	var out []ingest.Position
	for _, s := range e.sources {
		if s.tailer != nil {
			out = append(out, s.tailer.Positions()...)
		}
	}
	return out
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

// files is what jail id reads, for status's File list: the files its patterns match now (a
// pattern that matches none is shown as written), the journal, the syslog input.
func (e *engine) files(id int) []string {
	var out []string
	for _, s := range e.sources {
		if !s.src.Jails.Has(id) {
			continue
		}
		switch {
		case s.journal != nil:
			out = append(out, "journal: "+s.journalMatch)
		default:
			n := len(out)
			for _, p := range s.tailer.Positions() {
				out = append(out, p.Path)
			}
			if len(out) == n {
				out = append(out, s.pattern)
			}
		}
	}
	if e.jails[id].Syslog {
		out = append(out, "syslog")
	}
	return out
}

// needsOrder reports whether a jail reading s keeps state across lines.
func (e *engine) needsOrder(s *source) bool {
	for id := range e.jails {
		if s.src.Jails.Has(id) && e.m.Stateful(id) {
			return true
		}
	}
	return false
}

// work is one worker goroutine: the stage chain for each block, then the block goes back.
func (e *engine) work(mw *matcher.Worker, own chan *ingest.Block, log *slog.Logger, apply func([]ban.Decision, *engine)) {
	defer e.workers.Done()
	c := e.newChain(mw, wallClock{}, func(ds []ban.Decision) { apply(ds, e) })
	defer c.close()
	c.admit = e.admitLive
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
