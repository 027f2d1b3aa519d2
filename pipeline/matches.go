package pipeline

import (
	"net/netip"
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
	lines []string // oldest first, at most max
	last  int64    // unix seconds of the newest line
}

func newMatchStore(maxKeys int) *matchStore {
	return &matchStore{m: make(map[matchKey]*matchRing), maxKeys: maxKeys}
}

// add records line for key, keeping the last max lines.
func (s *matchStore) add(jail uint16, key netip.Prefix, line string, t int64, max int) {
	if max <= 0 {
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
	if len(r.lines) >= max {
		r.lines = append(r.lines[:0], r.lines[len(r.lines)-max+1:]...)
	}
	r.lines = append(r.lines, line)
	r.last = max64(r.last, t)
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
	return r.lines
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

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
