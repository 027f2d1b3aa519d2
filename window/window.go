// Package window counts failures per (jail, address) inside each jail's findtime.
//
// Keys are spread over 64 shards by hash; Add splits each batch by shard and locks every shard once
// per batch, not once per event. A key crosses when maxretry of its failures fall within findtime
// of its newest one, and is then forgotten (the ban takes over). Memory per key does not depend on
// maxretry: jails with maxretry <= 5 keep each failure's time in a 22-byte ring; larger ones keep at
// most 16 (time, count) buckets, exact up to maxretry 16 and, beyond, merging failures less than
// findtime/16 apart under the first one's time, so a bucket leaves the window with its oldest
// failure: counts are never higher than the exact ones (never a ban an exact count would not make).
// Sweep drops keys whose newest failure is older than findtime, and a hard cap on keys per shard
// bounds memory: when a shard is full, a new key evicts the key with the fewest failures among a
// few sampled (so a flood of one-off addresses cannot push out an address close to its ban), and
// evictions are counted.
package window

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/mix"

	"github.com/portcullis/portcullis/matcher"
)

const shardCount = 64 // shardOf takes 6 bits

// JailParams are one jail's counting rules. Jails are indexed by matcher jail ID.
type JailParams struct {
	MaxRetry int
	FindTime int64 // seconds
	// Prefix4 and Prefix6 count failures per network instead of per address (banprefix4,
	// banprefix6: an attacker rotating addresses inside one /64 is one key); 0 or the full
	// length means per address.
	Prefix4, Prefix6 int
}

// Key is the counting key of addr in a jail: the address, or its network (banprefix4/6).
func (p *JailParams) Key(addr netip.Addr) netip.Prefix {
	bits := addr.BitLen()
	if b := p.Prefix6; addr.Is6() && b > 0 && b < bits {
		bits = b
	} else if b := p.Prefix4; addr.Is4() && b > 0 && b < bits {
		bits = b
	}
	pf, _ := addr.Prefix(bits)
	return pf
}

// Crossing is a (jail, address or network) whose failures reached maxretry within findtime.
type Crossing struct {
	Jail   uint16
	Addr   netip.Addr   // the address of the failure that crossed
	Prefix netip.Prefix // what was counted: Addr itself, or its network (banprefix4/6)
	Time   int64        // time of the failure that crossed, unix seconds
	Count  int
	// Line is the crossing failure's line in its block (matcher.Event.Line); Times are the
	// failures counted, oldest first, at most the newest maxEvidenceTimes of them (a bucket's
	// failures carry its time); Matches is for the caller to fill with the lines of those
	// failures (the audit log's evidence, fail2ban's maxmatches).
	Line    uint32
	Times   []uint32
	Matches []string
	// Fields are the filter's captures of the first of Matches that has them (fail2ban's ticket
	// data, the <F-*> tags of actions), filled by the caller only for jails whose actions use them.
	Fields map[string]string
}

// key is 18 bytes: the address in 16-byte form (IPv4 mapped) and the jail.
type key struct {
	addr [16]byte
	jail uint16
}

func keyOf(jail uint16, a netip.Addr) key { return key{addr: a.As16(), jail: jail} }

// inlineRing is the ring size kept for jails with a small maxretry (fail2ban's default is 5).
// Times are unix seconds as uint32 (good until 2106), so an entry is 22 bytes and a tracked key
// costs about 100 bytes with the map's own overhead (BenchmarkMemoryPerKey).
const inlineRing = 5

type small struct {
	t [inlineRing]uint32
	n uint8 // slots filled
}

// ringBuckets bounds what a key of a jail with maxretry > inlineRing holds, whatever its maxretry.
const ringBuckets = 16

// maxEvidenceTimes caps Crossing.Times.
const maxEvidenceTimes = 100

// buckets are a key's failures, oldest first: bucket i holds c[i] failures, the first of them at
// t[i]. A jail with maxretry <= ringBuckets gives every distinct time its own bucket (exact);
// above, a failure less than width seconds after the newest bucket's start joins that bucket.
// Buckets at or before newest - findtime are dropped on every add, which with starts at least
// width = ceil(findtime/ringBuckets) apart always leaves room.
type buckets struct {
	t [ringBuckets]uint32
	c [ringBuckets]uint32
	n uint8
}

// width is how far apart the buckets of a jail's keys start: 0 (one per distinct time) when every
// failure up to maxretry fits a bucket of its own.
func (p *JailParams) width() int64 {
	if p.MaxRetry <= ringBuckets {
		return 0
	}
	return max(1, (p.FindTime+ringBuckets-1)/ringBuckets)
}

func (b *buckets) newest() uint32 {
	if b.n == 0 {
		return 0
	}
	return b.t[b.n-1]
}

// total is the failures held.
func (b *buckets) total() int {
	n := 0
	for _, c := range b.c[:b.n] {
		n += int(c)
	}
	return n
}

// dropThrough drops the buckets starting at or before limit.
func (b *buckets) dropThrough(limit int64) {
	k := 0
	for k < int(b.n) && int64(b.t[k]) <= limit {
		k++
	}
	if k == 0 {
		return
	}
	copy(b.t[:], b.t[k:b.n])
	copy(b.c[:], b.c[k:b.n])
	b.n -= uint8(k)
}

// add records count failures at t and reports whether maxretry of the held ones fall within
// findtime of the newest.
func (b *buckets) add(t uint32, count uint32, p *JailParams) bool {
	hi := max(b.newest(), t)
	b.dropThrough(int64(hi) - p.FindTime)
	if int64(t) <= int64(hi)-p.FindTime {
		return false // older than the window: counts for nothing
	}
	w := p.width()
	// The bucket that takes t: the newest one starting at or before it.
	i := int(b.n) - 1
	for i >= 0 && b.t[i] > t {
		i--
	}
	switch {
	case i >= 0 && (b.t[i] == t || w > 0 && (i < int(b.n)-1 || int64(t)-int64(b.t[i]) < w)):
		// Same time, or (merging) inside the newest bucket's width or arrived out of order.
		b.c[i] += count
	case i < 0 && w > 0 && b.n > 0:
		// Out of order and older than every bucket: the oldest bucket starts there now.
		b.t[0] = t
		b.c[0] += count
	default:
		if int(b.n) == ringBuckets {
			// Unreachable with the spacing above; the oldest goes rather than memory grows.
			if i < 0 {
				return false
			}
			b.dropThrough(int64(b.t[0]))
			i--
		}
		copy(b.t[i+2:b.n+1], b.t[i+1:b.n])
		copy(b.c[i+2:b.n+1], b.c[i+1:b.n])
		b.t[i+1], b.c[i+1] = t, count
		b.n++
	}
	return b.total() >= p.MaxRetry
}

// times appends the held failures' times, oldest first, at most the newest limit of them.
func (b *buckets) times(dst []uint32, limit int) []uint32 {
	skip := b.total() - limit
	for i := range int(b.n) {
		for range b.c[i] {
			if skip > 0 {
				skip--
				continue
			}
			dst = append(dst, b.t[i])
		}
	}
	return dst
}

type shard struct {
	mu  sync.Mutex
	m   map[key]small
	big map[key]buckets
	_   [40]byte // keep neighbouring shards' locks off one cache line
}

func (sh *shard) len() int { return len(sh.m) + len(sh.big) }

// Window is safe for concurrent use.
type Window struct {
	jails   []JailParams
	shards  [shardCount]shard
	maxKeys int // per shard
	// prefixes: some jail counts per network (banprefix4/6), so keys are masked
	prefixes bool

	Tracked atomic.Int64  // keys held now
	Evicted atomic.Uint64 // keys dropped to make room for new ones (the cap was reached)
	Refused atomic.Uint64 // failures not counted because a shard was full (loads only)
}

// Options tune a Window.
type Options struct {
	// MaxKeys caps tracked (jail, address) keys; 1,000,000 when zero.
	MaxKeys int
}

// New returns a window for the given jails.
func New(jails []JailParams, opts Options) *Window {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 1_000_000
	}
	w := &Window{jails: jails, maxKeys: max(1, opts.MaxKeys/shardCount)}
	for _, p := range jails {
		if p.Prefix4 > 0 && p.Prefix4 < 32 || p.Prefix6 > 0 && p.Prefix6 < 128 {
			w.prefixes = true
		}
	}
	for i := range w.shards {
		w.shards[i].m = make(map[key]small)
		w.shards[i].big = make(map[key]buckets)
	}
	return w
}

// shardOf spreads keys over the shards. Both halves of the address go through a full 64-bit
// finalizer and the shard is taken from the top bits: an IPv4 address sits in the last four
// bytes, and a weaker mix puts every address of one /8 in the same shard, where they share one
// lock and 1/64 of the key cap.
func shardOf(jail uint16, a netip.Addr) uint8 {
	b := a.As16()
	h := uint64(jail) * 0x9E3779B97F4A7C15
	h = mix.Fmix64(h ^ binary.LittleEndian.Uint64(b[0:8]))
	h = mix.Fmix64(h ^ binary.LittleEndian.Uint64(b[8:16]))
	return uint8(h >> (64 - 6)) // shardCount = 64
}

// Adder holds one goroutine's scratch for splitting batches by shard.
// Weigher says how many failures each of n events counts for (at(i) is the event's jail, counting
// key and time): weight 0 or 1 once, more for a known offender (ban.Manager.Weights, fail2ban's
// bantime.increment). It is called once per Add, before any shard is locked, and returns dst
// empty when every event counts once.
type Weigher interface {
	Weights(n int, at func(i int) (jail uint16, key netip.Prefix, t int64), dst []uint8) []uint8
}

type Adder struct {
	w     *Window
	weigh Weigher
	// weighing is the batch being weighed; at, made once, reads it for weigh (no closure per Add).
	weighing []matcher.Event
	at       func(i int) (uint16, netip.Prefix, int64)
	weight   []uint8
	keys     []netip.Addr // each event's counting key (its address, or its network's)
	shard    []uint8
	order    []int32
	counts   [shardCount + 1]int32
	offences []matcher.Event // AddOffences's batch
}

// Offence is a failure no log line holds: a ban in another jail, which a recidive jail counts
// (fail2ban's recidive jail reads them as the "Ban" lines of its own log).
type Offence struct {
	Jail uint16
	Addr netip.Addr
	Time int64 // the ban's start, unix seconds
}

// AddOffences counts offences as Add counts a log's failures, with the same windows and rules.
func (a *Adder) AddOffences(offs []Offence, dst []Crossing) []Crossing {
	a.offences = a.offences[:0]
	for _, o := range offs {
		a.offences = append(a.offences, matcher.Event{Jail: o.Jail, Addr: o.Addr, Time: o.Time})
	}
	return a.Add(a.offences, dst)
}

// NewAdder returns an Adder; use one per worker goroutine. weigh may be nil: every event counts
// once.
func (w *Window) NewAdder(weigh Weigher) *Adder {
	a := &Adder{w: w, weigh: weigh}
	a.at = func(i int) (uint16, netip.Prefix, int64) {
		ev := &a.weighing[i]
		if int(ev.Jail) >= len(w.jails) {
			return ev.Jail, netip.Prefix{}, ev.Time
		}
		return ev.Jail, w.jails[ev.Jail].Key(ev.Addr), ev.Time
	}
	return a
}

// Add counts events and appends a Crossing to dst for every key that reached its jail's maxretry.
// Events of a jail without parameters are ignored.
func (a *Adder) Add(events []matcher.Event, dst []Crossing) []Crossing {
	if len(events) == 0 {
		return dst
	}
	w := a.w
	// Counting sort of event indexes by shard, stable so each key sees its events in order.
	a.shard = a.shard[:0]
	a.counts = [shardCount + 1]int32{}
	a.keys = a.keys[:0]
	for i := range events {
		k := events[i].Addr
		if w.prefixes {
			if j := int(events[i].Jail); j < len(w.jails) {
				k = w.jails[j].Key(k).Addr()
			}
			a.keys = append(a.keys, k)
		}
		s := shardOf(events[i].Jail, k)
		a.shard = append(a.shard, s)
		a.counts[s+1]++
	}
	for i := 1; i <= shardCount; i++ {
		a.counts[i] += a.counts[i-1]
	}
	a.weight = a.weight[:0]
	if a.weigh != nil {
		a.weighing = events
		a.weight = a.weigh.Weights(len(events), a.at, a.weight)
		a.weighing = nil
	}
	if cap(a.order) < len(events) {
		a.order = make([]int32, len(events))
	}
	a.order = a.order[:len(events)]
	pos := a.counts
	for i, s := range a.shard {
		a.order[pos[s]] = int32(i)
		pos[s]++
	}
	for s := 0; s < shardCount; s++ {
		lo, hi := a.counts[s], a.counts[s+1]
		if lo == hi {
			continue
		}
		sh := &w.shards[s]
		sh.mu.Lock()
		for _, idx := range a.order[lo:hi] {
			ev := &events[idx]
			if int(ev.Jail) >= len(w.jails) || w.jails[ev.Jail].MaxRetry <= 0 {
				continue
			}
			k := ev.Addr
			if w.prefixes {
				k = a.keys[idx]
			}
			weight := uint32(1)
			if len(a.weight) > 0 {
				weight = max(1, uint32(a.weight[idx]))
			}
			if c, ok := w.add(sh, ev, k, weight); ok {
				dst = append(dst, c)
			}
		}
		sh.mu.Unlock()
	}
	return dst
}

// pushRing records t among a key's failures: ring (maxretry slots, n filled) keeps the newest
// maxretry times, so once it is full t takes the place of the oldest one if it is newer. The key
// crosses when the ring is full and spans less than findtime: maxretry failures lie within
// findtime of the newest. Keeping the newest times rather than the last arrivals counts failures
// that arrive out of order (several files, several writers to one log) as the same failures in
// time order would be counted. It returns the newest time.
func pushRing(ring []uint32, n *int, t uint32, findTime int64) (crossed bool, newest uint32) {
	if *n < len(ring) {
		ring[*n] = t
		*n++
	} else {
		oldest := 0
		for i, x := range ring {
			if x < ring[oldest] {
				oldest = i
			}
		}
		ring[oldest] = max(ring[oldest], t)
	}
	lo, hi := ring[0], ring[0]
	for _, x := range ring[:*n] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return *n == len(ring) && int64(hi)-int64(lo) < findTime, hi
}

func secs(t int64) uint32 {
	if t < 0 {
		return 0
	}
	return uint32(t)
}

func (w *Window) add(sh *shard, ev *matcher.Event, keyAddr netip.Addr, weight uint32) (Crossing, bool) {
	p := &w.jails[ev.Jail]
	if p.MaxRetry == 1 {
		return Crossing{Jail: ev.Jail, Addr: ev.Addr, Prefix: p.Key(ev.Addr), Time: ev.Time, Count: 1, Line: ev.Line, Times: []uint32{secs(ev.Time)}}, true
	}
	k := keyOf(ev.Jail, keyAddr)
	t := secs(ev.Time)
	if p.MaxRetry <= inlineRing {
		e, ok := sh.m[k]
		if !ok {
			if sh.len() >= w.maxKeys {
				w.evict(sh)
			}
			w.Tracked.Add(1)
		}
		n := int(e.n)
		var crossed bool
		var hi uint32
		for range min(weight, uint32(p.MaxRetry)) {
			if crossed, hi = pushRing(e.t[:p.MaxRetry], &n, t, p.FindTime); crossed {
				break
			}
		}
		if crossed {
			delete(sh.m, k)
			w.Tracked.Add(-1)
			return Crossing{Jail: ev.Jail, Addr: ev.Addr, Prefix: p.Key(ev.Addr), Time: int64(hi), Count: n,
				Line: ev.Line, Times: ringTimes(nil, e.t[:p.MaxRetry], n)}, true
		}
		e.n = uint8(n)
		sh.m[k] = e
		return Crossing{}, false
	}
	e, ok := sh.big[k]
	if !ok {
		if sh.len() >= w.maxKeys {
			w.evict(sh)
		}
		w.Tracked.Add(1)
	}
	if !e.add(t, weight, p) {
		if e.n == 0 {
			delete(sh.big, k) // the failure was older than the window and nothing else is held
			w.Tracked.Add(-1)
		} else {
			sh.big[k] = e
		}
		return Crossing{}, false
	}
	if ok {
		delete(sh.big, k)
	}
	w.Tracked.Add(-1)
	return Crossing{Jail: ev.Jail, Addr: ev.Addr, Prefix: p.Key(ev.Addr), Time: int64(e.newest()), Count: e.total(),
		Line: ev.Line, Times: e.times(nil, maxEvidenceTimes)}, true
}

// evictSample is how many keys evict looks at. Go starts every map iteration at a random place, so
// the sample is random; the cost is bounded however large the shard.
const evictSample = 8

// evict drops, from a full shard, the sampled key with the fewest failures (the oldest newest
// failure among equals). Call with the lock held.
func (w *Window) evict(sh *shard) {
	var victim key
	var big, found bool
	bestN, bestT := int(^uint(0)>>1), uint32(0)
	better := func(n int, t uint32) bool { return n < bestN || n == bestN && t < bestT }
	seen := 0
	for k, e := range sh.m {
		if t := uint32(newest(e.t[:e.n])); better(int(e.n), t) {
			victim, big, found, bestN, bestT = k, false, true, int(e.n), t
		}
		if seen++; seen == evictSample {
			break
		}
	}
	seen = 0
	for k, e := range sh.big {
		if t, n := e.newest(), e.total(); better(n, t) {
			victim, big, found, bestN, bestT = k, true, true, n, t
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if !found {
		return
	}
	if big {
		delete(sh.big, victim)
	} else {
		delete(sh.m, victim)
	}
	w.Tracked.Add(-1)
	w.Evicted.Add(1)
}

// has reports whether k is tracked. Call with the lock held.
func (sh *shard) has(k key) bool {
	if _, ok := sh.m[k]; ok {
		return true
	}
	_, ok := sh.big[k]
	return ok
}

// Count returns the failures held for (jail, addr) within findtime of now.
func (w *Window) Count(jail uint16, addr netip.Addr, now int64) int {
	if int(jail) >= len(w.jails) {
		return 0
	}
	addr = w.jails[jail].Key(addr).Addr()
	sh := &w.shards[shardOf(jail, addr)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	since := now - w.jails[jail].FindTime
	k := keyOf(jail, addr)
	n := 0
	if e, ok := sh.m[k]; ok {
		for _, t := range e.t[:e.n] {
			if int64(t) > since {
				n++
			}
		}
	}
	if e, ok := sh.big[k]; ok {
		for i, t := range e.t[:e.n] {
			if int64(t) > since {
				n += int(e.c[i])
			}
		}
	}
	return n
}

// Forget drops every key of addr (a manual ban or unban resets its count).
func (w *Window) Forget(addr netip.Addr) {
	for j := range w.jails {
		ka := w.jails[j].Key(addr).Addr()
		sh := &w.shards[shardOf(uint16(j), ka)]
		k := keyOf(uint16(j), ka)
		sh.mu.Lock()
		if _, ok := sh.m[k]; ok {
			delete(sh.m, k)
			w.Tracked.Add(-1)
		}
		if _, ok := sh.big[k]; ok {
			delete(sh.big, k)
			w.Tracked.Add(-1)
		}
		sh.mu.Unlock()
	}
}

// CurrentlyFailed returns how many keys of jail are tracked.
func (w *Window) CurrentlyFailed(jail uint16) int {
	n := 0
	for s := range w.shards {
		sh := &w.shards[s]
		sh.mu.Lock()
		for k := range sh.m {
			if k.jail == jail {
				n++
			}
		}
		for k := range sh.big {
			if k.jail == jail {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

func newest(ts []uint32) int64 {
	var hi uint32
	for _, t := range ts {
		hi = max(hi, t)
	}
	return int64(hi)
}

// Sweep drops keys whose newest failure is at or before now - findtime. It returns how many went.
func (w *Window) Sweep(now int64) int {
	dropped := 0
	for s := range w.shards {
		sh := &w.shards[s]
		sh.mu.Lock()
		for k, e := range sh.m {
			if newest(e.t[:e.n]) <= now-w.jails[k.jail].FindTime {
				delete(sh.m, k)
				dropped++
			}
		}
		for k, e := range sh.big {
			if newest(e.t[:e.n]) <= now-w.jails[k.jail].FindTime {
				delete(sh.big, k)
				dropped++
			}
		}
		sh.mu.Unlock()
	}
	w.Tracked.Add(int64(-dropped))
	return dropped
}

// Held is one tracked key's failure times, for saving the window across restarts and reloads.
type Held struct {
	Jail  uint16
	Addr  netip.Addr
	Times []uint32 // unix seconds, oldest first
	// Counts, when not nil, is how many failures each of Times stands for; nil means one each.
	Counts []uint32
}

// Snapshot calls fn for every tracked key, one shard locked at a time. h.Times and h.Counts are
// reused between calls: copy what you keep.
func (w *Window) Snapshot(fn func(h *Held)) {
	var h Held
	var counts []uint32
	for s := range w.shards {
		sh := &w.shards[s]
		sh.mu.Lock()
		for k, e := range sh.m {
			h.Jail, h.Addr, h.Counts = k.jail, netip.AddrFrom16(k.addr).Unmap(), nil
			h.Times = ringTimes(h.Times[:0], e.t[:w.jails[k.jail].MaxRetry], int(e.n))
			fn(&h)
		}
		for k, e := range sh.big {
			h.Jail, h.Addr = k.jail, netip.AddrFrom16(k.addr).Unmap()
			h.Times = append(h.Times[:0], e.t[:e.n]...)
			counts = append(counts[:0], e.c[:e.n]...)
			h.Counts = counts
			fn(&h)
		}
		sh.mu.Unlock()
	}
}

// ringTimes appends a ring's filled times (its first n slots), oldest first.
func ringTimes(dst, ring []uint32, n int) []uint32 {
	at := len(dst)
	dst = append(dst, ring[:n]...)
	slices.Sort(dst[at:])
	return dst
}

// Load puts back a key's failure times (from Snapshot, possibly of a window whose jail had other
// parameters). Times at or before now - findtime are dropped, and at most maxretry-1 of the newest
// failures are kept: loading never makes a key cross (only a new failure can ban). It reports
// whether the key is held afterwards.
func (w *Window) Load(h *Held, now int64) bool {
	if int(h.Jail) >= len(w.jails) {
		return false
	}
	p := &w.jails[h.Jail]
	if p.MaxRetry <= 1 {
		return false
	}
	type tc struct{ t, c uint32 }
	var held []tc
	for i, t := range h.Times {
		c := uint32(1)
		if i < len(h.Counts) {
			c = h.Counts[i]
		}
		if int64(t) > now-p.FindTime && c > 0 {
			held = append(held, tc{t, c})
		}
	}
	slices.SortStableFunc(held, func(a, b tc) int { return cmp.Compare(a.t, b.t) })
	// The newest maxretry-1 failures.
	room := uint32(p.MaxRetry - 1)
	for i := len(held) - 1; i >= 0; i-- {
		held[i].c = min(held[i].c, room)
		room -= held[i].c
		if room == 0 {
			held = held[i:]
			break
		}
	}
	if len(held) == 0 {
		return false
	}
	ka := p.Key(h.Addr).Addr() // banprefix may have changed since the snapshot
	k := keyOf(h.Jail, ka)
	sh := &w.shards[shardOf(h.Jail, ka)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.has(k) {
		return true // already held: the live counts win
	}
	if sh.len() >= w.maxKeys {
		w.Refused.Add(1)
		return false
	}
	w.Tracked.Add(1)
	if p.MaxRetry <= inlineRing {
		var e small
		n := 0
		for _, x := range held {
			for range x.c {
				e.t[n] = x.t
				n++
			}
		}
		e.n = uint8(n)
		sh.m[k] = e
		return true
	}
	var e buckets
	for _, x := range held {
		e.add(x.t, x.c, p)
	}
	sh.big[k] = e
	return true
}
