package ban

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/window"
)

// BenchmarkDecide measures a ban decision for a fresh address (ignore checks, map insert).
func BenchmarkDecide(b *testing.B) {
	m := New([]Policy{{Name: "sshd", BanTime: time.Hour, IgnoreSelf: true,
		IgnoreIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")}}},
		Options{SelfAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
	cs := make([]window.Crossing, 1)
	var dst []Decision
	b.SetBytes(int64(unsafe.Sizeof(window.Crossing{}))) // bytes: the crossings decided on
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cs[0] = window.Crossing{Jail: 0, Addr: netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})}
		dst = m.Decide(cs, dst[:0])
	}
}

// BenchmarkDecideEscalating is a ban decision in a jail with network escalation (/64s into a /48
// at 1,000 bans) while 100,000 single-address IPv6 bans in other networks are active.
func BenchmarkDecideEscalating(b *testing.B) {
	m := New([]Policy{{Name: "sshd", BanTime: time.Hour,
		Escalate: []Escalation{{V6: true, Bits: 48, Count: 1000}}}},
		Options{SelfAddrs: []netip.Addr{}})
	addr := func(net, host uint32) netip.Addr {
		var a [16]byte
		a[0], a[1] = 0x20, 0x01
		a[2], a[3], a[4], a[5] = byte(net>>24), byte(net>>16), byte(net>>8), byte(net)
		a[12], a[13], a[14], a[15] = byte(host>>24), byte(host>>16), byte(host>>8), byte(host)
		return netip.AddrFrom16(a)
	}
	cs := make([]window.Crossing, 1)
	var dst []Decision
	for i := uint32(0); i < 100_000; i++ {
		cs[0] = window.Crossing{Jail: 0, Addr: addr(i, 1)}
		dst = m.Decide(cs, dst[:0])
	}
	b.SetBytes(int64(unsafe.Sizeof(window.Crossing{})))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cs[0] = window.Crossing{Jail: 0, Addr: addr(200_000+uint32(i), 1)}
		if dst = m.Decide(cs, dst[:0]); len(dst) != 1 {
			b.Fatalf("%d decisions", len(dst))
		}
	}
}
