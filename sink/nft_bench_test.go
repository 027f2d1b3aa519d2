package sink

import (
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/netnstest"
)

// BenchmarkApply adds 1024 bans in one netlink transaction and removes them in another, in a
// private network namespace. Reports bans/s through the kernel.
func BenchmarkApply(b *testing.B) {
	netnstest.Require(b)
	n, err := NewNFT(NFTOptions{Table: "pcbench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Build([]JailSpec{{Name: "sshd", Ports: []config.PortRange{{From: 22, To: 22}}, Protocol: "tcp", BlockType: "drop"}}, nil); err != nil {
		b.Fatal(err)
	}
	defer n.Remove()
	els := make([]Element, 1024)
	for i := range els {
		a := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		if i%2 == 1 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		els[i] = Element{Jail: "sshd", Prefix: netip.PrefixFrom(a, a.BitLen()), Timeout: time.Hour}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := n.Apply(els, nil); err != nil {
			b.Fatal(err)
		}
		if err := n.Apply(nil, els); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*2*float64(len(els))/b.Elapsed().Seconds(), "changes/s")
}
