package pipeline

import (
	"fmt"
	"net/netip"
	"testing"
)

// The audit log's line store keeps the last maxmatches lines per key, gives them up on a
// crossing, stays within its key cap, and forgets keys older than findtime.
func TestEvidence(t *testing.T) {
	s := newEvidence(4 * evidenceShards)
	k := netip.MustParsePrefix("192.0.2.1/32")
	for i := range 5 {
		s.addLine(0, k, fmt.Sprintf("line %d", i), nil, int64(100+i), uint64(i), 0, 3)
	}
	if got := fmt.Sprint(s.take(0, k)); got != "[line 2 line 3 line 4]" {
		t.Fatalf("last three lines: %s", got)
	}
	if got := s.take(0, k); got != nil {
		t.Fatalf("taken twice: %v", got)
	}
	for i := range 2000 {
		s.addLine(1, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 32), "x", nil, int64(i%10), uint64(i), 0, 5)
	}
	if s.keys() > 4*evidenceShards {
		t.Fatalf("%d keys held, cap %d", s.keys(), 4*evidenceShards)
	}
	s.sweep(1000, func(uint16) int64 { return 600 })
	if s.keys() != 0 {
		t.Fatalf("%d keys older than findtime survived the sweep", s.keys())
	}
	s.addLine(2, k, "y", nil, 1, 0, 0, 0) // maxmatches = 0: nothing kept
	if s.keys() != 0 {
		t.Fatal("a line kept with maxmatches = 0")
	}
}

// Workers finish blocks out of order: the lines of a key still come out in reading order (block
// Seq, then index in the block), and a line older than the kept ones does not push them out.
func TestEvidenceReadingOrder(t *testing.T) {
	s := newEvidence(4 * evidenceShards)
	k := netip.MustParsePrefix("192.0.2.1/32")
	s.addLine(0, k, "b1", nil, 100, 7, 1, 3)
	s.addLine(0, k, "b2", nil, 100, 7, 2, 3)
	s.addLine(0, k, "a", nil, 100, 6, 9, 3)
	if got := fmt.Sprint(s.take(0, k)); got != "[a b1 b2]" {
		t.Fatalf("reading order: %s", got)
	}
	s.addLine(0, k, "b1", nil, 100, 7, 1, 2)
	s.addLine(0, k, "b2", nil, 100, 7, 2, 2)
	s.addLine(0, k, "a", nil, 100, 6, 9, 2)
	if got := fmt.Sprint(s.take(0, k)); got != "[b1 b2]" {
		t.Fatalf("the last two lines read: %s", got)
	}
}
