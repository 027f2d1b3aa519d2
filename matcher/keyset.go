package matcher

// keySet is a set of integers for one block, open-addressed: reset sizes it for the
// block's jobs (at most half full) and forgets the last block's keys by a generation count, so it
// costs neither a map's hashing and growth nor a clear per block.
type keySet struct {
	keys []uint64
	gens []uint32
	gen  uint32
	mask uint64
}

func (s *keySet) reset(most int) {
	size := 1024
	for size < 2*most {
		size *= 2
	}
	if len(s.keys) < size {
		s.keys, s.gens, s.gen = make([]uint64, size), make([]uint32, size), 0
	}
	s.mask = uint64(len(s.keys) - 1)
	if s.gen++; s.gen == 0 { // wrapped: old stamps could read as current
		clear(s.gens)
		s.gen = 1
	}
}

// slot is where k is, or the empty slot where it would go.
func (s *keySet) slot(k uint64) uint64 {
	i := (k * 0x9e3779b97f4a7c15) >> 32 & s.mask
	for s.gens[i] == s.gen && s.keys[i] != k {
		i = (i + 1) & s.mask
	}
	return i
}

func (s *keySet) has(k uint64) bool { return s.gens[s.slot(k)] == s.gen }

func (s *keySet) add(k uint64) {
	i := s.slot(k)
	s.keys[i], s.gens[i] = k, s.gen
}

// blockKey is a connection's key (its hash in the jail's cache) mixed with its jail. Two
// connections of a block that share one only make a line less likely to be skipped.
func blockKey(jail uint16, hash uint64) uint64 { return hash ^ uint64(jail)*0x9e3779b97f4a7c15 }
