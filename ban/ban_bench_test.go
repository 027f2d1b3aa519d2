package ban

import (
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/window"
)

// BenchmarkDecide measures a ban decision for a fresh address (ignore checks, map insert).
func BenchmarkDecide(b *testing.B) {
	m := New([]Policy{{Name: "sshd", BanTime: time.Hour, IgnoreSelf: true,
		IgnoreIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")}}},
		Options{SelfAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
	cs := make([]window.Crossing, 1)
	var dst []Decision
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cs[0] = window.Crossing{Jail: 0, Addr: netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})}
		dst = m.Decide(cs, dst[:0])
	}
}
