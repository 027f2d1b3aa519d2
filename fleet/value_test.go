package fleet

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func sampleBan() Ban {
	return Ban{Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"), Start: 1_700_000_000, End: 1_700_003_600,
		Count: 3, Origin: "edge-1", Reason: "failures", Evidence: &Evidence{Failures: 5, Times: []uint32{1_699_999_990, 1_699_999_999},
			Lines: []string{"Failed password for root from 192.0.2.7", "Failed password for <script> from 192.0.2.7"}}}
}

// A ban's value reads back whole; evidence beyond the bounds is cut to its newest part; a value
// cut short, with bytes after it, announcing more than it holds or ending before it starts is
// refused.
func TestBanValueWireForm(t *testing.T) {
	b := sampleBan()
	p := appendValue(nil, &b)
	var v valueReader
	got := Ban{Jail: b.Jail, Prefix: b.Prefix}
	if err := v.read(p, &got); err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip: %+v %+v, %v", got, got.Evidence, err)
	}
	for n := range len(p) {
		if err := v.read(p[:n], new(Ban)); err == nil {
			t.Fatalf("a value cut at %d bytes was read", n)
		}
	}
	if err := v.read(append(p, 0), new(Ban)); err == nil {
		t.Fatal("trailing bytes were accepted")
	}
	// "PB1", start 1, end 2, count 1, origin "n", no reason, no failures, 32 times announced.
	if err := v.read([]byte("PB1\x01\x02\x01\x01n\x00\x00\x20"), new(Ban)); err == nil {
		t.Fatal("times beyond the value were accepted")
	}
	back := b
	back.End = b.Start - 1
	if err := v.read(appendValue(nil, &back), new(Ban)); err == nil {
		t.Fatal("a ban that ends before it starts was accepted")
	}

	many := b
	many.Evidence = &Evidence{Failures: 40}
	for i := range 40 {
		many.Evidence.Times = append(many.Evidence.Times, uint32(1000+i))
		many.Evidence.Lines = append(many.Evidence.Lines, strings.Repeat("é", 600)+string(rune('a'+i%26)))
	}
	got = Ban{}
	if err := v.read(appendValue(nil, &many), &got); err != nil {
		t.Fatal(err)
	}
	ev := got.Evidence
	if ev.Failures != 40 || len(ev.Times) != maxTimes || ev.Times[0] != 1000+40-maxTimes || len(ev.Lines) != maxLines {
		t.Fatalf("bounded evidence: %d failures, %d times from %d, %d lines", ev.Failures, len(ev.Times), ev.Times[0], len(ev.Lines))
	}
	// The newest lines are kept, each cut to maxLine bytes at a character's start ("é" is 2 bytes).
	if l := ev.Lines[0]; len(l) != maxLine || l != strings.Repeat("é", maxLine/2) || many.Evidence.Lines[40-maxLines][:maxLine] != l {
		t.Fatalf("a long line was cut to %d bytes: %q…", len(l), l[:8])
	}
}

// Reading a value of a known origin and jail allocates nothing but its evidence.
func TestBanValueReadAllocs(t *testing.T) {
	b := sampleBan()
	b.Evidence = nil
	key, val := Key(b.Jail, b.Prefix), appendValue(nil, &b)
	var v valueReader
	if _, err := v.change(key, jetstream.KeyValuePut, val); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { v.change(key, jetstream.KeyValuePut, val) }); n != 0 {
		t.Fatalf("reading a ban allocates %v times", n)
	}
}

// FuzzBanValue: no value panics or allocates beyond its bounds; what reads writes back the same.
func FuzzBanValue(f *testing.F) {
	b := sampleBan()
	f.Add(appendValue(nil, &b))
	f.Add([]byte("PB1"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var v valueReader
		var got Ban
		if err := v.read(p, &got); err != nil {
			return
		}
		var again Ban
		if err := v.read(appendValue(nil, &got), &again); err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("%+v does not read back: %+v, %v", got, again, err)
		}
	})
}
