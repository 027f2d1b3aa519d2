package pipeline

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/fleet"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/matcher"
	"github.com/portcullis/portcullis/window"
)

// failLink is this node's part in counting failures across hosts (fleet_failures): as a
// publisher its workers hand each block's failures of shared jails to one goroutine that sends
// them, a message per partition, to the fleet's stream; as a decider it counts the partitions the
// servers pin to it in windows of its own and bans through its ban manager, so the bans go to the
// bucket like any other. A publishing node still counts its own failures in its own windows: a
// link that is down never stops local bans.
type failLink struct {
	f      *fleet.Failures
	in     chan []fleet.Failure // nil unless this node publishes
	node   string
	boot   string // makes this run's message ids unique
	stop   func() // ends deciding; nil unless this node decides
	wg     sync.WaitGroup
	dec    *decider
	cancel context.CancelFunc
}

// failQueue bounds the blocks' failures waiting for the publisher; more are dropped (counted).
const failQueue = 4096

// deciderFailover is how long a decider that died keeps its partitions: its name expires from
// the deciders' list and its pins from its partitions (fleet.Decide).
const deciderFailover = 10 * time.Second

// failBatch is how many failures the publisher gathers before it sends.
const failBatch = 4096

func (l *fleetLink) startFailures(ctx context.Context, d *Daemon) error {
	fc := l.conf
	if !fc.Publish && !fc.Decide {
		return nil
	}
	var replay time.Duration // the longest findtime: what a partition taken over is read again for
	for _, j := range d.current().jails {
		replay = max(replay, j.FindTime)
	}
	keep := max(time.Hour, replay)
	var f *fleet.Failures
	if err := retryFor(ctx, time.Minute, func() error {
		var err error
		f, err = fleet.OpenFailures(ctx, l.js, fc.Partitions, fc.Replicas, keep)
		return err
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	fl := &failLink{f: f, node: l.name, boot: l.name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36), cancel: cancel}
	l.fail = fl
	if fc.Publish {
		fl.in = make(chan []fleet.Failure, failQueue)
		fl.wg.Add(1)
		go fl.publish(ctx, d, &l.stats)
	}
	if fc.Decide {
		fl.dec = &decider{d: d, stats: &l.stats}
		bad := func(err error) {
			l.stats.badBatches.Add(1)
			d.log.Warn("fleet: a failures message is malformed; skipped", "err", err)
		}
		if err := retryFor(ctx, time.Minute, func() error { // the stream's leader may be new
			var err error
			fl.stop, err = f.Decide(ctx, fleet.DecideOptions{Node: l.name, Failover: deciderFailover, Replay: replay}, fl.dec.deliver, bad)
			return err
		}); err != nil {
			return err
		}
		fl.wg.Add(1)
		go fl.dec.sweep(ctx, &fl.wg)
	}
	return nil
}

func (fl *failLink) close() {
	if fl.stop != nil {
		fl.stop()
	}
	fl.cancel()
	fl.wg.Wait()
}

// shareFailures is the workers' hook (engine.shareFailures): evs are b's counted failures; those
// of shared jails are copied and queued for the publisher without waiting, with their line when
// the jail shares lines and their captures when its actions use them.
func (d *Daemon) shareFailures(b *ingest.Block, evs []matcher.Event, e *engine, c *chain) {
	l := d.fleet.Load()
	if l == nil || l.fail == nil || l.fail.in == nil {
		return
	}
	var out []fleet.Failure
	for _, ev := range evs {
		j := e.jails[ev.Jail]
		if !j.FleetShare {
			continue
		}
		f := fleet.Failure{Jail: j.Name, Addr: ev.Addr, Time: ev.Time}
		captures := c.fields != nil && c.fields[ev.Jail] // nil: no actions of this run take any
		if (j.FleetShareLines || captures) && int(ev.Line) < len(b.Lines) {
			line := string(b.Line(int(ev.Line)))
			if j.FleetShareLines {
				f.Line = line
			}
			if captures {
				f.Fields = c.fieldsOf(ev.Jail, []string{line}, ev.Time)
			}
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return
	}
	select {
	case l.fail.in <- out:
	default:
		l.stats.failuresDropped.Add(uint64(len(out)))
	}
}

// publish gathers what the workers queue into one batch per partition and sends it when the
// queue is empty or failBatch failures wait.
func (fl *failLink) publish(ctx context.Context, d *Daemon, st *fleetStats) {
	defer fl.wg.Done()
	parts := fl.f.Partitions()
	batches := make([]fleet.Batch, parts)
	for i := range batches {
		batches[i].Node = fl.node
	}
	var seq uint64
	pending := 0
	add := func(fs []fleet.Failure) {
		eng := d.current()
		for _, f := range fs {
			id, ok := eng.byName[f.Jail]
			if !ok {
				continue
			}
			p := fleet.Partition(eng.params[id].Key(f.Addr), parts)
			batches[p].Failures = append(batches[p].Failures, f)
			pending++
		}
	}
	var out []outgoing
	flush := func() {
		out = out[:0]
		for p := range batches {
			b := &batches[p]
			if len(b.Failures) == 0 {
				continue
			}
			seq++
			out = append(out, outgoing{part: p, id: fl.boot + "-" + strconv.FormatUint(seq, 36), data: b.Encode(nil), n: len(b.Failures)})
			b.Failures = b.Failures[:0]
		}
		pending = 0
		fl.send(ctx, out, st)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case fs := <-fl.in:
			add(fs)
		gather:
			for pending < failBatch {
				select {
				case fs := <-fl.in:
					add(fs)
				default:
					break gather
				}
			}
			flush()
		}
	}
}

// outgoing is one message of failures and its id, kept until the stream acknowledges it.
type outgoing struct {
	part int
	id   string
	data []byte
	n    int
}

// send publishes msgs and waits for the stream's acknowledgements, sending again (same id: the
// stream stores a message once) what was not acknowledged, until all are or the node stops. While
// it waits (a stream electing a leader, a link down) the workers' failures queue in fl.in and,
// past failQueue blocks, are dropped and counted.
func (fl *failLink) send(ctx context.Context, msgs []outgoing, st *fleetStats) {
	wait := 100 * time.Millisecond
	for len(msgs) > 0 {
		futures := make([]jetstream.PubAckFuture, len(msgs))
		for i, m := range msgs {
			futures[i], _ = fl.f.Publish(m.part, m.id, m.data)
		}
		left := msgs[:0]
		for i, m := range msgs {
			ok := false
			if f := futures[i]; f != nil {
				select {
				case <-f.Ok():
					ok = true
				case <-f.Err():
				case <-ctx.Done():
					return
				}
			}
			if ok {
				st.failuresOut.Add(uint64(m.n))
			} else {
				left = append(left, m)
			}
		}
		msgs = left
		if len(msgs) > 0 {
			st.publishErrors.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 2*time.Second)
		}
	}
}

// decider counts the fleet's failures of the partitions pinned to this node, in windows of one
// engine generation: the first batch after a reload moves the counts into the new one's. Each
// partition has its own adder and scratch, used by that partition's delivery goroutine only. The
// lines publishers share (fleet_share_lines) are kept per key as the workers keep theirs, for the
// bans' evidence; a reload starts them afresh (the counts carry over, the lines do not).
type decider struct {
	d     *Daemon
	stats *fleetStats
	mu    sync.Mutex // guards eng, win, ev, parts
	eng   *engine
	win   *window.Window
	ev    *evidence
	parts map[int]*deciderPart
}

type deciderPart struct {
	adder     *window.Adder
	events    []matcher.Event
	crossings []window.Crossing
}

func (dc *decider) part(p int) (*engine, *evidence, *deciderPart) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	eng := dc.d.current()
	if eng != dc.eng {
		old, oldEng := dc.win, dc.eng
		dc.eng, dc.win, dc.parts = eng, window.New(eng.params, window.Options{MaxKeys: dc.d.opts.MaxKeys}), map[int]*deciderPart{}
		dc.ev = newEvidence(evidenceKeys)
		if old != nil { // a reload: the counts carry over, by jail name, as the workers' do
			now := dc.d.opts.Now().Unix()
			old.Snapshot(func(h *window.Held) {
				if id, ok := eng.byName[oldEng.jails[h.Jail].Name]; ok {
					nh := *h
					nh.Jail = uint16(id)
					dc.win.Load(&nh, now)
				}
			})
		}
	}
	dp := dc.parts[p]
	if dp == nil {
		dp = &deciderPart{adder: dc.win.NewAdder(nil)}
		dc.parts[p] = dp
	}
	return eng, dc.ev, dp
}

// deliver counts one batch. A failure of a jail this node does not share, dated more than a
// minute ahead, or older than its jail's findtime cannot count and is left out. A replayed batch
// (a partition taken over) only counts.
func (dc *decider) deliver(del fleet.Delivery) {
	eng, ev, dp := dc.part(del.Part)
	now := dc.d.opts.Now().Unix()
	dp.events = dp.events[:0]
	for i, f := range del.Batch.Failures {
		id, ok := eng.byName[f.Jail]
		if !ok || !eng.jails[id].FleetShare || f.Time > now+60 || f.Time <= now-eng.params[id].FindTime {
			continue
		}
		a := f.Addr.Unmap()
		dp.events = append(dp.events, matcher.Event{Jail: uint16(id), Addr: a, Time: f.Time})
		if f.Line != "" || f.Fields != nil {
			ev.addLine(uint16(id), eng.params[id].Key(a), f.Line, f.Fields, f.Time, del.Seq, uint32(i), eng.jails[id].MaxMatches)
		}
	}
	if !del.Replay { // received once, by the decider before
		dc.stats.failuresIn.Add(uint64(len(del.Batch.Failures)))
	}
	if len(dp.events) == 0 {
		return
	}
	dp.crossings = dp.adder.Add(dp.events, dp.crossings[:0])
	if len(dp.crossings) == 0 || del.Replay { // a replay's crossings were decided by the decider before
		return
	}
	for i := range dp.crossings {
		x := &dp.crossings[i]
		x.Matches, x.Fields = ev.takeAll(x.Jail, x.Prefix)
	}
	ds := eng.bans.Decide(dp.crossings, nil)
	n := 0
	for _, x := range ds {
		if x.Op == ban.OpBan && x.Reason != ban.Prolonged {
			n++
		}
	}
	dc.stats.decided.Add(uint64(n))
	if len(ds) > 0 {
		dc.d.applyAsync(ds, eng)
	}
}

// sweep drops the counts and lines of addresses quiet for longer than their findtime.
func (dc *decider) sweep(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			dc.mu.Lock()
			if dc.win != nil {
				now, eng := dc.d.opts.Now().Unix(), dc.eng
				dc.win.Sweep(now)
				dc.ev.sweep(now, func(j uint16) int64 { return eng.params[j].FindTime })
			}
			dc.mu.Unlock()
		}
	}
}
