package sink

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/mdlayher/netlink"

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
	els := benchElements(1024)
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

// benchElements is n bans of jail sshd, every other one IPv6, each for an hour.
func benchElements(n int) []Element {
	els := make([]Element, n)
	for i := range els {
		a := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		if i%2 == 1 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		els[i] = Element{Jail: "sshd", Prefix: netip.PrefixFrom(a, a.BitLen()), Timeout: time.Hour}
	}
	return els
}

// BenchmarkRestore100k rebuilds the table with 100,000 active bans in one transaction, as the
// daemon does at start (the store's bans back into the kernel).
func BenchmarkRestore100k(b *testing.B) {
	netnstest.Require(b)
	n, err := NewNFT(NFTOptions{Table: "pcrestore"})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Remove()
	jails := []JailSpec{{Name: "sshd", Ports: []config.PortRange{{From: 22, To: 22}}, Protocol: "tcp", BlockType: "drop"}}
	els := make([]Element, 100_000)
	for i := range els {
		a := netip.AddrFrom4([4]byte{100, byte(64 + i>>16), byte(i >> 8), byte(i)})
		els[i] = Element{Jail: "sshd", Prefix: netip.PrefixFrom(a, 32), Timeout: time.Hour}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := n.Build(jails, els); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/restore")
}

// BenchmarkEncode is Apply without a kernel: 1,024 bans (IPv4 and IPv6, each with a timeout)
// encoded into one netlink transaction and handed to a stand-in that acknowledges it. It isolates
// our encoding and the netlink library's from the kernel's work (BenchmarkApply); bytes are the
// netlink payload built per transaction.
func BenchmarkEncode(b *testing.B) {
	sent := 0
	n, err := NewNFT(NFTOptions{Table: "pcbench", conn: []nftables.ConnOption{nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			sent += len(m.Data)
		}
		return req, nil // an echo reads as the kernel's acknowledgement
	})}})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Build([]JailSpec{{Name: "sshd", Ports: []config.PortRange{{From: 22, To: 22}}, Protocol: "tcp", BlockType: "drop"}}, nil); err != nil {
		b.Fatal(err)
	}
	els := benchElements(1024)
	if err := n.Apply(els, nil); err != nil {
		b.Fatal(err)
	}
	if sent == 0 {
		b.Fatal("nothing was encoded")
	}
	sent = 0
	if err := n.Apply(els, nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sent))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := n.Apply(els, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(els))/b.Elapsed().Seconds(), "bans/s")
}
