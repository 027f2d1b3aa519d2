package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/migrate"
	"github.com/portcullis/portcullis/sink"
	"github.com/portcullis/portcullis/store"
	"github.com/portcullis/portcullis/window"
)

// Version is the daemon's version, set by the linker.
var Version = "0.1.0-dev"

// Options configure a Daemon. Empty strings take the value from portcullis.conf, then the default.
type Options struct {
	ConfigDir string
	Socket    string
	DBDir     string
	Metrics   string // address for /metrics; "off" disables it
	Log       *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Poll is the file tail interval; 250 ms when zero.
	Poll time.Duration
	// Workers is the number of matching goroutines; one per core when zero.
	Workers int
	// MaxKeys caps tracked (jail, address) keys.
	MaxKeys int
	// SelfAddrs overrides the interface addresses used by ignoreself (tests).
	SelfAddrs []netip.Addr
	// Table is the nftables table name; "portcullis" when empty.
	Table string
	// CheckEvery is how often the firewall table is checked and rebuilt if missing; 5 s when zero.
	CheckEvery time.Duration
	// Firewall is where bans go; nftables in the current network namespace when nil. The daemon
	// does not own it past Close: a firewall passed in stays the caller's.
	Firewall sink.Firewall
	// Stop, when set, is called by the control command "stop" (fail2ban-client stop): the owner
	// of the daemon shuts it down. FlushLogs reopens the log file (fail2ban-client flushlogs).
	Stop      func()
	FlushLogs func() error
	// LogLevel, when set, is the log's level that "set loglevel" changes; SetLogTarget sends the
	// log elsewhere ("set logtarget").
	LogLevel     *slog.LevelVar
	SetLogTarget func(target string) error
	// ImportFail2ban overrides portcullis.conf's import_fail2ban (a path, auto or off).
	ImportFail2ban string
	// DryRun does everything but the kernel and the actions: bans are decided, stored (in
	// DBDir's sibling DBDir-dry-run, never the real state) and logged as "would ban"; no
	// audit log is written.
	DryRun bool
}

// Daemon is a running portcullis.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	store   *store.Store
	fw      sink.Firewall
	exec    *sink.Exec // fail2ban's executed actions
	ctl     *control.Server
	metrics *metricsServer
	applier *applier
	started time.Time

	mu  sync.RWMutex // guards eng
	eng *engine

	// lasting holds metrics that keep state across scrapes and reloads (histograms).
	lasting  *metrics.Set
	lagCache sync.Map // source name -> *metrics.Histogram

	auditFile *os.File
	changed   chan struct{} // nftables reported a deletion
	stopWatch func()

	reloadMu sync.Mutex
	fleet    atomic.Pointer[fleetLink] // nil unless fleet is set
	activity activity                  // the status page's per-minute rings
	recent   recent                    // the status page's timeline
	// pending are jails made by fail2ban-client add and not started yet (under reloadMu).
	pending map[string]*config.Jail
	stop    chan struct{}
	done    sync.WaitGroup
}

// Start loads the configuration and brings the daemon up: store, firewall rebuilt from stored bans,
// readers, workers, control socket and metrics. A bad configuration is returned before anything is
// touched.
func Start(opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = 5 * time.Second
	}
	cfg, err := config.Load(opts.ConfigDir, config.Options{})
	if err != nil {
		return nil, err
	}
	if opts.Socket == "" {
		opts.Socket = cfg.Daemon.Socket
	}
	if opts.DBDir == "" {
		opts.DBDir = cfg.Daemon.DBDir
	}
	if opts.Metrics == "" {
		opts.Metrics = cfg.Daemon.Metrics
	}
	if opts.MaxKeys == 0 {
		opts.MaxKeys = cfg.Daemon.MaxKeys
	}
	if opts.DryRun {
		opts.DBDir = filepath.Clean(opts.DBDir) + "-dry-run"
		opts.Firewall = &sink.Memory{} // even one passed in: a dry run blocks nothing anywhere
		cfg.Daemon.AuditLog = ""
		opts.Log.Warn("dry run: nothing is blocked and no action runs; bans are logged as \"would ban\"", "state", opts.DBDir)
	}
	if opts.ImportFail2ban == "" {
		opts.ImportFail2ban = cfg.Daemon.ImportFail2ban
	}
	if opts.ImportFail2ban == "auto" {
		opts.ImportFail2ban = migrate.DefaultDB
		if cfg.Daemon.Fail2banDB != "" {
			opts.ImportFail2ban = cfg.Daemon.Fail2banDB
		}
	}
	for _, n := range cfg.Daemon.Notes {
		opts.Log.Info(n)
	}
	for _, w := range cfg.Warnings {
		opts.Log.Warn(w)
	}
	d := &Daemon{opts: opts, log: opts.Log, started: opts.Now(), stop: make(chan struct{}), lasting: metrics.NewSet()}
	eng, err := d.newEngine(cfg)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			eng.m.Close()
			d.closeParts()
		}
	}()
	if d.store, err = store.Open(opts.DBDir, opts.Log); err != nil {
		return nil, err
	}
	d.fw = opts.Firewall
	if d.fw == nil {
		if d.fw, err = sink.NewNFT(sink.NFTOptions{Table: opts.Table}); err != nil {
			return nil, err
		}
	}
	if d.exec, err = sink.NewExec(d.store, sink.ExecOptions{Log: opts.Log, Metrics: d.lasting}); err != nil {
		return nil, err
	}
	sinks := []sink.Sink{sink.Kernel{FW: d.fw, Skip: d.noFirewall}, sink.Log{L: opts.Log, DryRun: opts.DryRun}, fleetSink{d}, statusSink{&d.recent}}
	if !opts.DryRun {
		sinks = append(sinks, d.exec)
	}
	if path := cfg.Daemon.AuditLog; path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("auditlog %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("auditlog %s: %w", path, err)
		}
		d.auditFile = f
		sinks = append(sinks, sink.Audit{W: f})
	}
	d.applier = newApplier(d.store, sinks, opts.Now, opts.Log)
	offs, err := d.store.Offsets()
	if err != nil {
		return nil, err
	}
	eng.setResume(toPositions(offs))
	curs, err := d.store.Cursors()
	if err != nil {
		return nil, err
	}
	eng.setCursors(curs)
	fresh, err := d.store.Fresh()
	if err != nil {
		return nil, err
	}
	if err := d.install(eng); err != nil {
		return nil, err
	}
	d.autoImport(opts.ImportFail2ban, fresh)
	if !opts.DryRun {
		if err := d.startFleet(cfg.Daemon); err != nil {
			eng.stop()
			return nil, err
		}
	}
	if d.ctl, err = control.Listen(opts.Socket, d.handle, opts.Log); err != nil {
		eng.stop()
		return nil, err
	}
	if opts.Metrics != "off" {
		if d.metrics, err = startMetrics(opts.Metrics, d, cfg.Daemon); err != nil {
			eng.stop()
			return nil, err
		}
	}
	// Deletions in nftables (someone ran nft delete element, or flushed a set) trigger a check
	// within seconds instead of at the next periodic one.
	d.changed = make(chan struct{}, 1)
	if stop, err := d.fw.WatchDeletes(func() {
		select {
		case d.changed <- struct{}{}:
		default:
		}
	}); err != nil {
		d.log.Warn("cannot watch nftables for changes; checking periodically only", "err", err)
	} else {
		d.stopWatch = stop
	}
	d.done.Add(1)
	go d.housekeeping()
	ok = true
	names := make([]string, len(eng.jails))
	for i, j := range eng.jails {
		names[i] = j.Name
	}
	opts.Log.Info("portcullis started", "version", Version, "config", opts.ConfigDir, "jails", names,
		"socket", opts.Socket, "db", opts.DBDir, "metrics", opts.Metrics)
	return d, nil
}

// install restores the stored bans into eng, rebuilds the firewall table for its jails in one
// transaction, and starts it as the current engine. Everything that can fail (reading the store,
// the matcher's scratch, the syslog listeners, the firewall transaction) is done before the
// store is changed: an install that fails has deleted no ban.
func (d *Daemon) install(eng *engine) error {
	stored, err := d.store.Bans()
	if err != nil {
		return err
	}
	hist, err := d.store.History()
	if err != nil {
		return err
	}
	var keep []ban.Active
	var drop []store.Change
	for _, b := range stored {
		id, ok := eng.byName[b.Jail]
		if !ok {
			d.log.Info("dropping the ban of a jail that is no longer enabled", "jail", b.Jail, "prefix", b.Prefix)
			drop = append(drop, store.Change{Unban: true, Ban: b})
			continue
		}
		// As fail2ban's restoreCurrentBans: an address protected now (ignoreip added since) is
		// not banned again.
		if err := eng.bans.ProtectedPrefix(uint16(id), b.Prefix); err != nil {
			d.log.Info("dropping the stored ban of a protected address", "jail", b.Jail, "prefix", b.Prefix, "why", err)
			drop = append(drop, store.Change{Unban: true, Ban: b})
			continue
		}
		keep = append(keep, ban.Active{Jail: uint16(id), Prefix: b.Prefix, Start: b.Start, End: b.End, Count: b.Count})
	}
	jhist, err := d.store.JailHistory()
	if err != nil {
		return err
	}
	for name, hs := range jhist {
		if id, ok := eng.byName[name]; ok {
			eng.bans.RestoreJailHistory(uint16(id), toBanHistory(hs))
		}
	}
	expired := eng.bans.Restore(keep, toBanHistory(hist))
	for _, x := range expired {
		drop = append(drop, store.Change{Unban: true, Ban: toStoreBan(eng, x)})
	}
	// Failures counted before the last shutdown or reload count on, for jails that still exist
	// (by name) and addresses not banned meanwhile; Load drops what findtime has passed.
	now := d.opts.Now().Unix()
	loaded := 0
	err = d.store.Windows(func(jail string, addr netip.Addr, times, counts []uint32) {
		id, ok := eng.byName[jail]
		if !ok || eng.bans.IsBanned(uint16(id), netip.PrefixFrom(addr, addr.BitLen())) {
			return
		}
		if eng.win.Load(&window.Held{Jail: uint16(id), Addr: addr, Times: times, Counts: counts}, now) {
			loaded++
		}
	})
	if err != nil {
		return err
	}
	if loaded > 0 {
		d.log.Info("failure counts taken up", "addresses", loaded)
	}
	if err := eng.open(&d.opts); err != nil {
		return err
	}
	if err := d.rebuild(eng); err != nil {
		eng.abort()
		return err
	}
	if err := d.store.Commit(drop); err != nil {
		eng.abort()
		return err
	}
	d.purgeHistory(eng)
	eng.shareFailures = d.shareFailures
	eng.run(&d.opts, d.applyAsync)
	logActions(eng, d.log)
	first := d.current() == nil
	if d.opts.DryRun {
		// No queue starts: nothing is staged, nothing runs.
	} else if err := d.exec.SetJails(eng.jails); err != nil {
		d.log.Error("cannot resume the queued action runs", "err", err)
	}
	if first && len(keep) > len(expired) {
		// At start (not on reload), fail2ban runs the actions of the bans it restores.
		var restored []store.Ban
		for _, a := range keep {
			if a.End == 0 || a.End > now {
				restored = append(restored, store.Ban{Jail: eng.jails[a.Jail].Name, Prefix: a.Prefix, Start: a.Start, End: a.End, Count: a.Count})
			}
		}
		if jobs := d.exec.StageRestored(restored); len(jobs) > 0 {
			if err := d.store.CommitWith(nil, jobs); err != nil {
				d.log.Error("cannot queue the actions of the restored bans", "err", err)
			}
			d.exec.Apply(nil, now)
		}
	}
	d.mu.Lock()
	d.eng = eng
	d.mu.Unlock()
	if len(keep) > 0 {
		d.log.Info("restored bans from the store", "count", len(keep)-len(expired))
	}
	return nil
}

func toStoreBan(eng *engine, d ban.Decision) store.Ban {
	return store.Ban{Jail: eng.jails[d.Jail].Name, Prefix: d.Prefix, Start: d.Start, End: d.End, Count: d.Count, JailCount: d.JailCount, Fleet: ban.FromFleet(d.Reason)}
}

// applyAsync hands decisions of a worker to the applier without waiting.
func (d *Daemon) applyAsync(ds []ban.Decision, eng *engine) {
	d.applier.submit(toChanges(ds, eng), nil)
}

// applySync applies decisions and waits until they are in the store and the firewall.
func (d *Daemon) applySync(ds []ban.Decision, eng *engine) error {
	done := make(chan error, 1)
	d.applier.submit(toChanges(ds, eng), done)
	return <-done
}

// toChanges is the one translation of decisions into what the store and the sinks take.
func toChanges(ds []ban.Decision, eng *engine) []sink.Change {
	out := make([]sink.Change, len(ds))
	for i, x := range ds {
		out[i] = sink.Change{Unban: x.Op == ban.OpUnban, Ban: toStoreBan(eng, x), Kernel: x.Reason != ban.Expired, Reason: x.Reason, Evidence: x.Evidence}
	}
	return out
}

func (d *Daemon) current() *engine {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.eng
}

// housekeeping expires bans, sweeps old failures, and rebuilds the firewall table if someone
// deleted it or flushed the ruleset.
func (d *Daemon) housekeeping() {
	defer d.done.Done()
	expire := time.NewTicker(time.Second)
	defer expire.Stop()
	check := time.NewTicker(d.opts.CheckEvery)
	defer check.Stop()
	sweep := time.NewTicker(30 * time.Second)
	defer sweep.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	// File positions are checkpointed one tick late: blocks read before the previous tick have
	// left the queue by now, so a crash re-reads a little rather than skipping anything.
	checkpoint := time.NewTicker(5 * time.Second)
	defer checkpoint.Stop()
	var pending []ingest.Position
	var pendingCursors map[string]string
	checks := 0
	// A burst of deletions is checked once, a moment after it starts (our own unbans notify too).
	var settle <-chan time.Time
	var buf []ban.Decision
	for {
		select {
		case <-d.stop:
			return
		case <-expire.C:
			eng := d.current()
			d.activity.tick(d.opts.Now(), eng)
			buf = eng.bans.Expire(buf[:0])
			if len(buf) > 0 {
				d.applier.submit(toChanges(buf, eng), nil)
			}
		case <-sweep.C:
			eng := d.current()
			now := d.opts.Now().Unix()
			eng.win.Sweep(now)
			if eng.evidence != nil {
				eng.evidence.sweep(now, func(j uint16) int64 { return eng.params[j].FindTime })
			}
		case <-purge.C:
			d.reloadMu.Lock()
			d.purgeHistory(d.current())
			d.reloadMu.Unlock()
		case <-checkpoint.C:
			// Positions only: counts saved here would include lines past these positions, which a
			// crash would make the next start read and count again. A crash loses the counts since
			// the last exact save (never a ban: bans are committed as they happen).
			d.saveProgress(pending, pendingCursors, nil)
			pending, pendingCursors = d.current().positions(), d.current().cursors()
		case <-d.changed:
			if settle == nil {
				settle = time.After(500 * time.Millisecond)
			}
		case <-settle:
			settle = nil
			d.checkFirewall(true)
		case <-check.C:
			checks++
			d.checkFirewall(checks%reconcileEvery == 0)
		}
	}
}

// Close stops the daemon: readers stop, queued blocks are finished, pending decisions are committed,
// then the socket, metrics and store close. The firewall table stays: bans outlive the daemon and the
// kernel expires them.
func (d *Daemon) Close() error {
	close(d.stop)
	d.done.Wait()
	if d.ctl != nil {
		d.ctl.Close()
		d.ctl = nil
	}
	if eng := d.current(); eng != nil {
		eng.stop()
		d.saveProgress(eng.positions(), eng.cursors(), eng) // every read line is processed now: exact
		for id, j := range eng.jails {
			d.log.Info("jail totals", "jail", j.Name, "failures", eng.m.Stats[id].Matched.Load(),
				"bans", eng.bans.Stats[id].Bans.Load(), "lines", eng.lines.Load())
		}
	}
	return d.closeParts()
}

func (d *Daemon) closeParts() error {
	if l := d.fleet.Load(); l != nil {
		l.close()
	}
	var errs []error
	if d.stopWatch != nil {
		d.stopWatch()
		d.stopWatch = nil
	}
	if d.applier != nil {
		d.applier.close()
	}
	if d.exec != nil {
		d.exec.Close() // after the applier: every staged job is stored
	}
	if d.auditFile != nil {
		errs = append(errs, d.auditFile.Close())
	}
	if d.metrics != nil {
		errs = append(errs, d.metrics.close())
	}
	if d.ctl != nil {
		errs = append(errs, d.ctl.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
		d.store = nil
	}
	return errors.Join(errs...)
}

// newEngine builds an engine generation from a configuration just loaded: jails that would
// watch nothing are an error, or left out with skip_if_nologs (withLogs).
func (d *Daemon) newEngine(cfg *config.Config) (*engine, error) {
	cfg, err := withLogs(cfg, d.log)
	if err != nil {
		return nil, err
	}
	return d.engineFor(cfg)
}

// engineFor builds an engine generation whose decision lag goes to the daemon's lasting
// histograms. A refused reload rebuilds the running configuration with it as it is: a log that
// vanished meanwhile must not keep the previous jails from coming back.
func (d *Daemon) engineFor(cfg *config.Config) (*engine, error) {
	eng, err := newEngine(cfg, &d.opts)
	if err != nil {
		return nil, err
	}
	eng.lag = d.lagHistogram
	return eng, nil
}

// lagHistogram is the arrival-to-decision histogram of a source.
func (d *Daemon) lagHistogram(source string) *metrics.Histogram {
	if h, ok := d.lagCache.Load(source); ok {
		return h.(*metrics.Histogram)
	}
	h := d.lasting.GetOrCreateHistogram(fmt.Sprintf("portcullis_decision_lag_seconds{source=%q}", source))
	d.lagCache.Store(source, h)
	return h
}

// LinesProcessed reports how many lines the current configuration's workers have finished.
func (d *Daemon) LinesProcessed() uint64 { return d.current().lines.Load() }

// jailID resolves a jail name in the current engine.
func (e *engine) jailID(name string) (uint16, error) {
	id, ok := e.byName[name]
	if !ok {
		names := make([]string, 0, len(e.byName))
		for n := range e.byName {
			names = append(names, n)
		}
		sort.Strings(names)
		return 0, &UnknownJailError{Name: name, Enabled: names}
	}
	return uint16(id), nil
}

// noFirewall reports whether the current configuration's jail bans nothing in the kernel.
func (d *Daemon) noFirewall(jail string) bool {
	eng := d.current()
	if eng == nil {
		return false
	}
	id, ok := eng.byName[jail]
	return ok && !eng.jails[id].Firewall
}

// logActions says at start and reload how each jail's actions run: nothing is dropped silently.
func logActions(eng *engine, log *slog.Logger) {
	for _, j := range eng.jails {
		if len(j.Actions) == 0 {
			log.Info("jail actions", "jail", j.Name, "action", "nftables (no action key: the jail's port, protocol and blocktype)")
			continue
		}
		if !j.Firewall {
			log.Warn("the jail's actions name no firewall action: its bans block nothing in the kernel, as in fail2ban", "jail", j.Name)
		}
		for _, a := range j.Actions {
			switch a.Kind {
			case config.ActionNative:
				log.Info("jail action", "jail", j.Name, "action", a.Name, "runs", a.Kind.String(), "file", a.File)
			case config.ActionWebhook:
				log.Info("jail action", "jail", j.Name, "action", a.Name, "runs", "HTTP POST to "+a.Webhook.URL+", queued", "preset", a.Webhook.Preset)
			case config.ActionSMTP:
				log.Info("jail action", "jail", j.Name, "action", a.Name, "runs", "mail over SMTP, queued", "server", fmt.Sprintf("%s:%d", a.SMTP.Host, a.SMTP.Port), "to", a.SMTP.To)
			case config.ActionExec:
				log.Info("jail action", "jail", j.Name, "action", a.Name, "runs", "through /bin/sh, queued, never delaying a ban", "file", a.File)
			default:
				log.Warn("jail action refused", "jail", j.Name, "action", a.Name, "reason", a.Reason)
			}
		}
	}
}

// UnknownJailError is a request naming a jail that is not enabled.
type UnknownJailError struct {
	Name    string
	Enabled []string
}

func (e *UnknownJailError) Error() string {
	return fmt.Sprintf("no enabled jail %q (enabled: %v)", e.Name, e.Enabled)
}
