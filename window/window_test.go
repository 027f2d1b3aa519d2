package window

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/matcher"
)

func ev(jail uint16, addr string, t int64) matcher.Event {
	return matcher.Event{Jail: jail, Addr: netip.MustParseAddr(addr), Time: t}
}

func TestCrossesAtMaxRetryWithinFindTime(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 3, FindTime: 600}, {MaxRetry: 1, FindTime: 60}}, Options{})
	a := w.NewAdder()
	f := func(events []matcher.Event, want ...string) {
		t.Helper()
		got := a.Add(events, nil)
		var gs []string
		for _, c := range got {
			gs = append(gs, fmt.Sprintf("%d/%s/%d", c.Jail, c.Addr, c.Count))
		}
		if fmt.Sprint(gs) != fmt.Sprint(want) {
			t.Fatalf("crossings %v, want %v", gs, want)
		}
	}
	f([]matcher.Event{ev(0, "192.0.2.1", 1000), ev(0, "192.0.2.1", 1100)})
	// The third failure within 600 s crosses; the key is then forgotten.
	f([]matcher.Event{ev(0, "192.0.2.2", 1100), ev(0, "192.0.2.1", 1599)}, "0/192.0.2.1/3")
	if n := w.Count(0, netip.MustParseAddr("192.0.2.1"), 1599); n != 0 {
		t.Fatalf("count after crossing = %d, want 0", n)
	}
	// Failures spread wider than findtime never cross.
	f([]matcher.Event{ev(0, "192.0.2.3", 0), ev(0, "192.0.2.3", 600), ev(0, "192.0.2.3", 1200), ev(0, "192.0.2.3", 1800)})
	// ... until three fall inside one window.
	f([]matcher.Event{ev(0, "192.0.2.3", 1900), ev(0, "192.0.2.3", 2000)}, "0/192.0.2.3/3")
	// maxretry = 1 bans on the first failure and keeps nothing.
	f([]matcher.Event{ev(1, "2001:db8::1", 5)}, "1/2001:db8::1/1")
	// Jails are counted apart.
	f([]matcher.Event{ev(0, "192.0.2.9", 10), ev(0, "192.0.2.9", 11)})
	if n := w.Count(0, netip.MustParseAddr("192.0.2.9"), 11); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	// Sweep drops keys whose newest failure is older than findtime.
	if got := w.Sweep(11 + 599); got != 0 {
		t.Fatalf("sweep before findtime passed dropped %d keys", got)
	}
	if got := w.Sweep(2000 + 600); got == 0 {
		t.Fatal("sweep dropped nothing")
	}
	if n := w.Count(0, netip.MustParseAddr("192.0.2.9"), 11); n != 0 {
		t.Fatalf("count after sweep = %d, want 0", n)
	}
	if w.Tracked.Load() != 0 {
		t.Fatalf("tracked = %d after sweep, want 0", w.Tracked.Load())
	}
}

func TestCapRefusesNewKeys(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 5, FindTime: 600}}, Options{MaxKeys: 64})
	a := w.NewAdder()
	var events []matcher.Event
	for i := 0; i < 10000; i++ {
		events = append(events, matcher.Event{Jail: 0, Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Time: 1})
	}
	a.Add(events, nil)
	if w.Tracked.Load() > 64 {
		t.Fatalf("tracked %d keys, cap is 64", w.Tracked.Load())
	}
	if w.Refused.Load() == 0 {
		t.Fatal("no refusals counted")
	}
}

// Many goroutines adding the same key must together cross exactly once per maxretry failures.
func TestConcurrentAdders(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 4, FindTime: 1 << 40}}, Options{})
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := w.NewAdder()
			for i := 0; i < 1000; i++ {
				c := a.Add([]matcher.Event{ev(0, "198.51.100.1", int64(i))}, nil)
				mu.Lock()
				total += len(c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total != 8000/4 {
		t.Fatalf("%d crossings, want %d", total, 8000/4)
	}
}

// Jails with a maxretry above the inline ring use the larger entries, with the same rules.
func TestLargeMaxRetry(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 10, FindTime: 60}}, Options{})
	a := w.NewAdder()
	var got []Crossing
	for i := 0; i < 9; i++ {
		got = a.Add([]matcher.Event{ev(0, "2001:db8::9", int64(100+i))}, got[:0])
	}
	if len(got) != 0 || w.Count(0, netip.MustParseAddr("2001:db8::9"), 110) != 9 {
		t.Fatalf("after 9: crossings %v, count %d", got, w.Count(0, netip.MustParseAddr("2001:db8::9"), 110))
	}
	got = a.Add([]matcher.Event{ev(0, "2001:db8::9", 109)}, got[:0])
	if len(got) != 1 || got[0].Count != 10 || w.Tracked.Load() != 0 {
		t.Fatalf("the 10th failure: %+v, tracked %d", got, w.Tracked.Load())
	}
	// Spread over more than findtime: never.
	for i := 0; i < 30; i++ {
		got = a.Add([]matcher.Event{ev(0, "2001:db8::a", int64(i*7))}, got[:0])
		if len(got) != 0 {
			t.Fatalf("crossed with failures 7 s apart over %d s", i*7)
		}
	}
	if w.Sweep(1000) != 1 || w.Tracked.Load() != 0 {
		t.Fatal("sweep")
	}
}
