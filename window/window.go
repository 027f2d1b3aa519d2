// Package window counts failures per (jail, address) inside each jail's findtime.
//
// Keys are spread over 64 shards by hash; Add splits each batch by shard and locks every shard once
// per batch, not once per event. Each key keeps the event times of its last maxretry failures in a
// small ring, so a key crosses exactly when its last maxretry failures fall within findtime,
// and the key is then forgotten (the ban takes over). Sweep drops keys whose newest failure is older
// than findtime, and a hard cap on keys per shard bounds memory: when a shard is full, new keys are
// refused and counted rather than letting the map grow.
package window

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/matcher"
)

const shardCount = 64

// JailParams are one jail's counting rules. Jails are indexed by matcher jail ID.
type JailParams struct {
	MaxRetry int
	FindTime int64 // seconds
}

// Crossing is a (jail, address) whose failures reached maxretry within findtime.
type Crossing struct {
	Jail  uint16
	Addr  netip.Addr
	Time  int64 // time of the failure that crossed, unix seconds
	Count int
}

type key struct {
	addr netip.Addr
	jail uint16
}

type entry struct {
	times []int64 // ring of the last len(times) failure times, in arrival order
	next  int32   // ring position of the next write
	n     int32   // filled slots
}

type shard struct {
	mu sync.Mutex
	m  map[key]*entry
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

// Window is safe for concurrent use.
type Window struct {
	jails   []JailParams
	shards  [shardCount]shard
	maxKeys int // per shard

	Tracked atomic.Int64  // keys held now
	Refused atomic.Uint64 // failures not counted because a shard was full
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
	for i := range w.shards {
		w.shards[i].m = make(map[key]*entry)
	}
	return w
}

func shardOf(jail uint16, a netip.Addr) uint8 {
	b := a.As16()
	h := uint64(jail) * 0x9E3779B97F4A7C15
	for i := 0; i < 16; i += 8 {
		v := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
			uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
		h ^= v
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
	}
	return uint8(h % shardCount)
}

// Adder holds one goroutine's scratch for splitting batches by shard.
type Adder struct {
	w      *Window
	shard  []uint8
	order  []int32
	counts [shardCount + 1]int32
}

// NewAdder returns an Adder; use one per worker goroutine.
func (w *Window) NewAdder() *Adder { return &Adder{w: w} }

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
	for i := range events {
		s := shardOf(events[i].Jail, events[i].Addr)
		a.shard = append(a.shard, s)
		a.counts[s+1]++
	}
	for i := 1; i <= shardCount; i++ {
		a.counts[i] += a.counts[i-1]
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
			if c, ok := w.add(sh, ev); ok {
				dst = append(dst, c)
			}
		}
		sh.mu.Unlock()
	}
	return dst
}

func (w *Window) add(sh *shard, ev *matcher.Event) (Crossing, bool) {
	p := w.jails[ev.Jail]
	k := key{addr: ev.Addr, jail: ev.Jail}
	e, ok := sh.m[k]
	if !ok {
		if p.MaxRetry == 1 {
			return Crossing{Jail: ev.Jail, Addr: ev.Addr, Time: ev.Time, Count: 1}, true
		}
		if len(sh.m) >= w.maxKeys {
			w.Refused.Add(1)
			return Crossing{}, false
		}
		e = &entry{times: make([]int64, p.MaxRetry)}
		sh.m[k] = e
		w.Tracked.Add(1)
	}
	e.times[e.next] = ev.Time
	e.next = (e.next + 1) % int32(len(e.times))
	if int(e.n) < len(e.times) {
		e.n++
	}
	// The ring holds the last maxretry failures; they cross when all of them fall within findtime
	// of each other. Comparing the span rather than "now - findtime" keeps events that arrive out
	// of order (several files, several workers) counted correctly.
	if int(e.n) < p.MaxRetry {
		return Crossing{}, false
	}
	lo, hi := e.times[0], e.times[0]
	for _, t := range e.times {
		lo, hi = min(lo, t), max(hi, t)
	}
	if hi-lo >= p.FindTime {
		return Crossing{}, false
	}
	count := int(e.n)
	delete(sh.m, k)
	w.Tracked.Add(-1)
	return Crossing{Jail: ev.Jail, Addr: ev.Addr, Time: hi, Count: count}, true
}

// Count returns the failures held for (jail, addr) within findtime of now.
func (w *Window) Count(jail uint16, addr netip.Addr, now int64) int {
	sh := &w.shards[shardOf(jail, addr)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[key{addr: addr, jail: jail}]
	if !ok {
		return 0
	}
	n := 0
	for i := 0; i < int(e.n); i++ {
		if e.times[i] > now-w.jails[jail].FindTime {
			n++
		}
	}
	return n
}

// Forget drops every key of addr (a manual ban or unban resets its count).
func (w *Window) Forget(addr netip.Addr) {
	for j := range w.jails {
		sh := &w.shards[shardOf(uint16(j), addr)]
		sh.mu.Lock()
		if _, ok := sh.m[key{addr: addr, jail: uint16(j)}]; ok {
			delete(sh.m, key{addr: addr, jail: uint16(j)})
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
		sh.mu.Unlock()
	}
	return n
}

// Sweep drops keys whose newest failure is at or before now - findtime. It returns how many went.
func (w *Window) Sweep(now int64) int {
	dropped := 0
	for s := range w.shards {
		sh := &w.shards[s]
		sh.mu.Lock()
		for k, e := range sh.m {
			newest := int64(0)
			for _, t := range e.times[:e.n] {
				newest = max(newest, t)
			}
			if newest <= now-w.jails[k.jail].FindTime {
				delete(sh.m, k)
				dropped++
			}
		}
		sh.mu.Unlock()
	}
	w.Tracked.Add(int64(-dropped))
	return dropped
}
