package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/fleet"
	"github.com/portcullis/portcullis/sink"
	"github.com/portcullis/portcullis/store"
)

// fleetLink is this node in the fleet (fleet in portcullis.conf): its bans go to the fleet's
// bucket, the fleet's bans come back through the watch and are applied through this node's own
// sinks with this node's own protections. A ban is never echoed: what came from the fleet (reason
// ban.Fleet) is not published, and what this node published comes back with its own name and is
// left alone. With fleet_failures, its failures go to the fleet's stream (fleetfail.go) and it
// may count the fleet's.
type fleetLink struct {
	name   string
	conf   config.Fleet
	srv    *fleet.Embedded
	nc     *nats.Conn
	js     jetstream.JetStream
	bans   *fleet.Bans
	cancel context.CancelFunc
	ops    chan fleetOp
	wg     sync.WaitGroup
	log    interface{ Warn(string, ...any) }
	stats  fleetStats
	fail   *failLink     // nil unless fleet_failures
	synced chan struct{} // closed when the join has converged (converge)
}

// fleetStats are the portcullis_fleet_* counters.
type fleetStats struct {
	published, publishErrors, applied, refused, bad               atomic.Uint64
	failuresOut, failuresDropped, failuresIn, badBatches, decided atomic.Uint64
}

type fleetOp struct {
	unban bool
	ban   fleet.Ban
}

// fleetQueue bounds the publications waiting for the link: a ban or unban decided while it is
// down waits here, in memory; what is lost at a stop the next join makes good (converge: its own
// bans the fleet lacks are published, its own the fleet holds but it lifted are lifted).
const fleetQueue = 1 << 16

// startFleet joins the fleet and waits until the bans in force there are applied here; then,
// beside the running daemon, it converges: this node's own bans the fleet lacks are published,
// the fleet's it lifted are lifted.
func (d *Daemon) startFleet(dm config.Daemon) error {
	fc := dm.Fleet
	if !fc.On() {
		return nil
	}
	name := fc.Name
	if name == "" {
		name, _ = os.Hostname()
	}
	l := &fleetLink{name: name, conf: fc, ops: make(chan fleetOp, fleetQueue), log: d.log, synced: make(chan struct{})}
	url := fc.Mode
	if fc.Mode == "embedded" {
		srv, err := fleet.StartEmbedded(fleet.EmbeddedOptions{Name: name, Listen: fc.Listen, StoreDir: filepath.Join(d.opts.DBDir, "fleet"),
			ClusterListen: fc.ClusterListen, Routes: fc.Routes, TLSCert: fc.TLSCert, TLSKey: fc.TLSKey, TLSCA: fc.TLSCA, Conf: fc.ServerConf})
		if err != nil {
			return err
		}
		l.srv, url = srv, srv.URL()
	}
	nc, err := fleet.Connect(url, fleet.ConnOptions{Name: name, Creds: fc.Creds, NKey: fc.NKey, TLSCA: fc.TLSCA, TLSCert: fc.TLSCert, TLSKey: fc.TLSKey})
	if err != nil {
		l.close()
		return err
	}
	l.nc = nc
	if l.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second)); err != nil {
		l.close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	// A clustered fleet elects its JetStream meta leader after the routes connect: the bucket
	// is opened once it has one.
	if err := retryFor(ctx, time.Minute, func() error {
		var err error
		l.bans, err = fleet.OpenBans(ctx, l.js, fc.Replicas)
		return err
	}); err != nil {
		l.close()
		return err
	}
	// The bans in force arrive first and are applied maxBatch at a time (one ban manager import,
	// one applier batch each); the changes after them one by one. Both run on the watch's
	// goroutine.
	ready := make(chan struct{})
	var initial []fleet.Change
	joined := false
	held := map[banKey]bool{}     // the bans in force when joining, read after ready
	own := map[banKey]fleet.Ban{} // those of them this node decided
	lifted := map[banKey]int64{}  // the unbans the bucket remembers: when
	change := func(c fleet.Change) {
		if !joined {
			k := banKey{c.Ban.Jail, c.Ban.Prefix}
			if c.Unban {
				lifted[k] = c.At
				return
			}
			held[k] = true
			if c.Ban.Origin == l.name {
				own[k] = c.Ban
			}
			if initial = append(initial, c); len(initial) == maxBatch {
				d.fleetApplyAll(l, initial) // the applier commits while more arrive
				initial = initial[:0]
			}
			return
		}
		d.fleetChange(l, c)
	}
	caughtUp := func() {
		if joined {
			return
		}
		joined = true
		d.fleetApplyAll(l, initial)
		initial = nil
		close(ready)
	}
	bad := func(key string, err error) {
		l.stats.bad.Add(1)
		d.log.Warn("fleet: a value in the bans bucket is no ban; skipped", "key", key, "err", err)
	}
	// A clustered fleet may not have elected the bucket's leader yet: a failed attempt is made
	// again from the start (what it applied stays applied: imports are idempotent).
	err = retryFor(ctx, time.Minute, func() error {
		initial = initial[:0]
		clear(held)
		clear(own)
		clear(lifted)
		return l.bans.Watch(ctx, change, caughtUp, bad)
	})
	if err != nil {
		l.close()
		return err
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		l.close()
		return fmt.Errorf("fleet: the bans in force did not arrive within 30 s")
	}
	d.applier.flush() // the fleet's bans in force are in the kernel before the node reports ready
	if err := l.startFailures(ctx, d); err != nil {
		l.close()
		return err
	}
	l.wg.Add(1)
	go l.publish(ctx)
	d.fleet.Store(l)
	d.log.Info("fleet joined", "node", name, "server", url, "bans in force", len(held))
	// Converging reads every stored ban: it runs beside the daemon, which is ready already with
	// the fleet's bans in its kernel. close waits for it.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(l.synced)
		published, unbanned := d.converge(l, held, own, lifted)
		d.log.Info("fleet: converged", "published", published, "lifted", unbanned)
	}()
	return nil
}

// retryFor calls f until it succeeds, ctx ends or limit passes; the last error is returned.
func retryFor(ctx context.Context, limit time.Duration, f func() error) error {
	return retryWhile(ctx, limit, func(error) bool { return true }, f)
}

// retryWhile is retryFor for the errors again accepts; another is returned at once.
func retryWhile(ctx context.Context, limit time.Duration, again func(error) bool, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil || !again(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// converge makes this node's bans agree with the fleet's as it joins: its own bans in force
// (decided here, imported, restored from a run before) of shared jails that the fleet does not
// hold are queued for publishing — unless the fleet lifted them after they began (lifted: the
// unbans the bucket remembers), then they are lifted here —, and bans of its own that the fleet
// holds but it lifted while the link was down (and the queue was lost with a restart) are lifted
// in the fleet; bans it applied from the fleet that the fleet no longer holds (lifted or expired
// while it was away) are lifted here. held are the fleet's keys in force, own those this node
// decided.
func (d *Daemon) converge(l *fleetLink, held map[banKey]bool, own map[banKey]fleet.Ban, lifted map[banKey]int64) (published, unbanned int) {
	bans, err := d.store.Bans()
	if err != nil {
		d.log.Warn("fleet: cannot read the bans in force to converge", "err", err)
		return 0, 0
	}
	eng := d.current()
	now := d.opts.Now().Unix()
	var cs []sink.Change
	var ds []ban.Decision
	here := make(map[banKey]bool, len(bans))
	for _, b := range bans {
		here[banKey{b.Jail, b.Prefix}] = true
	}
	for k, b := range own {
		if !here[k] {
			cs = append(cs, sink.Change{Unban: true, Ban: store.Ban{Jail: b.Jail, Prefix: b.Prefix}, Reason: "lifted while away"})
		}
	}
	for _, b := range bans {
		id, ok := eng.byName[b.Jail]
		at, wasLifted := lifted[banKey{b.Jail, b.Prefix}]
		switch {
		case !ok || (b.End != 0 && b.End <= now) || held[banKey{b.Jail, b.Prefix}]:
		case b.Fleet || wasLifted && at >= b.Start:
			ds = append(ds, eng.bans.Unban(uint16(id), false, b.Prefix, ban.Fleet)...)
		case eng.jails[id].FleetShare:
			cs = append(cs, sink.Change{Ban: b, Reason: "held"})
		}
	}
	if len(ds) > 0 {
		if err := d.applySync(ds, eng); err != nil {
			d.log.Warn("fleet: not every ban the fleet lifted was lifted here", "err", err)
		}
	}
	if err := l.apply(cs, eng); err != nil {
		d.log.Warn("fleet: not every ban in force was queued", "err", err)
	}
	return len(cs), len(ds)
}

// publish sends this node's bans and unbans in order, retrying while the link is down.
func (l *fleetLink) publish(ctx context.Context) {
	defer l.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-l.ops:
			for {
				var err error
				if op.unban {
					err = l.bans.Delete(ctx, op.ban.Jail, op.ban.Prefix)
				} else {
					err = l.bans.Put(ctx, op.ban, time.Now())
				}
				if err == nil {
					l.stats.published.Add(1)
					break
				}
				if ctx.Err() != nil {
					return
				}
				l.stats.publishErrors.Add(1)
				l.log.Warn("fleet: cannot publish; retrying", "prefix", op.ban.Prefix, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}
}

func (l *fleetLink) close() {
	if l.cancel != nil {
		l.cancel()
	}
	if l.fail != nil {
		l.fail.close()
	}
	l.wg.Wait()
	if l.nc != nil {
		l.nc.Close()
	}
	if l.srv != nil {
		l.srv.Close()
	}
}

// fleetSink is the fleet as a sink: this node's decisions, as they are committed, go out to the
// fleet (a prolonged ban as its new end; an expiry needs nothing, the key's TTL ends it too).
// Nothing goes out before the link is up, when there is no fleet, or for a jail with
// fleet_share = false.
type fleetSink struct{ d *Daemon }

func (fleetSink) Name() string { return "fleet" }

func (s fleetSink) Apply(batch []sink.Change, now int64) error {
	if l := s.d.fleet.Load(); l != nil {
		return l.apply(batch, s.d.current())
	}
	return nil
}

func (l *fleetLink) apply(batch []sink.Change, eng *engine) error {
	dropped := 0
	for _, c := range batch {
		switch {
		case ban.FromFleet(c.Reason) || c.Reason == ban.Expired:
			continue
		case c.Unban && c.Reason == ban.Prolonged:
			continue
		}
		if id, ok := eng.byName[c.Ban.Jail]; ok && !eng.jails[id].FleetShare {
			continue
		}
		op := fleetOp{unban: c.Unban, ban: fleet.Ban{Jail: c.Ban.Jail, Prefix: c.Ban.Prefix, Start: c.Ban.Start,
			End: c.Ban.End, Count: c.Ban.Count, Origin: l.name, Reason: c.Reason}}
		if ev := c.Evidence; ev != nil && !c.Unban {
			// The slices are the engine's, never written again; Put bounds what it sends.
			op.ban.Evidence = &fleet.Evidence{Failures: ev.Failures, Times: ev.Times, Lines: ev.Matches}
		}
		select {
		case l.ops <- op:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		return fmt.Errorf("fleet: %d changes not published: the queue to the fleet is full", dropped)
	}
	return nil
}

// fleetChange applies a change the fleet's watch reports: another node's ban, through this node's
// protections and sinks (reason ban.Fleet), or the lift of a ban anywhere. A jail with
// fleet_apply = false takes nothing from the fleet.
func (d *Daemon) fleetChange(l *fleetLink, c fleet.Change) {
	eng := d.current()
	var ds []ban.Decision
	if c.Unban {
		if id, ok := l.applies(eng, c.Ban); ok {
			ds = eng.bans.Unban(id, false, c.Ban.Prefix, ban.Fleet)
		}
	} else {
		ds, _ = d.fleetDecide(l, eng, []fleet.Change{c})
		if ev := c.Ban.Evidence; ev != nil {
			// The deciding node's evidence, for this node's audit log and status page.
			e := &ban.Evidence{Failures: ev.Failures, Times: ev.Times, Matches: ev.Lines}
			for i := range ds {
				if ds[i].Op == ban.OpBan {
					ds[i].Evidence = e
				}
			}
		}
	}
	if len(ds) > 0 {
		l.stats.applied.Add(1)
		// Not waited for: the applier commits whatever is queued together, so another node's
		// storm costs one commit per batch, not per ban.
		d.applyAsync(ds, eng)
	}
}

// fleetApplyAll applies bans the fleet holds in force as a node joins: one import, handed to the
// applier without waiting in batches of maxBatch (the kernel takes each as one transaction).
func (d *Daemon) fleetApplyAll(l *fleetLink, cs []fleet.Change) {
	eng := d.current()
	ds, taken := d.fleetDecide(l, eng, cs)
	l.stats.applied.Add(uint64(taken))
	changes := toChanges(ds, eng)
	for i := range changes {
		changes[i].Bulk = true // the log says "fleet joined" with the count instead
	}
	for len(changes) > 0 {
		n := min(len(changes), maxBatch)
		d.applier.submit(changes[:n], nil)
		changes = changes[n:]
	}
}

// fleetDecide turns other nodes' bans (puts) into this node's decisions: each admitted
// (fleetAdmit) extends a ban in force here or is imported, all new ones in one import (reason
// Fleet). taken counts the new ones.
func (d *Daemon) fleetDecide(l *fleetLink, eng *engine, cs []fleet.Change) (ds []ban.Decision, taken int) {
	list := make([]ban.Active, 0, len(cs))
	for _, c := range cs {
		a, ok := d.fleetAdmit(l, eng, c.Ban)
		switch {
		case !ok:
		case eng.bans.IsBanned(a.Jail, a.Prefix):
			ds = eng.bans.ExtendTo(a.Jail, a.Prefix, a.End, ds)
		default:
			list = append(list, a)
		}
	}
	return eng.bans.Import(list, nil, nil, ban.Fleet, ds), len(list)
}

// applies returns the jail id of b's jail when this node applies the fleet's bans of it.
func (l *fleetLink) applies(eng *engine, b fleet.Ban) (uint16, bool) {
	id, ok := eng.byName[b.Jail]
	return uint16(id), ok && eng.jails[id].FleetApply
}

// fleetAdmit is the check of another node's ban before it is applied here: not this node's own
// come back, a jail that applies the fleet's bans, not over, not of an address this node
// protects.
func (d *Daemon) fleetAdmit(l *fleetLink, eng *engine, b fleet.Ban) (ban.Active, bool) {
	id, ok := l.applies(eng, b)
	if !ok || b.Origin == l.name || (b.End != 0 && b.End <= d.opts.Now().Unix()) {
		return ban.Active{}, false
	}
	if err := eng.bans.ProtectedPrefix(id, b.Prefix); err != nil {
		l.stats.refused.Add(1)
		d.log.Info("fleet: a ban of a protected address is not applied here", "jail", b.Jail, "prefix", b.Prefix, "origin", b.Origin, "why", err)
		return ban.Active{}, false
	}
	return ban.Active{Jail: id, Prefix: b.Prefix, Start: b.Start, End: b.End, Count: b.Count}, true
}
