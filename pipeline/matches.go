package pipeline

import (
	"net/netip"
	"slices"
	"sync"
)

// matchStore keeps the last lines of each tracked (jail, address or network) for the audit log,
// fail2ban's maxmatches: a crossing takes them with it. It is bounded: at most maxKeys keys (the
// oldest go first when full) and a jail's findtime of age (Sweep), so an attacker sending lines
// from many addresses cannot make it grow without limit.
type matchStore struct {
	mu      sync.Mutex
	m       map[matchKey]*matchRing
	maxKeys int
}

type matchKey struct {
	jail uint16
	key  netip.Prefix
}

type matchRing struct {
	lines []matchLine // in reading order, at most keep
	last  int64       // unix seconds of the newest line
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

func newMatchStore(maxKeys int) *matchStore {
	return &matchStore{m: make(map[matchKey]*matchRing), maxKeys: maxKeys}
}

// add records line for key, keeping the last keep lines in reading order (seq and idx: the line's
// block and its index there; workers may hand lines of one key over out of order).
func (s *matchStore) add(jail uint16, key netip.Prefix, line string, t int64, seq uint64, idx uint32, keep int) {
	if keep <= 0 {
		return
	}
	k := matchKey{jail, key}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.m[k]
	if r == nil {
		if len(s.m) >= s.maxKeys {
			s.evictOldestLocked()
		}
		r = &matchRing{}
		s.m[k] = r
	}
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

// evictOldestLocked drops the stalest of a few sampled keys.
func (s *matchStore) evictOldestLocked() {
	var victim matchKey
	oldest, n := int64(1<<62), 0
	for k, r := range s.m {
		if r.last < oldest {
			victim, oldest = k, r.last
		}
		if n++; n == 8 {
			break
		}
	}
	delete(s.m, victim)
}

// take removes and returns key's lines.
func (s *matchStore) take(jail uint16, key netip.Prefix) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := matchKey{jail, key}
	r := s.m[k]
	if r == nil {
		return nil
	}
	delete(s.m, k)
	out := make([]string, len(r.lines))
	for i := range r.lines {
		out[i] = r.lines[i].text
	}
	return out
}

// sweep drops keys whose newest line is older than their jail's findtime.
func (s *matchStore) sweep(now int64, findTime func(jail uint16) int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.m {
		if r.last <= now-findTime(k.jail) {
			delete(s.m, k)
		}
	}
}
