package fleet

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func sampleBatch() Batch {
	return Batch{Node: "web1", Failures: []Failure{
		{Jail: "sshd", Addr: netip.MustParseAddr("203.0.113.5"), Time: 1_700_000_000, Fields: map[string]string{"user": "root", "port": "22"},
			Line: "Failed password for root from 203.0.113.5 port 22 ssh2"},
		{Jail: "nginx-http-auth", Addr: netip.MustParseAddr("2001:db8::7"), Time: 1_700_000_001},
		{Jail: "sshd", Addr: netip.MustParseAddr("198.51.100.1"), Time: -5},
	}}
}

// A batch reads back as written; every truncation of it, and a failure count larger than the
// bytes can hold, is an error and yields nothing.
func TestBatchWireForm(t *testing.T) {
	b := sampleBatch()
	p := b.Encode(nil)
	got, err := Decode(p)
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for n := range len(p) {
		if got, err := Decode(p[:n]); err == nil || got.Node != "" || got.Failures != nil {
			t.Fatalf("a message cut at %d bytes was read: %+v", n, got)
		}
	}
	if _, err := Decode(append(p, 0)); err == nil {
		t.Fatal("trailing bytes were accepted")
	}
	// "PF1", node "n", one jail "j", then 16384 failures announced in a few bytes.
	huge := []byte("PF2\x01n\x01\x01j\x80\x80\x01")
	if _, err := Decode(huge); err == nil {
		t.Fatal("a count beyond the message was accepted")
	}
	zero := Batch{Node: "n", Failures: []Failure{{Jail: "j", Addr: netip.IPv4Unspecified(), Time: 1}}}
	if _, err := Decode(zero.Encode(nil)); err == nil {
		t.Fatal("the unspecified address was accepted")
	}
}

// Captures and lines beyond the bounds are cut or left out, never refused: a publisher's
// hostile line still counts as a failure.
func TestBatchBounds(t *testing.T) {
	fields := map[string]string{}
	for i := range 10 {
		fields[string(rune('a'+i))] = strings.Repeat("v", 300)
	}
	b := Batch{Node: "n", Failures: []Failure{{Jail: "j", Addr: netip.MustParseAddr("192.0.2.1"), Time: 1, Fields: fields, Line: strings.Repeat("x", 5000)}}}
	got, err := Decode(b.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	f := got.Failures[0]
	if len(f.Fields) != maxFields || f.Fields["a"] != strings.Repeat("v", maxField) || f.Fields["i"] != "" || len(f.Line) != maxLine {
		t.Fatalf("bounded failure: %d captures (%q…), line of %d bytes", len(f.Fields), f.Fields["a"][:4], len(f.Line))
	}
}

// FuzzDecode: no input panics or allocates beyond its bounds; what decodes encodes back the same.
func FuzzDecode(f *testing.F) {
	b := sampleBatch()
	f.Add(b.Encode(nil))
	f.Add([]byte("PF2"))
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := Decode(p)
		if err != nil {
			return
		}
		if again, err := Decode(got.Encode(nil)); err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("%+v does not read back: %+v, %v", got, again, err)
		}
	})
}

// Every address of a network counted as one key has one partition; partitions spread.
func TestPartition(t *testing.T) {
	seen := map[int]bool{}
	for i := range 256 {
		a := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		seen[Partition(netip.PrefixFrom(a, 32), 16)] = true
	}
	if len(seen) < 12 {
		t.Fatalf("256 addresses fell in %d of 16 partitions", len(seen))
	}
	p := func(s string) int { return Partition(netip.MustParsePrefix(s), 16) }
	if p("2001:db8:1:2::/64") != p("2001:db8:1:2:ffff::/64") {
		t.Fatal("one network, two partitions")
	}
}

type decided struct {
	mu       sync.Mutex
	seqs     map[uint64]string // stream sequence -> decider
	last     map[int]string    // partition -> the decider of its last batch
	replayed map[uint64]string // stream sequence -> the decider it was replayed to
	dup      int
}

func (d *decided) record(who string) func(Delivery) {
	return func(del Delivery) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if del.Replay {
			if _, ok := d.replayed[del.Seq]; ok {
				d.dup++
			}
			d.replayed[del.Seq] = who
			return
		}
		if _, ok := d.seqs[del.Seq]; ok {
			d.dup++
		}
		d.seqs[del.Seq] = who
		d.last[del.Part] = who
	}
}

func (d *decided) state() (all int, last map[int]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seqs), maps.Clone(d.last)
}

// Two deciders on a real server share the partitions: once both are up, each partition's batches
// go to the one that owns it by rendezvous hashing; a publisher's retry (same id) is stored once;
// when one decider stops, the other takes its partitions over at once and nothing is delivered
// twice. Each partition taken over comes with what the other had counted (replayed once).
func TestDecidersShareAndFailOver(t *testing.T) {
	const parts = 8
	srv, err := StartEmbedded(EmbeddedOptions{Name: "n1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	js := func() jetstream.JetStream {
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return js
	}
	ctx := context.Background()
	pub, err := OpenFailures(ctx, js(), parts, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d := &decided{seqs: map[uint64]string{}, last: map[int]string{}, replayed: map[uint64]string{}}
	bad := func(err error) { t.Errorf("bad batch: %v", err) }
	a, _ := OpenFailures(ctx, js(), parts, 1, time.Hour)
	stopA, err := a.Decide(ctx, DecideOptions{Node: "a", Failover: 2 * time.Second, Replay: time.Hour}, d.record("a"), bad)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := OpenFailures(ctx, js(), parts, 1, time.Hour)
	stopB, err := b.Decide(ctx, DecideOptions{Node: "b", Failover: 2 * time.Second, Replay: time.Hour}, d.record("b"), bad)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	owners := map[int]string{}
	for p := range parts {
		owners[p] = Owner(p, []string{"a", "b"})
	}
	if !slices.Contains(slices.Collect(maps.Values(owners)), "a") || !slices.Contains(slices.Collect(maps.Values(owners)), "b") {
		t.Fatalf("the test needs partitions owned by each decider: %v", owners)
	}

	round := 0
	send := func() {
		for p := range parts {
			bt := Batch{Node: "x", Failures: []Failure{{Jail: "sshd", Addr: netip.AddrFrom4([4]byte{203, 0, byte(round), byte(p)}), Time: 1}}}
			id := fmt.Sprintf("x-%d-%d", round, p)
			for range 2 { // the same message twice: a publisher's retry
				publishStored(t, pub, p, id, bt)
			}
		}
		round++
	}
	// One round, all delivered: the partitions of each, by decider.
	deliver := func(what string) map[int]string {
		t.Helper()
		send()
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if all, last := d.state(); all == round*parts {
				return last
			}
		}
		all, _ := d.state()
		t.Fatalf("%s: %d of %d batches delivered", what, all, round*parts)
		return nil
	}
	// The deciders settle within a few balancing rounds (half a second each).
	settled := false
	for end := time.Now().Add(30 * time.Second); !settled && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		settled = maps.Equal(deliver("a round while the deciders settle"), owners)
	}
	if !settled {
		_, last := d.state()
		t.Fatalf("the partitions did not settle with their owners: %v, want %v", last, owners)
	}
	if got := deliver("a round once settled"); !maps.Equal(got, owners) {
		t.Fatalf("once settled, a round went to %v, want %v", got, owners)
	}
	stopA()
	start := time.Now()
	got := deliver("b takes a's partitions")
	for p := range parts {
		if got[p] != "b" {
			t.Fatalf("after a stopped, partition %d went to %q", p, got[p])
		}
	}
	t.Logf("b had a's partitions %v after a stopped", time.Since(start))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dup != 0 {
		t.Fatalf("%d batches delivered twice", d.dup)
	}
	// b took every partition from a, one part as it joined, the rest as a stopped: b had every
	// batch a counted replayed, and nothing else.
	for seq, who := range d.seqs {
		if r, ok := d.replayed[seq]; (who == "a") != ok || ok && r != "b" {
			t.Fatalf("batch %d, counted by %s, replayed to %q (%v)", seq, who, r, ok)
		}
	}
}

// publishStored publishes bt to partition p and waits until the stream has stored it.
func publishStored(t *testing.T, pub *Failures, p int, id string, bt Batch) {
	t.Helper()
	f, err := pub.Publish(p, id, bt.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Ok():
	case err := <-f.Err():
		t.Fatal(err)
	}
}

// A decider that dies with a batch delivered and not acknowledged: the partition goes to the
// other decider, which gets newer batches first and the unacknowledged one when its ack wait
// ends — and counts it, though its sequence is lower than what it already had.
func TestDeciderCountsRedeliveryAfterFailover(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedOptions{Name: "n1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	connect := func() (jetstream.JetStream, *nats.Conn) {
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return js, nc
	}
	ctx := context.Background()
	pjs, _ := connect()
	pub, err := OpenFailures(ctx, pjs, 1, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bad := func(err error) { t.Errorf("bad batch: %v", err) }
	taken, hung := make(chan struct{}, 1), make(chan struct{})
	ajs, anc := connect()
	a, _ := OpenFailures(ctx, ajs, 1, 1, time.Hour)
	stopA, err := a.Decide(ctx, DecideOptions{Node: "a", Failover: 2 * time.Second, Replay: time.Hour}, func(Delivery) { taken <- struct{}{}; <-hung }, bad) // takes a batch, never returns
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(hung); stopA() }()
	publish := func(last byte) {
		t.Helper()
		publishStored(t, pub, 0, fmt.Sprint("m", last), Batch{Node: "x", Failures: []Failure{{Jail: "sshd", Addr: netip.AddrFrom4([4]byte{203, 0, 113, last}), Time: 1}}})
	}
	publish(1)
	select {
	case <-taken: // a holds it, unacknowledged
	case <-time.After(20 * time.Second):
		t.Fatal("a never got the batch")
	}
	anc.Close() // a dies

	var mu sync.Mutex
	got := map[byte]bool{}
	bjs, _ := connect()
	b, _ := OpenFailures(ctx, bjs, 1, 1, time.Hour)
	stopB, err := b.Decide(ctx, DecideOptions{Node: "b", Failover: 2 * time.Second, Replay: time.Hour}, func(del Delivery) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range del.Batch.Failures {
			got[f.Addr.As4()[3]] = true
		}
	}, bad)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	publish(2)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := got[1] && got[2]
		mu.Unlock()
		if done {
			return
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("b counted %v; want the batch a never acknowledged (1) and the newer one (2)", got)
}
