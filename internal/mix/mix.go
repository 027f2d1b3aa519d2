// Package mix holds the one integer hash finaliser the counting windows' shards and the fleet's
// partitions share.
package mix

// Fmix64 is MurmurHash3's finaliser: every input bit affects every output bit, so the low bits a
// modulo keeps depend on all of h.
func Fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
