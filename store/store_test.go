package store

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestCommitReopenRestore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b1 := Ban{Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Start: 100, End: 700, Count: 1}
	b2 := Ban{Jail: "sshd", Prefix: netip.MustParsePrefix("2001:db8::/64"), Start: 100, End: 0, Count: 2}
	b3 := Ban{Jail: "web", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Start: 150, End: 750, Count: 3}
	if err := s.Commit([]Change{{Ban: b1}, {Ban: b2}, {Ban: b3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit([]Change{{Unban: true, Ban: b3}}); err != nil {
		t.Fatal(err)
	}
	// A second process cannot open the same store while it is held.
	if s2, err := Open(dir, nil); err == nil {
		s2.Close()
		t.Fatal("a second Open of a held store succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bans, err := s.Bans()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(bans); got != fmt.Sprint([]Ban{b1, b2}) {
		t.Fatalf("bans after reopen:\n%v\nwant\n%v", got, []Ban{b1, b2})
	}
	h, err := s.History()
	if err != nil {
		t.Fatal(err)
	}
	if h[b1.Prefix] != (History{Count: 3, Last: 150}) || h[b2.Prefix] != (History{Count: 2, Last: 100}) {
		t.Fatalf("history %v: the web ban of 192.0.2.1 (count 3, at 150) must stay in history after its unban", h)
	}
	// dbpurgeage: deleted history is gone, the rest stays.
	web := Ban{Jail: "web", Prefix: b3.Prefix, Start: 160, End: 760, Count: 4, JailCount: 2}
	ssh := Ban{Jail: "sshd", Prefix: b1.Prefix, Start: 170, End: 770, Count: 5, JailCount: 2}
	if err := s.Commit([]Change{{Ban: web}, {Ban: ssh}}); err != nil {
		t.Fatal(err)
	}
	if jh, _ := s.JailHistory(); jh["web"][b3.Prefix] != (History{Count: 2, Last: 160}) {
		t.Fatalf("per-jail history %v", jh)
	}
	if err := s.DeleteHistory([]netip.Prefix{b2.Prefix}, map[string][]netip.Prefix{"web": {b3.Prefix}}); err != nil {
		t.Fatal(err)
	}
	h, _ = s.History()
	jh, err := s.JailHistory()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h[b2.Prefix]; ok || len(h) != 1 || len(jh["web"]) != 0 || jh["sshd"][b1.Prefix].Count == 0 {
		t.Fatalf("after purge: history %v, per jail %v", h, jh)
	}
}

// BenchmarkCommit measures one synced batch of 64 bans, the applier's unit of work.
func BenchmarkCommit(b *testing.B) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	changes := make([]Change, 64)
	// Bytes: the keys and values written and synced per batch (a ban and its history each).
	p := netip.MustParsePrefix("10.0.0.1/32")
	b.SetBytes(64 * int64(len(banKey("sshd", p))+20+len(histKey(p))+12))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for j := range changes {
			k := i*64 + j
			changes[j] = Change{Ban: Ban{Jail: "sshd", Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}), 32), Start: 1, End: 2, Count: 1}}
		}
		if err := s.Commit(changes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*64/b.Elapsed().Seconds(), "bans/s")
}

// Positions, cursors and failure counts are saved together and survive a reopen; a later save
// with counts replaces the earlier counts (an address no longer tracked is gone), one without
// counts leaves them alone.
func TestProgress(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Offset{Path: "/var/log/auth.log", Dev: 2049, Ino: 77, Fingerprint: 0xdeadbeef, FPLen: 1024, Offset: 123456}
	a4, a6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	// A key of "jail|address" holds times; "jail|address|n" the counts of those times.
	counts := func(m map[string][]uint32) func(func(string, netip.Addr, []uint32, []uint32) error) error {
		return func(put func(string, netip.Addr, []uint32, []uint32) error) error {
			for k, ts := range m {
				jail, addr, _ := strings.Cut(k, "|")
				if strings.Contains(addr, "|") {
					continue
				}
				if err := put(jail, netip.MustParseAddr(addr), ts, m[k+"|n"]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	err = s.SaveProgress(Progress{Offsets: []Offset{o}, Cursors: map[string]string{"journal:sshd": "s=abc"},
		Windows: counts(map[string][]uint32{"sshd|" + a4.String(): {10, 20}, "nginx/x|" + a6.String(): {30}})})
	if err != nil {
		t.Fatal(err)
	}
	o.Offset = 200000
	err = s.SaveProgress(Progress{Offsets: []Offset{o}, Windows: counts(map[string][]uint32{"sshd|" + a4.String(): {10, 20, 25},
		"big|" + a6.String(): {30, 40}, "big|" + a6.String() + "|n": {1000, 7}})})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveProgress(Progress{Offsets: []Offset{o}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Offsets()
	if err != nil || len(got) != 1 || got[o.Path] != o {
		t.Fatalf("offsets %+v %v, want %+v", got, err, o)
	}
	cur, err := s.Cursors()
	if err != nil || cur["journal:sshd"] != "s=abc" {
		t.Fatalf("cursors %v %v", cur, err)
	}
	var held []string
	if err := s.Windows(func(jail string, addr netip.Addr, times, counts []uint32) {
		held = append(held, fmt.Sprintf("%s|%s|%v|%v", jail, addr, times, counts))
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(held) != "[big|2001:db8::1|[30 40]|[1000 7] sshd|192.0.2.1|[10 20 25]|[]]" {
		t.Fatalf("failure counts %v, want only the last saved set", held)
	}
}
