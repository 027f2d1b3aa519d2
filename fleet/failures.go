package fleet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/mix"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream is the stream of failures nodes publish for the fleet's deciders: subject
// portcullis.failures.<partition>, the partition a hash of the failure's counting key.
const (
	Stream        = "portcullis_failures"
	failSubject   = "portcullis.failures."
	deciderGroup  = "deciders"
	maxNode       = 64
	maxJail       = 128
	maxPerMessage = 1 << 14
)

// Failure is one failure as the fleet counts it: what a window needs, the filter's captures when
// the jail's actions use them, and its log line only when the jail shares lines
// (fleet_share_lines). Both are bounded: maxFields captures of maxField bytes, maxLine bytes of
// line.
type Failure struct {
	Jail   string
	Addr   netip.Addr
	Time   int64             // unix seconds, the log line's
	Fields map[string]string // nil: none
	Line   string            // "": not shared
}

const (
	maxFields = 8
	maxField  = 256
)

// Batch is one message of the stream: failures one node saw, of one partition.
type Batch struct {
	Node     string
	Failures []Failure
}

// Partition is the partition of a counting key (an address, or its network when the jail counts
// networks) among n: every failure of one key goes to one partition and so to one decider.
func Partition(key netip.Prefix, n int) int {
	a := key.Masked().Addr().As16()
	h := binary.LittleEndian.Uint64(a[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(a[8:]) ^ uint64(key.Bits())
	return int(mix.Fmix64(h) % uint64(n))
}

// Encode appends b's wire form to dst: "PF2", the node, a table of jail names, then per failure
// the jail's index, the address (4 or 16 bytes), the time, the captures (a count, then names and
// values, by name) and the line (empty: none), all lengths as uvarints. What is over the bounds
// is left out (captures past maxFields) or cut (values, the line).
func (b *Batch) Encode(dst []byte) []byte {
	dst = append(dst, "PF2"...)
	dst = appendString(dst, b.Node)
	var jails []string
	idx := map[string]int{}
	for _, f := range b.Failures {
		if _, ok := idx[f.Jail]; !ok {
			idx[f.Jail] = len(jails)
			jails = append(jails, f.Jail)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(jails)))
	for _, j := range jails {
		dst = appendString(dst, j)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Failures)))
	for _, f := range b.Failures {
		dst = binary.AppendUvarint(dst, uint64(idx[f.Jail]))
		a := f.Addr.Unmap().AsSlice()
		dst = append(dst, byte(len(a)))
		dst = append(dst, a...)
		dst = binary.AppendVarint(dst, f.Time)
		dst = appendFields(dst, f.Fields)
		dst = appendString(dst, cut(f.Line, maxLine))
	}
	return dst
}

func appendFields(dst []byte, fields map[string]string) []byte {
	names := make([]string, 0, len(fields))
	for k := range fields {
		if len(k) <= maxField {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	names = names[:min(len(names), maxFields)]
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, k := range names {
		dst = appendString(dst, k)
		dst = appendString(dst, cut(fields[k], maxField))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// errBatch is every malformed message's error: a message is whole or skipped.
var errBatch = errors.New("fleet: not a failures message")

// Decode reads a message. Anything malformed (a hostile or broken publisher) is an error and
// nothing of it is used: sizes are bounded before anything is allocated.
func Decode(p []byte) (Batch, error) {
	var b Batch
	if len(p) < 3 || string(p[:3]) != "PF2" {
		return b, errBatch
	}
	r := reader{p: p[3:]}
	b.Node = r.str(maxNode)
	jails := list(&r, 256, func() string { return r.str(maxJail) })
	n := r.uvarint(maxPerMessage)
	if r.err != nil || n > len(r.p)/9 { // a failure takes at least 9 bytes
		return Batch{}, errBatch
	}
	b.Failures = make([]Failure, 0, n)
	for range n {
		j := r.uvarint(len(jails) - 1)
		l := r.byte()
		a, ok := netip.AddrFromSlice(r.bytes(int(l)))
		t, m := binary.Varint(r.p)
		if r.err != nil || !ok || (l != 4 && l != 16) || m <= 0 || !a.IsValid() || a.IsUnspecified() {
			return Batch{}, errBatch
		}
		r.p = r.p[m:]
		f := Failure{Jail: jails[j], Addr: a, Time: t}
		if nf := r.uvarint(maxFields); nf > 0 && nf <= len(r.p)/2 {
			f.Fields = make(map[string]string, nf)
			for range nf {
				k := r.str(maxField)
				f.Fields[k] = r.str(maxField)
			}
			if len(f.Fields) != nf { // a name twice: not what Encode writes
				return Batch{}, errBatch
			}
		} else if nf > 0 {
			return Batch{}, errBatch
		}
		f.Line = r.str(maxLine)
		if r.err != nil {
			return Batch{}, errBatch
		}
		b.Failures = append(b.Failures, f)
	}
	if len(r.p) != 0 || b.Node == "" {
		return Batch{}, errBatch
	}
	return b, nil
}

type reader struct {
	p   []byte
	err error
}

func (r *reader) uvarint(limit int) int {
	v, m := binary.Uvarint(r.p)
	if m <= 0 || limit < 0 || v > uint64(limit) {
		r.err = errBatch
		r.p = nil
		return 0
	}
	r.p = r.p[m:]
	return int(v)
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.p) {
		r.err = errBatch
		r.p = nil
		return nil
	}
	out := r.p[:n]
	r.p = r.p[n:]
	return out
}

func (r *reader) byte() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) str(limit int) string { return string(r.bytes(r.uvarint(limit))) }

// list reads a count, at most limit and no more than the bytes left (an item takes one at
// least), then that many items; nil for none. A count out of bounds fails r.
func list[T any](r *reader, limit int, item func() T) []T {
	n := r.uvarint(limit)
	if n > len(r.p) {
		r.err, r.p = errBatch, nil
	}
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = item()
	}
	return out
}

// Failures is the fleet's failures stream.
type Failures struct {
	js       jetstream.JetStream
	parts    int
	replicas int
	pins     sync.Map           // partition -> the pin id of this node's decider (from its messages)
	names    jetstream.KeyValue // pin id -> decider's node name (PinsBucket), for fleet status
}

// PinsBucket names the deciders: a decider that a partition is pinned to writes its pin id with
// its node name, so fleet status on any node can say who decides which partition.
const PinsBucket = "portcullis_pins"

// OpenFailures opens the stream, creating it when the fleet has none: parts partitions, kept for
// keep (the longest findtime of the shared jails: what a decider taking over a partition reads
// again), a publisher's retry within two minutes stored once.
func OpenFailures(ctx context.Context, js jetstream.JetStream, parts, replicas int, keep time.Duration) (*Failures, error) {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: Stream, Subjects: []string{failSubject + "*"}, Storage: jetstream.FileStorage,
		Replicas: max(replicas, 1), MaxAge: max(keep, time.Minute), Duplicates: 2 * time.Minute,
		MaxBytes: 4 << 30, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: the failures stream: %w", err)
	}
	names, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: PinsBucket, History: 1,
		TTL: 24 * time.Hour, Storage: jetstream.FileStorage, Replicas: max(replicas, 1)})
	if err != nil {
		return nil, fmt.Errorf("fleet: the deciders' bucket: %w", err)
	}
	return &Failures{js: js, parts: parts, replicas: max(replicas, 1), names: names}, nil
}

// Partitions is how many partitions the stream has.
func (f *Failures) Partitions() int { return f.parts }

// Publish sends one batch to its partition without waiting; id makes a retry of the same batch
// stored once (the stream's duplicate window). The returned future reports the stream's ack.
func (f *Failures) Publish(part int, id string, data []byte) (jetstream.PubAckFuture, error) {
	m := &nats.Msg{Subject: failSubject + strconv.Itoa(part), Data: data}
	return f.js.PublishMsgAsync(m, jetstream.WithMsgID(id))
}
