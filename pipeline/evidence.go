package pipeline

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/matcher"
	"github.com/portcullis/portcullis/window"
)

// evidence keeps the last lines of each tracked (jail, address or network) for the audit log,
// fail2ban's maxmatches: a crossing takes them with it. It is sharded by key, and a chain adds a
// block's lines locking each shard it touches once, so workers share no lock per event. It is
// bounded: at most maxKeys keys in all (per shard its share; the stalest of a few sampled keys go
// first when full) and a jail's findtime of age (sweep), so an attacker sending lines from many
// addresses cannot make it grow without limit.
type evidence struct {
	shards   [evidenceShards]evidenceShard
	perShard int
}

const evidenceShards = 64

// evidenceKeys caps the keys with lines held: each holds up to maxmatches lines of attacker text.
const evidenceKeys = 100_000

type evidenceShard struct {
	mu sync.Mutex
	m  map[matchKey]*matchRing
	_  [40]byte // one shard per cache line
}

type matchKey struct {
	jail uint16
	key  netip.Prefix
}

type matchRing struct {
	lines  []matchLine       // in reading order, at most keep
	last   int64             // unix seconds of the newest line
	fields map[string]string // the first captures the key got (the fleet's failures carry them)
}

// matchLine is a line and where it was read: its block's Seq and its index in the block.
type matchLine struct {
	seq  uint64
	idx  uint32
	text string
}

func (l *matchLine) before(seq uint64, idx uint32) bool {
	return l.seq < seq || l.seq == seq && l.idx < idx
}

// evidenceScratch is a chain's: a block's events grouped by shard, reused from block to block.
type evidenceScratch struct {
	byShard [evidenceShards][]keyedEvent
}

type keyedEvent struct {
	ev  int32
	key netip.Prefix
}

func newEvidence(maxKeys int) *evidence {
	if maxKeys <= 0 {
		maxKeys = 1_000_000
	}
	e := &evidence{perShard: max(1, maxKeys/evidenceShards)}
	for i := range e.shards {
		e.shards[i].m = make(map[matchKey]*matchRing)
	}
	return e
}

func shardOf(jail uint16, key netip.Prefix) int {
	a := key.Addr().As16()
	h := binary.LittleEndian.Uint64(a[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(a[8:])*0xc2b2ae3d27d4eb4f ^ uint64(jail)<<32 ^ uint64(key.Bits())
	h ^= h >> 29
	return int(h % evidenceShards)
}

// add records the lines of b's failures evs (copies: the block goes back to its pool) under their
// keys, for jails whose maxmatches is above 0.
func (e *evidence) add(b *ingest.Block, evs []matcher.Event, jails []*config.Jail, params []window.JailParams, sc *evidenceScratch) {
	touched := false
	for i := range evs {
		ev := &evs[i]
		if jails[ev.Jail].MaxMatches <= 0 || int(ev.Line) >= len(b.Lines) {
			continue
		}
		k := params[ev.Jail].Key(ev.Addr)
		s := shardOf(ev.Jail, k)
		sc.byShard[s] = append(sc.byShard[s], keyedEvent{int32(i), k})
		touched = true
	}
	if !touched {
		return
	}
	for s := range sc.byShard {
		group := sc.byShard[s]
		if len(group) == 0 {
			continue
		}
		sh := &e.shards[s]
		sh.mu.Lock()
		for _, ke := range group {
			ev := &evs[ke.ev]
			e.addLocked(sh, ev.Jail, ke.key, string(b.Line(int(ev.Line))), ev.Time, b.Seq, ev.Line, jails[ev.Jail].MaxMatches)
		}
		sh.mu.Unlock()
		sc.byShard[s] = group[:0]
	}
}

func (e *evidence) addLocked(sh *evidenceShard, jail uint16, key netip.Prefix, line string, t int64, seq uint64, idx uint32, keep int) {
	if keep <= 0 {
		return
	}
	r := e.ringLocked(sh, matchKey{jail, key})
	at := len(r.lines)
	for at > 0 && !r.lines[at-1].before(seq, idx) {
		at--
	}
	r.lines = slices.Insert(r.lines, at, matchLine{seq, idx, line})
	if len(r.lines) > keep {
		r.lines = append(r.lines[:0], r.lines[len(r.lines)-keep:]...)
	}
	r.last = max(r.last, t)
}

// ringLocked returns k's ring, made (evicting when the shard is full) if it has none.
func (e *evidence) ringLocked(sh *evidenceShard, k matchKey) *matchRing {
	r := sh.m[k]
	if r == nil {
		if len(sh.m) >= e.perShard {
			sh.evictOldestLocked()
		}
		r = &matchRing{}
		sh.m[k] = r
	}
	return r
}

// addLine records one failure of key (a decider's, from the fleet): its line, if any, keeping the
// last keep lines in reading order (seq and idx: where it was read; lines may come out of order),
// and its captures, if any, the first a key gets (fail2ban's ticket keeps its first failure's
// data).
func (e *evidence) addLine(jail uint16, key netip.Prefix, line string, fields map[string]string, t int64, seq uint64, idx uint32, keep int) {
	if line == "" && fields == nil {
		return
	}
	sh := &e.shards[shardOf(jail, key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if line != "" {
		e.addLocked(sh, jail, key, line, t, seq, idx, keep)
	}
	if fields != nil {
		r := e.ringLocked(sh, matchKey{jail, key})
		if r.fields == nil {
			r.fields = fields
		}
		r.last = max(r.last, t)
	}
}

// evictOldestLocked drops the stalest of a few sampled keys.
func (sh *evidenceShard) evictOldestLocked() {
	var victim matchKey
	oldest, n := int64(1<<62), 0
	for k, r := range sh.m {
		if r.last < oldest {
			victim, oldest = k, r.last
		}
		if n++; n == 8 {
			break
		}
	}
	delete(sh.m, victim)
}

// take removes and returns key's lines.
func (e *evidence) take(jail uint16, key netip.Prefix) []string {
	lines, _ := e.takeAll(jail, key)
	return lines
}

// takeAll removes and returns key's lines and captures.
func (e *evidence) takeAll(jail uint16, key netip.Prefix) ([]string, map[string]string) {
	sh := &e.shards[shardOf(jail, key)]
	k := matchKey{jail, key}
	sh.mu.Lock()
	r := sh.m[k]
	delete(sh.m, k)
	sh.mu.Unlock()
	if r == nil {
		return nil, nil
	}
	out := make([]string, len(r.lines))
	for i := range r.lines {
		out[i] = r.lines[i].text
	}
	return out, r.fields
}

// sweep drops keys whose newest line is older than their jail's findtime.
func (e *evidence) sweep(now int64, findTime func(jail uint16) int64) {
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for k, r := range sh.m {
			if r.last <= now-findTime(k.jail) {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

// keys counts the keys held.
func (e *evidence) keys() int {
	n := 0
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
