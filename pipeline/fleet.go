package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/fleet"
	"github.com/portcullis/portcullis/sink"
)

// fleetLink is this node in the fleet (fleet in portcullis.conf): its bans go to the fleet's
// bucket, the fleet's bans come back through the watch and are applied through this node's own
// sinks with this node's own protections. A ban is never echoed: what came from the fleet (reason
// ban.Fleet) is not published, and what this node published comes back with its own name and is
// left alone.
type fleetLink struct {
	name   string
	srv    *fleet.Embedded
	nc     *nats.Conn
	bans   *fleet.Bans
	cancel context.CancelFunc
	ops    chan fleetOp
	wg     sync.WaitGroup
	log    interface{ Warn(string, ...any) }
}

type fleetOp struct {
	unban bool
	ban   fleet.Ban
}

// fleetQueue bounds the publications waiting for the link: a ban decided while it is down waits
// here, in memory (lost at a stop; bans held before joining are not published).
const fleetQueue = 1 << 16

// startFleet joins the fleet and waits until the bans in force there are applied here.
func (d *Daemon) startFleet(dm config.Daemon) error {
	if dm.Fleet == "" || dm.Fleet == "off" {
		return nil
	}
	name := dm.FleetName
	if name == "" {
		name, _ = os.Hostname()
	}
	l := &fleetLink{name: name, ops: make(chan fleetOp, fleetQueue), log: d.log}
	url := dm.Fleet
	if dm.Fleet == "embedded" {
		srv, err := fleet.StartEmbedded(fleet.EmbeddedOptions{Name: name, Listen: dm.FleetListen, StoreDir: filepath.Join(d.opts.DBDir, "fleet")})
		if err != nil {
			return err
		}
		l.srv, url = srv, srv.URL()
	}
	nc, err := nats.Connect(url, nats.Name("portcullis "+name), nats.MaxReconnects(-1))
	if err != nil {
		l.close()
		return fmt.Errorf("fleet: %s: %w", url, err)
	}
	l.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		l.close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	if l.bans, err = fleet.OpenBans(ctx, js, 1); err != nil {
		l.close()
		return err
	}
	ready := make(chan struct{})
	var once sync.Once
	err = l.bans.Watch(ctx, d.fleetChange, func() { once.Do(func() { close(ready) }) },
		func(key string, err error) {
			d.log.Warn("fleet: a value in the bans bucket is no ban; skipped", "key", key, "err", err)
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
	l.wg.Add(1)
	go l.publish(ctx)
	d.fleet.Store(l)
	d.log.Info("fleet joined", "node", name, "server", url)
	return nil
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
				if err == nil || ctx.Err() != nil {
					break
				}
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
// Nothing goes out before the link is up or when there is no fleet.
type fleetSink struct{ d *Daemon }

func (fleetSink) Name() string { return "fleet" }

func (s fleetSink) Apply(batch []sink.Change, now int64) error {
	if l := s.d.fleet.Load(); l != nil {
		return l.apply(batch)
	}
	return nil
}

func (l *fleetLink) apply(batch []sink.Change) error {
	dropped := 0
	for _, c := range batch {
		switch {
		case c.Reason == ban.Fleet || c.Reason == ban.Expired:
			continue
		case c.Unban && c.Reason == ban.Prolonged:
			continue
		}
		op := fleetOp{unban: c.Unban, ban: fleet.Ban{Jail: c.Ban.Jail, Prefix: c.Ban.Prefix, Start: c.Ban.Start,
			End: c.Ban.End, Count: c.Ban.Count, Origin: l.name, Reason: c.Reason}}
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
// protections and sinks (reason ban.Fleet), or the lift of a ban anywhere.
func (d *Daemon) fleetChange(c fleet.Change) {
	if l := d.fleet.Load(); !c.Unban && l != nil && c.Ban.Origin == l.name {
		return // our own, come back
	}
	eng := d.current()
	id, ok := eng.byName[c.Ban.Jail]
	if !ok {
		return // a jail this node does not run
	}
	var ds []ban.Decision
	if c.Unban {
		ds = eng.bans.Unban(uint16(id), false, c.Ban.Prefix, ban.Fleet)
	} else {
		if err := eng.bans.ProtectedPrefix(uint16(id), c.Ban.Prefix); err != nil {
			d.log.Info("fleet: a ban of a protected address is not applied here", "jail", c.Ban.Jail, "prefix", c.Ban.Prefix, "origin", c.Ban.Origin, "why", err)
			return
		}
		if c.Ban.End != 0 && c.Ban.End <= d.opts.Now().Unix() {
			return
		}
		ds = eng.bans.Import([]ban.Active{{Jail: uint16(id), Prefix: c.Ban.Prefix, Start: c.Ban.Start, End: c.Ban.End, Count: c.Ban.Count}}, nil, nil, nil)
		for i := range ds {
			ds[i].Reason = ban.Fleet
		}
	}
	if len(ds) > 0 {
		if err := d.applySync(ds, eng); err != nil {
			d.log.Warn("fleet: a change could not be fully applied", "prefix", c.Ban.Prefix, "err", err)
		}
	}
}
