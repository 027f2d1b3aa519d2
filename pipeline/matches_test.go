package pipeline

import (
	"fmt"
	"net/netip"
	"testing"
)

// The audit log's line store keeps the last maxmatches lines per key, gives them up on a
// crossing, stays within its key cap, and forgets keys older than findtime.
func TestMatchStore(t *testing.T) {
	s := newMatchStore(4)
	k := netip.MustParsePrefix("192.0.2.1/32")
	for i := range 5 {
		s.add(0, k, fmt.Sprintf("line %d", i), int64(100+i), uint64(i), 0, 3)
	}
	if got := fmt.Sprint(s.take(0, k)); got != "[line 2 line 3 line 4]" {
		t.Fatalf("last three lines: %s", got)
	}
	if got := s.take(0, k); got != nil {
		t.Fatalf("taken twice: %v", got)
	}
	for i := range 10 {
		s.add(1, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32), "x", int64(i), uint64(i), 0, 5)
	}
	if len(s.m) > 4 {
		t.Fatalf("%d keys held, cap 4", len(s.m))
	}
	s.sweep(1000, func(uint16) int64 { return 600 })
	if len(s.m) != 0 {
		t.Fatalf("%d keys older than findtime survived the sweep", len(s.m))
	}
	s.add(2, k, "y", 1, 0, 0, 0) // maxmatches = 0: nothing kept
	if len(s.m) != 0 {
		t.Fatal("a line kept with maxmatches = 0")
	}
}

// Workers finish blocks out of order: the lines of a key still come out in reading order (block
// Seq, then index in the block), and a line older than the kept ones does not push them out.
func TestMatchStoreReadingOrder(t *testing.T) {
	s := newMatchStore(4)
	k := netip.MustParsePrefix("192.0.2.1/32")
	s.add(0, k, "b1", 100, 7, 1, 3)
	s.add(0, k, "b2", 100, 7, 2, 3)
	s.add(0, k, "a", 100, 6, 9, 3)
	if got := fmt.Sprint(s.take(0, k)); got != "[a b1 b2]" {
		t.Fatalf("reading order: %s", got)
	}
	s.add(0, k, "b1", 100, 7, 1, 2)
	s.add(0, k, "b2", 100, 7, 2, 2)
	s.add(0, k, "a", 100, 6, 9, 2)
	if got := fmt.Sprint(s.take(0, k)); got != "[b1 b2]" {
		t.Fatalf("the last two lines read: %s", got)
	}
}
