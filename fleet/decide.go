package fleet

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/portcullis/portcullis/internal/mix"
)

// DecideOptions are a decider's.
type DecideOptions struct {
	Node     string        // its name, in fleet status
	Failover time.Duration // how long the partitions of a decider that died stay its own
	Replay   time.Duration // how far back a partition taken over is read again: the longest findtime
}

// Delivery is one batch a decider receives: its partition and stream sequence with it. Replay:
// a batch the partition's previous deciders counted, handed to the one taking the partition over
// so that the counts go with it: for the windows only, never for a ban.
type Delivery struct {
	Part   int
	Seq    uint64
	Batch  Batch
	Replay bool
}

// DecidersBucket lists the deciders alive: each puts its key (its node name in hex) every quarter
// of the failover, and a key not put for a failover expires (the bucket's TTL).
const DecidersBucket = "portcullis_deciders"

// Decide makes this node one of the deciders. Every partition has a durable pull consumer in the
// deciders' pinned priority group, so the server delivers a partition to one decider at a time.
// The deciders share the partitions: each consumes those it owns by rendezvous hashing over the
// deciders alive (DecidersBucket), and hands over (drains, then unpins) a partition another
// decider comes to own; the pinned group keeps a partition with one decider while their views
// differ. When the deciders alive cannot be read, a decider consumes every partition. A decider
// that dies stops putting its key: a failover later its partitions are the others', and its pins
// expire (PinnedTTL = failover). fn gets each batch once (a redelivery of a batch it had, its
// acknowledgement lost, is dropped here); bad gets every message that is not a batch. fn may run
// on several goroutines at once, never two for one partition. What was delivered to a decider and
// not acknowledged goes to the next after twice the failover (at least 5 s), after newer batches.
// A decider taking a partition over first gets, as Replay deliveries, what the partition's
// previous deciders acknowledged within o.Replay (the newest maxReplay batches of it). The
// returned stop ends it, handing its partitions over at once.
func (f *Failures) Decide(ctx context.Context, o DecideOptions, fn func(Delivery), bad func(error)) (stop func(), err error) {
	node, failover := o.Node, o.Failover
	members, err := f.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DecidersBucket, History: 1,
		TTL: failover, Storage: jetstream.FileStorage, Replicas: f.replicas})
	if err != nil {
		return nil, fmt.Errorf("fleet: the deciders' bucket: %w", err)
	}
	st, err := f.js.Stream(ctx, Stream)
	if err != nil {
		return nil, fmt.Errorf("fleet: the failures stream: %w", err)
	}
	d := &deciding{f: f, node: node, key: hex.EncodeToString([]byte(node)), members: members, stream: st,
		fn: fn, bad: bad, expiry: max(failover/2, time.Second), replayFor: min(o.Replay, st.CachedInfo().Config.MaxAge)}
	for p := range f.parts {
		c, err := f.js.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
			Durable: "p" + strconv.Itoa(p), FilterSubject: failSubject + strconv.Itoa(p),
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: max(2*failover, 5*time.Second), MaxAckPending: 4096,
			PriorityPolicy: jetstream.PriorityPolicyPinned, PinnedTTL: failover,
			PriorityGroups: []string{deciderGroup},
		})
		if err != nil {
			return nil, fmt.Errorf("fleet: partition %d's consumer: %w", p, err)
		}
		d.parts = append(d.parts, &partition{p: p, cons: c})
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := d.balance(ctx); err != nil {
		cancel()
		d.release()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(failover / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = d.balance(ctx) // a partition that cannot start now is tried again next tick
			}
		}
	}()
	return func() {
		cancel()
		<-done
		d.release()
	}, nil
}

// deciding is one decider's state. Its partitions are changed by balance and release only, which
// never run at once.
type deciding struct {
	f       *Failures
	node    string
	key     string // node in hex: any host name is a valid key
	members jetstream.KeyValue
	stream  jetstream.Stream
	fn      func(Delivery)
	bad     func(error)
	expiry  time.Duration // of a pull request
	// replayFor is how far back a partition taken over is read again (DecideOptions.Replay).
	replayFor time.Duration
	parts     []*partition
}

// maxReplay bounds the batches replayed to a decider taking a partition over.
const maxReplay = 100_000

// partition is one partition as a decider consumes it.
type partition struct {
	p    int
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext // nil: not consumed here now
	mu   sync.Mutex               // held while a batch is handed to fn
	seen seqRing                  // the batches handed to fn lately, to drop their redeliveries
	top  uint64                   // the highest stream sequence handed to fn, replays included
	// replayed is false from start until the first batch delivered: the partition's replay
	// waits for the pin, when what the previous decider acknowledged is final.
	replayed bool
}

// seqRing remembers the last len(seqs) stream sequences: more than a consumer has
// unacknowledged at once (MaxAckPending), so any redelivery of a batch handed to fn is found.
// Only redeliveries are looked up, so a scan is cheap enough.
type seqRing struct {
	seqs [8192]uint64
	next int
}

func (r *seqRing) has(seq uint64) bool { return slices.Contains(r.seqs[:], seq) }

func (r *seqRing) add(seq uint64) {
	r.seqs[r.next] = seq
	r.next = (r.next + 1) % len(r.seqs)
}

// balance says this decider is alive and consumes exactly the partitions it owns among the
// deciders alive (all of them when those cannot be read). It reports the first partition that
// could not be started.
func (d *deciding) balance(ctx context.Context) error {
	_, perr := d.members.Put(ctx, d.key, []byte(d.node))
	alive, lerr := d.alive(ctx)
	var first error
	for _, pt := range d.parts {
		own := perr != nil || lerr != nil || Owner(pt.p, alive) == d.node
		switch {
		case own && pt.cc == nil:
			if err := d.start(pt); err != nil && first == nil {
				first = err
			}
		case !own && pt.cc != nil:
			d.handOver(ctx, pt)
		}
	}
	return first
}

// alive lists the deciders alive, this one included.
func (d *deciding) alive(ctx context.Context) ([]string, error) {
	keys, err := d.members.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	names := []string{d.node}
	for k := range keys.Keys() {
		if b, err := hex.DecodeString(k); err == nil && string(b) != d.node {
			names = append(names, string(b))
		}
	}
	return names, nil
}

// Owner is the decider that owns partition p among the deciders alive: the one whose hash with p
// is highest (rendezvous hashing), so a decider that joins or leaves moves only its share.
func Owner(p int, deciders []string) string {
	var best string
	var bestH uint64
	for _, n := range deciders {
		h := fnv.New64a()
		h.Write([]byte(n))
		var pb [8]byte
		binary.LittleEndian.PutUint64(pb[:], uint64(p))
		h.Write(pb[:])
		if v := mix.Fmix64(h.Sum64()); best == "" || v > bestH || v == bestH && n < best {
			best, bestH = n, v
		}
	}
	return best
}

func (d *deciding) start(pt *partition) error {
	p := pt.p
	pt.mu.Lock() // a callback of the last consumer may still run (handOver's 5 s ran out)
	pt.replayed = false
	pt.mu.Unlock()
	cc, err := pt.cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			m.Term()
			return
		}
		if pin := m.Headers().Get("Nats-Pin-Id"); pin != "" {
			if old, _ := d.f.pins.Swap(p, pin); old != pin {
				go d.f.names.PutString(context.Background(), pin, d.node) // a name for fleet status; best effort
			}
		}
		pt.mu.Lock()
		defer pt.mu.Unlock()
		seq := meta.Sequence.Stream
		if meta.NumDelivered > 1 && pt.seen.has(seq) {
			m.Ack()
			return
		}
		if !pt.replayed {
			pt.replayed = true
			d.replay(pt)
		}
		pt.seen.add(seq)
		pt.top = max(pt.top, seq)
		b, err := Decode(m.Data())
		if err != nil {
			d.bad(fmt.Errorf("partition %d, sequence %d: %w", p, meta.Sequence.Stream, err))
		} else {
			d.fn(Delivery{Part: p, Seq: meta.Sequence.Stream, Batch: b})
		}
		m.Ack()
	}, jetstream.PullPriorityGroup(deciderGroup), jetstream.PullExpiry(d.expiry))
	if err != nil {
		return fmt.Errorf("fleet: partition %d: %w", p, err)
	}
	pt.cc = cc
	return nil
}

// replay hands fn, as Replay deliveries, the batches of pt of the last replayFor that deciders
// acknowledged after the last this one had: what the previous decider counted. When more than
// maxReplay are there, it starts later, about where the newest maxReplay begin. pt.mu is held.
func (d *deciding) replay(pt *partition) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := pt.cons.Info(ctx)
	if err != nil || d.replayFor <= 0 {
		return // the counts start afresh, as without a replay
	}
	floor := info.AckFloor.Stream
	if floor <= pt.top {
		return
	}
	from, now := time.Now().Add(-d.replayFor), time.Now()
	r, err := d.replayFrom(ctx, pt.p, from)
	if err != nil {
		return
	}
	if m, ok := r.next(); ok {
		if meta, err := m.Metadata(); err == nil && meta.NumPending+1 > maxReplay {
			// Messages come at about an even rate: skip the oldest share, once.
			skip := float64(now.Sub(from)) * (1 - float64(maxReplay)/float64(meta.NumPending+1))
			if r, err = d.replayFrom(ctx, pt.p, from.Add(time.Duration(skip))); err != nil {
				return
			}
		} else {
			r.unread = m
		}
	}
	for n := 0; n < maxReplay; n++ {
		m, ok := r.next()
		if !ok {
			return
		}
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		seq := meta.Sequence.Stream
		if seq > floor {
			return
		}
		if seq > pt.top && !pt.seen.has(seq) {
			if b, err := Decode(m.Data()); err == nil {
				d.fn(Delivery{Part: pt.p, Seq: seq, Batch: b, Replay: true})
			}
			pt.top = seq
		}
		if meta.NumPending == 0 {
			return
		}
	}
}

// replayReader reads a partition from a time on, a fetch of up to 1,000 at a time.
type replayReader struct {
	oc     jetstream.Consumer
	batch  []jetstream.Msg
	unread jetstream.Msg // put back: next returns it first
}

func (d *deciding) replayFrom(ctx context.Context, p int, t time.Time) (*replayReader, error) {
	oc, err := d.f.js.OrderedConsumer(ctx, Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{failSubject + strconv.Itoa(p)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: new(t)})
	if err != nil {
		return nil, err
	}
	return &replayReader{oc: oc}, nil
}

// next is the next message; false when the server has none at once nor within a second, or the
// read fails.
func (r *replayReader) next() (jetstream.Msg, bool) {
	if m := r.unread; m != nil {
		r.unread = nil
		return m, true
	}
	if len(r.batch) == 0 {
		b, err := r.oc.FetchNoWait(1000)
		if err == nil {
			for m := range b.Messages() {
				r.batch = append(r.batch, m)
			}
		}
		if len(r.batch) == 0 { // a consumer just made may not have them ready: wait once
			if b, err = r.oc.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
				return nil, false
			}
			for m := range b.Messages() {
				r.batch = append(r.batch, m)
			}
		}
		if len(r.batch) == 0 {
			return nil, false
		}
	}
	m := r.batch[0]
	r.batch = r.batch[1:]
	return m, true
}

// handOver stops consuming pt after the batches it holds are counted and, if it was pinned here,
// unpins it, so the decider that owns it now is pinned at its next pull.
func (d *deciding) handOver(ctx context.Context, pt *partition) {
	pt.cc.Drain()
	select {
	case <-pt.cc.Closed():
	case <-time.After(5 * time.Second):
		pt.cc.Stop()
	}
	pt.cc = nil
	if _, held := d.f.pins.LoadAndDelete(pt.p); held {
		uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = d.stream.UnpinConsumer(uctx, "p"+strconv.Itoa(pt.p), deciderGroup) // else the pin expires
		cancel()
	}
}

// release hands every partition over and takes this decider off the list at once.
func (d *deciding) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.members.Delete(ctx, d.key)
	for _, pt := range d.parts {
		if pt.cc != nil {
			d.handOver(ctx, pt)
		}
	}
}
