// Package fleet is what portcullis nodes share over NATS JetStream (docs/fleet.md): an embedded
// NATS server, the key-value bucket of bans in force (one key per (jail, prefix), each with a
// per-key TTL equal to the ban's remaining time, so an expired ban leaves the bucket by itself and
// every watcher hears of it), and the partitioned stream of failures that deciders count. It knows
// nothing of the daemon: pipeline wires it in.
package fleet

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket holding the fleet's bans.
const Bucket = "portcullis_bans"

// Ban is a ban as the fleet shares it: what a node decided, and which node. Its key holds Jail
// and Prefix, its value the rest (appendValue).
type Ban struct {
	Jail     string
	Prefix   netip.Prefix
	Start    int64 // unix seconds
	End      int64 // unix seconds; 0: forever
	Count    uint32
	Origin   string // the node that decided it
	Reason   string
	Evidence *Evidence // nil: a ban not made from failures (or shared without them)
}

// Key is the bucket key of a (jail, prefix): the jail's name and the prefix in hex, so that no
// jail name or address form can make two bans share a key or break the key's syntax.
func Key(jail string, p netip.Prefix) string {
	b := p.Masked().Addr().AsSlice()
	return hex.EncodeToString([]byte(jail)) + "." + hex.EncodeToString(b) + "-" + strconv.Itoa(p.Bits())
}

// Bans is the fleet's bucket of bans in force.
type Bans struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// OpenBans opens the bucket, creating it when the fleet has none: one value per key, per-key
// TTLs on (delete markers kept a minute so every watcher sees an expiry), replicas as the
// deployment has servers (1 embedded, 3 clustered).
func OpenBans(ctx context.Context, js jetstream.JetStream, replicas int) (*Bans, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: the bans bucket: %w", err)
	}
	return &Bans{js: js, kv: kv}, nil
}

// Put shares a ban: its key lives until the ban's end (a permanent ban until an unban). A ban
// shared again (prolonged) replaces the value and its TTL in one message, so watchers see one
// put, never a lift between two bans.
func (b *Bans) Put(ctx context.Context, ban Ban, now time.Time) error {
	if !ban.Prefix.IsValid() || ban.Jail == "" {
		return errors.New("fleet: a ban needs a jail and a prefix")
	}
	var opts []jetstream.PublishOpt
	if ban.End != 0 {
		ttl := time.Unix(ban.End, 0).Sub(now)
		if ttl < time.Second {
			return nil // over already: nothing to share
		}
		// Whole seconds, rounded up: the key outlives the ban's end, never the other way.
		opts = append(opts, jetstream.WithMsgTTL((ttl+time.Second-1)/time.Second*time.Second))
	}
	// The bucket's subject for the key, as the KV API writes it (per-key TTLs are per message).
	_, err := b.js.Publish(ctx, kvPrefix+Key(ban.Jail, ban.Prefix), appendValue(nil, &ban), opts...)
	return err
}

// Delete lifts a shared ban everywhere. The bucket remembers it LiftedKept.
func (b *Bans) Delete(ctx context.Context, jail string, p netip.Prefix) error {
	return b.kv.Purge(ctx, Key(jail, p), jetstream.PurgeTTL(LiftedKept))
}

// Change is what a watcher hears: a ban shared, or lifted (by an unban anywhere or its end).
type Change struct {
	Ban   Ban // for a lift, only Jail and Prefix
	Unban bool
	At    int64 // unix seconds the bucket stored it
}

// LiftedKept is how long the bucket remembers an unban (its key's purge marker): a node that
// comes back within it learns which of its own bans the fleet lifted meanwhile.
const LiftedKept = 7 * 24 * time.Hour

// Watch calls fn for every key of the bucket, then ready once, then for every change until ctx
// ends. fn runs on one goroutine, in the bucket's order. The initial values are the bans in force
// and the unbans the bucket remembers (LiftedKept), as lifts; a ban's end leaves nothing. A value
// that is not a ban (a hostile or broken writer) is skipped and reported to bad.
//
// The bans in force are fetched in batches (a pull consumer of each key's last value: a joining
// node takes 100,000 in a fraction of the time a watcher's flow-controlled push needs), then a
// watcher resumes at the sequence after the last of them, so no change falls between the two.
func (b *Bans) Watch(ctx context.Context, fn func(Change), ready func(), bad func(key string, err error)) error {
	var v valueReader // the fetch's, then the watcher's
	last, err := b.inForce(ctx, &v, fn, bad)
	if err != nil {
		return err
	}
	w, err := b.kv.WatchAll(ctx, jetstream.ResumeFromRevision(last+1))
	if err != nil {
		return err
	}
	go func() {
		defer w.Stop()
		if ready != nil {
			ready()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil { // the watcher caught up: ready was said already
					continue
				}
				c, err := v.change(e.Key(), e.Operation(), e.Value())
				c.At = e.Created().Unix()
				if err != nil {
					if bad != nil {
						bad(e.Key(), err)
					}
					continue
				}
				fn(c)
			}
		}
	}()
	return nil
}

// inForce calls fn for each key's last value that is a ban and returns the stream sequence a
// watcher of the changes after them starts after.
func (b *Bans) inForce(ctx context.Context, v *valueReader, fn func(Change), bad func(key string, err error)) (uint64, error) {
	st, err := b.js.Stream(ctx, "KV_"+Bucket)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return info.State.LastSeq, nil
	}
	seen, err := b.fetchInForce(ctx, v, info.State.Msgs, info.Config.MaxMsgsPerSubject == 1, fn, bad)
	return max(info.State.LastSeq, seen), err
}

// fetchInForce reads each key's last value, 10,000 at a time, and returns the stream sequence of
// the last message it read. msgs is how many the stream holds, so that no fetch waits for
// messages that will not come. A stream that keeps one message per key (onePerKey: the bucket as
// OpenBans makes it) holds only last values and is read whole, which the server starts at once; a
// filtered read of the last per key makes it walk every key first (0.2 s for 100,000).
func (b *Bans) fetchInForce(ctx context.Context, v *valueReader, msgs uint64, onePerKey bool, fn func(Change), bad func(key string, err error)) (uint64, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{kvPrefix + ">"}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy}
	if onePerKey {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	}
	cons, err := b.js.OrderedConsumer(ctx, "KV_"+Bucket, cfg)
	if err != nil {
		return 0, err
	}
	var last uint64
	for left := msgs; ; {
		batch, err := cons.Fetch(int(min(left, 10_000)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return 0, err
		}
		n, pending := 0, uint64(1)
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return 0, err
			}
			last, pending = meta.Sequence.Stream, meta.NumPending
			key, op := kvEntry(m.Subject(), m.Headers())
			if op != jetstream.KeyValuePut && m.Headers().Get(jetstream.MarkerReasonHeader) != "" {
				continue // a ban's end: nothing to remember
			}
			c, err := v.change(key, op, m.Data())
			c.At = meta.Timestamp.Unix()
			if err != nil {
				if bad != nil {
					bad(key, err)
				}
				continue
			}
			fn(c)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return 0, err
		}
		if n == 0 || pending == 0 {
			return last, nil
		}
		left = pending
	}
}

// kvPrefix is the subject prefix of the bucket's keys.
const kvPrefix = "$KV." + Bucket + "."

// kvEntry is a bucket message's key and operation, read as the KV API reads them: a delete or a
// purge by its header, a TTL's end by the server's marker.
func kvEntry(subject string, h nats.Header) (string, jetstream.KeyValueOp) {
	key := strings.TrimPrefix(subject, kvPrefix)
	switch {
	case h.Get("KV-Operation") == "DEL" || h.Get(jetstream.MarkerReasonHeader) == "Remove":
		return key, jetstream.KeyValueDelete
	case h.Get("KV-Operation") == "PURGE" || h.Get(jetstream.MarkerReasonHeader) != "":
		return key, jetstream.KeyValuePurge
	}
	return key, jetstream.KeyValuePut
}

// change reads a bucket message as a Change: the key names the ban, the value (for a put) the
// rest.
func (v *valueReader) change(key string, op jetstream.KeyValueOp, value []byte) (Change, error) {
	var c Change
	jail, p, err := v.key(key)
	if err != nil {
		return c, err
	}
	c.Ban.Jail, c.Ban.Prefix = jail, p
	if op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		c.Unban = true
		return c, nil
	}
	return c, v.read(value, &c.Ban)
}

// key reads Key back without allocating but for a jail name it has not seen.
func (v *valueReader) key(key string) (string, netip.Prefix, error) {
	bad := func() (string, netip.Prefix, error) {
		return "", netip.Prefix{}, fmt.Errorf("fleet: key %q is not a ban's", key)
	}
	j, rest, ok := strings.Cut(key, ".")
	a, bits, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || len(j) == 0 || len(j) > 2*maxJail || (len(a) != 8 && len(a) != 32) {
		return bad()
	}
	var jb [maxJail]byte
	var ab [16]byte
	_, err1 := hex.Decode(jb[:], []byte(j))
	_, err2 := hex.Decode(ab[:], []byte(a))
	n, err3 := strconv.Atoi(bits)
	if err1 != nil || err2 != nil || err3 != nil {
		return bad()
	}
	addr := netip.AddrFrom16(ab)
	if len(a) == 8 {
		addr = netip.AddrFrom4([4]byte(ab[:4]))
	}
	p, err := addr.Prefix(n)
	if err != nil || p.Addr() != addr {
		return bad()
	}
	return v.intern(jb[:len(j)/2]), p, nil
}
