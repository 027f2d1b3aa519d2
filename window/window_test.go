package window

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/matcher"
)

func ev(jail uint16, addr string, t int64) matcher.Event {
	return matcher.Event{Jail: jail, Addr: netip.MustParseAddr(addr), Time: t}
}

func TestCrossesAtMaxRetryWithinFindTime(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 3, FindTime: 600}, {MaxRetry: 1, FindTime: 60}}, Options{})
	a := w.NewAdder(nil)
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

func TestCapEvicts(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 5, FindTime: 600}}, Options{MaxKeys: 64})
	a := w.NewAdder(nil)
	var events []matcher.Event
	for i := 0; i < 10000; i++ {
		events = append(events, matcher.Event{Jail: 0, Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Time: 1})
	}
	a.Add(events, nil)
	if w.Tracked.Load() > 64 {
		t.Fatalf("tracked %d keys, cap is 64", w.Tracked.Load())
	}
	if got := w.Evicted.Load(); got != uint64(10000-w.Tracked.Load()) {
		t.Fatalf("evicted %d, want every key beyond the %d held", got, w.Tracked.Load())
	}
}

// A flood of one-off addresses evicts one-off addresses, not one close to its ban: that address
// still crosses at its maxretry-th failure.
func TestEvictionPrefersLowCounts(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 5, FindTime: 600}}, Options{MaxKeys: 2 * shardCount}) // 2 per shard
	a := w.NewAdder(nil)
	attacker := netip.MustParseAddr("203.0.113.50")
	home := shardOf(0, attacker)
	// Addresses that land in the attacker's shard.
	var same []netip.Addr
	for i := 0; len(same) < 200; i++ {
		ad := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		if shardOf(0, ad) == home {
			same = append(same, ad)
		}
	}
	for i := range 4 {
		a.Add([]matcher.Event{{Jail: 0, Addr: attacker, Time: int64(100 + i)}}, nil)
	}
	for i, ad := range same {
		a.Add([]matcher.Event{{Jail: 0, Addr: ad, Time: int64(200 + i)}}, nil)
	}
	if w.Evicted.Load() != uint64(len(same)-1) {
		t.Fatalf("evicted %d, want %d (the shard holds 2 keys)", w.Evicted.Load(), len(same)-1)
	}
	if n := w.Count(0, attacker, 300); n != 4 {
		t.Fatalf("the attacker's count is %d after the flood, want 4", n)
	}
	if c := a.Add([]matcher.Event{{Jail: 0, Addr: attacker, Time: 400}}, nil); len(c) != 1 {
		t.Fatalf("the fifth failure did not cross: %v", c)
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
			a := w.NewAdder(nil)
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
	a := w.NewAdder(nil)
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

// A snapshot loaded into a fresh window continues the counts exactly: the failure that would have
// crossed in the old window crosses in the new one, for inline rings (maxretry <= 5, wrapped) and
// big ones, and across a change of maxretry or findtime nothing crosses at load time.
func TestSnapshotLoad(t *testing.T) {
	params := []JailParams{{MaxRetry: 3, FindTime: 600}, {MaxRetry: 8, FindTime: 600}}
	old := New(params, Options{})
	a := old.NewAdder(nil)
	// Jail 0: five failures 200 s apart wrap the 3-slot ring; the last two are within 600 s of a
	// sixth at 1000 + ... Jail 1: seven failures, one short of eight.
	var evs []matcher.Event
	for i := range 5 {
		evs = append(evs, ev(0, "192.0.2.1", int64(1000+300*i))) // 1000..2200, never 3 within 600
	}
	for i := range 7 {
		evs = append(evs, ev(1, "2001:db8::5", int64(2000+i)))
	}
	if c := a.Add(evs, nil); len(c) != 0 {
		t.Fatalf("crossed early: %v", c)
	}
	var held []Held
	old.Snapshot(func(h *Held) {
		held = append(held, Held{Jail: h.Jail, Addr: h.Addr, Times: append([]uint32(nil), h.Times...)})
	})
	if len(held) != 2 {
		t.Fatalf("snapshot holds %d keys, want 2: %v", len(held), held)
	}
	for _, h := range held {
		if h.Jail == 0 && fmt.Sprint(h.Times) != "[1600 1900 2200]" {
			t.Fatalf("jail 0 times %v, want the last three oldest first", h.Times)
		}
	}
	fresh := New(params, Options{})
	for i := range held {
		if !fresh.Load(&held[i], 2300) {
			t.Fatalf("key %v not loaded", held[i])
		}
	}
	fa := fresh.NewAdder(nil)
	// Loading keeps at most maxretry-1 times: 1900 and 2200 for jail 0, so 2300 crosses (three
	// within 600 s), as it would have in the old window.
	got := fa.Add([]matcher.Event{ev(0, "192.0.2.1", 2300), ev(1, "2001:db8::5", 2300)}, nil)
	if len(got) != 2 {
		t.Fatalf("after load, crossings %v, want both keys", got)
	}
	want := a.Add([]matcher.Event{ev(0, "192.0.2.1", 2300), ev(1, "2001:db8::5", 2300)}, nil)
	if len(want) != 2 || got[0].Count != want[0].Count || got[1].Count != want[1].Count {
		t.Fatalf("loaded window crossed %v, the old one %v", got, want)
	}
	// A stricter jail after a reload: loading never crosses, old times beyond findtime go.
	strict := New([]JailParams{{MaxRetry: 2, FindTime: 100}}, Options{})
	h := Held{Jail: 0, Addr: netip.MustParseAddr("192.0.2.7"), Times: []uint32{100, 950, 990}}
	if !strict.Load(&h, 1000) || strict.Count(0, h.Addr, 1000) != 1 {
		t.Fatalf("strict load: count %d, want 1 (only the newest of the recent ones)", strict.Count(0, h.Addr, 1000))
	}
	if strict.Load(&Held{Jail: 0, Addr: netip.MustParseAddr("192.0.2.8"), Times: []uint32{10}}, 1000) {
		t.Fatal("a key whose failures are all older than findtime was loaded")
	}
}

// banprefix6/banprefix4: failures from different addresses of one network add up, and the
// crossing names the network and the address that crossed.
func TestPrefixCounting(t *testing.T) {
	w := New([]JailParams{{MaxRetry: 3, FindTime: 600, Prefix6: 64, Prefix4: 24}, {MaxRetry: 3, FindTime: 600}}, Options{})
	a := w.NewAdder(nil)
	got := a.Add([]matcher.Event{
		ev(0, "2001:db8:1:2::1", 1), ev(0, "2001:db8:1:2:ffff::9", 2), ev(0, "2001:db8:1:3::1", 3), // the last is another /64
		ev(1, "2001:db8:1:2::1", 1), ev(1, "2001:db8:1:2::2", 2), ev(1, "2001:db8:1:2::3", 3), // per address: no crossing
		ev(0, "198.51.100.1", 4), ev(0, "198.51.100.200", 5),
	}, nil)
	if len(got) != 0 {
		t.Fatalf("early crossings %+v", got)
	}
	if n := w.Count(0, netip.MustParseAddr("2001:db8:1:2::abcd"), 10); n != 2 {
		t.Fatalf("count of the /64 seen from another of its addresses = %d, want 2", n)
	}
	got = a.Add([]matcher.Event{ev(0, "2001:db8:1:2::77", 6), ev(0, "198.51.100.33", 7)}, nil)
	if len(got) != 2 {
		t.Fatalf("crossings %+v, want the /64 and the /24", got)
	}
	for _, c := range got {
		want := map[string]string{"2001:db8:1:2::77": "2001:db8:1:2::/64", "198.51.100.33": "198.51.100.0/24"}[c.Addr.String()]
		if c.Prefix.String() != want || c.Count != 3 {
			t.Errorf("crossing %+v, want prefix %s and count 3", c, want)
		}
	}
}

// Keys of jails with a large maxretry hold a bounded number of buckets: the count they cross at is
// never above the exact one (failures within findtime of the newest), and in-order failures are
// missed only within one bucket's width of the window's edge. Up to ringBuckets, counts are exact.
func TestBucketsAgainstExactCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, maxRetry := range []int{6, 16, 17, 50, 1000} {
		for _, shuffled := range []bool{false, true} {
			p := JailParams{MaxRetry: maxRetry, FindTime: 600}
			w := New([]JailParams{p}, Options{})
			a := w.NewAdder(nil)
			addr := netip.MustParseAddr("2001:db8::1")
			var since []int64 // every failure since the last crossing
			now := int64(100_000)
			for range 30_000 {
				now += int64(rng.IntN(3 * 600 / maxRetry))
				t0 := now
				if shuffled {
					t0 -= int64(rng.IntN(60))
				}
				since = append(since, t0)
				got := a.Add([]matcher.Event{{Jail: 0, Addr: addr, Time: t0}}, nil)
				hi := slices.Max(since)
				// What is at or before hi - findtime never counts again (hi only grows).
				since = slices.DeleteFunc(since, func(x int64) bool { return x <= hi-p.FindTime })
				in := func(from int64) int {
					n := 0
					for _, x := range since {
						if x > from && x <= hi {
							n++
						}
					}
					return n
				}
				exact := in(hi - p.FindTime)
				if len(got) == 1 {
					if exact < maxRetry {
						t.Fatalf("maxretry %d shuffled %v: crossed with %d failures within findtime", maxRetry, shuffled, exact)
					}
					if got[0].Count < maxRetry || got[0].Count > exact {
						t.Fatalf("maxretry %d: crossing counts %d, exact %d", maxRetry, got[0].Count, exact)
					}
					since = since[:0]
					continue
				}
				if maxRetry <= ringBuckets && !shuffled && exact >= maxRetry {
					t.Fatalf("maxretry %d: %d failures within findtime and no crossing", maxRetry, exact)
				}
				if !shuffled && in(hi-p.FindTime+p.width()) >= maxRetry {
					t.Fatalf("maxretry %d: %d failures within findtime less a bucket and no crossing", maxRetry, in(hi-p.FindTime+p.width()))
				}
			}
		}
	}
}

// A key's memory does not grow with maxretry: 20,000 keys with every bucket filled hold a few
// hundred bytes each at maxretry 17 to 1,000,000, and 100 at 5 (a ring of maxretry times took
// 4 KB each at 1000).
func TestMemoryPerKeyIndependentOfMaxRetry(t *testing.T) {
	const keys = 20_000
	perKey := func(maxRetry int) float64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		// Failures 100 s apart within a findtime of 1,700 s: every bucket a key may hold fills.
		w := New([]JailParams{{MaxRetry: maxRetry, FindTime: 1700}}, Options{MaxKeys: 2 * keys})
		a := w.NewAdder(nil)
		events := make([]matcher.Event, 500)
		for i := range min(maxRetry-1, ringBuckets+1) {
			for k := 0; k < keys; k += len(events) {
				for j := range events {
					n := k + j
					events[j] = matcher.Event{Jail: 0, Time: int64(1000 + 100*i), Addr: netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})}
				}
				if c := a.Add(events, nil); len(c) != 0 {
					t.Fatalf("crossed early at maxretry %d", maxRetry)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if w.Tracked.Load() != keys {
			t.Fatalf("tracked %d, want %d", w.Tracked.Load(), keys)
		}
		n := float64(after.HeapAlloc-before.HeapAlloc) / keys
		runtime.KeepAlive(w)
		return n
	}
	for _, mr := range []int{5, 17, 1000, 1_000_000} {
		if b := perKey(mr); b > 400 {
			t.Errorf("maxretry %d: %.0f bytes per key, want at most 400", mr, b)
		} else {
			t.Logf("maxretry %d: %.0f bytes per key", mr, b)
		}
	}
}

// A snapshot of bucketed keys carries their counts, and loading it keeps at most maxretry-1.
func TestSnapshotLoadBuckets(t *testing.T) {
	p := []JailParams{{MaxRetry: 100, FindTime: 600}}
	w := New(p, Options{})
	a := w.NewAdder(nil)
	addr := netip.MustParseAddr("192.0.2.50")
	for i := range 99 {
		if c := a.Add([]matcher.Event{ev(0, "192.0.2.50", int64(1000+i*5))}, nil); len(c) != 0 {
			t.Fatal("crossed early")
		}
	}
	var held []Held
	w.Snapshot(func(h *Held) {
		held = append(held, Held{Jail: h.Jail, Addr: h.Addr, Times: slices.Clone(h.Times), Counts: slices.Clone(h.Counts)})
	})
	if len(held) != 1 || len(held[0].Times) > ringBuckets || len(held[0].Counts) != len(held[0].Times) {
		t.Fatalf("snapshot %+v", held)
	}
	fresh := New(p, Options{})
	if !fresh.Load(&held[0], 1500) || fresh.Count(0, addr, 1500) != 99 {
		t.Fatalf("loaded count %d, want 99", fresh.Count(0, addr, 1500))
	}
	if c := fresh.NewAdder(nil).Add([]matcher.Event{ev(0, "192.0.2.50", 1500)}, nil); len(c) != 1 || c[0].Count != 100 || len(c[0].Times) != 100 {
		t.Fatalf("the 100th failure after a load: %+v", c)
	}
	// A stricter jail keeps only maxretry-1 of them.
	strict := New([]JailParams{{MaxRetry: 20, FindTime: 600}}, Options{})
	if !strict.Load(&held[0], 1500) || strict.Count(0, addr, 1500) != 19 {
		t.Fatalf("strict load count %d, want 19", strict.Count(0, addr, 1500))
	}
}

// Failures that arrive out of order are counted as the same failures in time order: a key
// crosses when maxretry of them lie within findtime of the newest, whatever order they came in.
// Checked against a brute-force count on shuffled arrivals, for the inline ring (maxretry ≤ 5)
// and the buckets.
func TestOutOfOrderCountsAsInTimeOrder(t *testing.T) {
	for _, maxretry := range []int{2, 3, 5, 6, 9} {
		const findtime = 60
		rng := rand.New(rand.NewPCG(uint64(maxretry), 7))
		for round := range 2000 {
			w := New([]JailParams{{MaxRetry: maxretry, FindTime: findtime}}, Options{})
			a := w.NewAdder(nil)
			var seen []int64
			for i := range 3 * maxretry {
				tm := int64(1000 + i*15 + rng.IntN(90) - 45)
				seen = append(seen, tm)
				hi := slices.Max(seen)
				in := 0
				for _, x := range seen {
					if x > hi-findtime {
						in++
					}
				}
				got := len(a.Add([]matcher.Event{ev(0, "192.0.2.1", tm)}, nil)) > 0
				if want := in >= maxretry; got != want {
					t.Fatalf("maxretry %d, round %d: after %v crossed %v, want %v", maxretry, round, seen, got, want)
				}
				if got {
					break
				}
			}
		}
	}
	// The case that needs it: arrivals 100, 41, 102, 103 hold 100, 102 and 103 within 60 s.
	w := New([]JailParams{{MaxRetry: 3, FindTime: 60}}, Options{})
	a := w.NewAdder(nil)
	var cs []Crossing
	for _, tm := range []int64{100, 41, 102, 103} {
		cs = a.Add([]matcher.Event{ev(0, "192.0.2.1", tm)}, cs)
	}
	if len(cs) != 1 || cs[0].Time != 103 || !slices.Equal(cs[0].Times, []uint32{100, 102, 103}) {
		t.Fatalf("crossings %+v, want one at 103 holding 100, 102, 103", cs)
	}
}

// weigher weighs every event of one address.
type weigher struct {
	addr   netip.Addr
	weight uint8
}

func (w weigher) Weights(n int, at func(int) (uint16, netip.Prefix, int64), dst []uint8) []uint8 {
	for i := range n {
		if _, k, _ := at(i); k.Addr() == w.addr {
			for len(dst) < n {
				dst = append(dst, 0)
			}
			dst[i] = w.weight
		}
	}
	return dst
}

// A weighed failure counts weight times (fail2ban's known offenders), in the ring and the buckets.
func TestWeightedFailures(t *testing.T) {
	for _, maxretry := range []int{3, 8} {
		known := netip.MustParseAddr("192.0.2.7")
		w := New([]JailParams{{MaxRetry: maxretry, FindTime: 60}}, Options{})
		a := w.NewAdder(weigher{known, uint8(maxretry - 1)})
		if cs := a.Add([]matcher.Event{ev(0, "192.0.2.7", 10), ev(0, "192.0.2.8", 10)}, nil); len(cs) != 0 {
			t.Fatalf("maxretry %d: crossed on the first failure: %+v", maxretry, cs)
		}
		cs := a.Add([]matcher.Event{ev(0, "192.0.2.8", 11), ev(0, "192.0.2.7", 11)}, nil)
		if len(cs) != 1 || cs[0].Addr != known {
			t.Fatalf("maxretry %d: crossings %+v, want the known offender's only", maxretry, cs)
		}
	}
}
