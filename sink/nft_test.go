package sink

import (
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

func setElements(t testing.TB, table, set string) map[string]time.Duration {
	t.Helper()
	els := netnstest.NFTSet(t, table, set)
	if els == nil {
		t.Fatalf("set %s of table %s is missing", set, table)
	}
	return els
}

func keys(m map[string]time.Duration) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestNFTBuildApply(t *testing.T) {
	netnstest.Require(t)
	n, err := NewNFT(NFTOptions{Table: "pctest"})
	if err != nil {
		t.Fatal(err)
	}
	jails := []JailSpec{
		{Name: "sshd", Ports: []config.PortRange{{From: 22, To: 22}}, Protocol: "tcp", BlockType: "drop"},
		{Name: "web", Ports: []config.PortRange{{From: 80, To: 80}, {From: 8000, To: 8100}}, Protocol: "tcp", BlockType: "reject"},
	}
	a1 := netip.MustParsePrefix("192.0.2.7/32")
	a6 := netip.MustParsePrefix("2001:db8::7/128")
	if err := n.Build(jails, []Element{{Jail: "sshd", Prefix: a1, Timeout: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	got := setElements(t, "pctest", "sshd-v4")
	if d, ok := got["192.0.2.7"]; !ok || d != time.Hour {
		t.Fatalf("after Build, sshd-v4 = %v; want 192.0.2.7 with timeout 1h", got)
	}
	// Add a v6 ban and a permanent v4 ban in one transaction, then remove the first.
	if err := n.Apply([]Element{{Jail: "sshd", Prefix: a6, Timeout: 10 * time.Minute}, {Jail: "web", Prefix: netip.MustParsePrefix("198.51.100.9/32")}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := setElements(t, "pctest", "sshd-v6"); got["2001:db8::7"] != 10*time.Minute {
		t.Fatalf("sshd-v6 = %v", got)
	}
	if got := setElements(t, "pctest", "web-v4"); len(got) != 1 || got["198.51.100.9"] != 0 {
		t.Fatalf("web-v4 = %v; want the permanent element without timeout", got)
	}
	if err := n.Apply(nil, []Element{{Jail: "sshd", Prefix: a1}}); err != nil {
		t.Fatal(err)
	}
	if got := setElements(t, "pctest", "sshd-v4"); len(got) != 0 {
		t.Fatalf("after unban, sshd-v4 = %v", keys(got))
	}
	// Removing an element that is already gone (expired) is not an error, even mixed with an add.
	if err := n.Apply([]Element{{Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.8/32"), Timeout: time.Minute}}, []Element{{Jail: "sshd", Prefix: a1}}); err != nil {
		t.Fatalf("delete of a missing element with an add: %v", err)
	}
	if got := setElements(t, "pctest", "sshd-v4"); len(got) != 1 {
		t.Fatalf("the add next to a failed delete was lost: %v", keys(got))
	}
	// The rules: one per port range, referencing the sets.
	out, err := exec.Command("nft", "list", "chain", "inet", "pctest", "input").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"tcp dport 22 ip saddr @sshd-v4", "ip6 saddr @sshd-v6", "tcp dport 8000-8100 ip saddr @web-v4", "reject with tcp reset", "drop", "hook input priority filter - 1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("chain lacks %q:\n%s", want, out)
		}
	}
	ok, err := n.Present()
	if err != nil || !ok {
		t.Fatalf("Present = %v, %v; want true", ok, err)
	}
	// A flushed ruleset is noticed and a rebuild brings the bans back.
	if out, err := exec.Command("nft", "flush", "ruleset").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if ok, err := n.Present(); err != nil || ok {
		t.Fatalf("after flush ruleset Present = %v, %v; want false", ok, err)
	}
	if err := n.Build(jails, []Element{{Jail: "sshd", Prefix: a1, Timeout: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if got := setElements(t, "pctest", "sshd-v4"); len(got) != 1 {
		t.Fatalf("after rebuild sshd-v4 = %v", keys(got))
	}
}

// Addresses and networks go to sets of their own (addresses in hash sets, networks in interval
// sets), each with its rules; Elements lists both; a network replacing its addresses, or a wider
// network replacing narrower ones (aggregation), leaves each set with exactly what is banned.
func TestNFTAddressesAndNetworks(t *testing.T) {
	netnstest.Require(t)
	n, err := NewNFT(NFTOptions{Table: "pcnets"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Remove()
	jails := []JailSpec{{Name: "sshd", Ports: []config.PortRange{{From: 22, To: 22}}, Protocol: "tcp", BlockType: "drop"}}
	pf := netip.MustParsePrefix
	el := func(p string) Element { return Element{Jail: "sshd", Prefix: pf(p), Timeout: time.Hour} }
	if err := n.Build(jails, []Element{el("192.0.2.7/32"), el("192.0.2.8/32"), el("2001:db8::7/128"), el("2001:db8:1::/64")}); err != nil {
		t.Fatal(err)
	}
	if err := n.Apply([]Element{el("198.51.100.0/24")}, nil); err != nil {
		t.Fatal(err)
	}
	for set, want := range map[string]string{"sshd-v4": "[192.0.2.7 192.0.2.8]", "sshd-v6": "[2001:db8::7]",
		"sshd-v4-net": "[198.51.100.0/24]", "sshd-v6-net": "[2001:db8:1::/64]"} {
		if got := fmt.Sprint(keys(setElements(t, "pcnets", set))); got != want {
			t.Errorf("%s = %s, want %s", set, got, want)
		}
	}
	// The kernel finds an address inside a banned network.
	if out, err := exec.Command("nft", "get", "element", "inet", "pcnets", "sshd-v4-net", "{ 198.51.100.77 }").CombinedOutput(); err != nil {
		t.Errorf("198.51.100.77 not found in the banned /24: %v %s", err, out)
	}
	out, err := exec.Command("nft", "list", "chain", "inet", "pcnets", "input").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"tcp dport 22 ip saddr @sshd-v4 ", "tcp dport 22 ip saddr @sshd-v4-net ", "tcp dport 22 ip6 saddr @sshd-v6 ", "tcp dport 22 ip6 saddr @sshd-v6-net "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("chain lacks %q:\n%s", want, out)
		}
	}
	// Aggregation: 192.0.2.0/24 replaces its two addresses, 2001:db8::/48 its /64 and address,
	// each in one call.
	if err := n.Apply([]Element{el("192.0.2.0/24")}, []Element{el("192.0.2.7/32"), el("192.0.2.8/32")}); err != nil {
		t.Fatal(err)
	}
	if err := n.Apply([]Element{el("2001:db8::/32")}, []Element{el("2001:db8::7/128"), el("2001:db8:1::/64")}); err != nil {
		t.Fatal(err)
	}
	got, err := n.Elements("sshd")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	if fmt.Sprint(got) != "[192.0.2.0/24 198.51.100.0/24 2001:db8::/32]" {
		t.Fatalf("after aggregation the kernel holds %v", got)
	}
	if ok, err := n.Present(); err != nil || !ok {
		t.Fatalf("Present = %v, %v", ok, err)
	}
}

// A restore too large for one netlink message (default socket buffers) is built in parts, with
// every element in the set at the end.
func TestNFTBuildLargeInParts(t *testing.T) {
	netnstest.Require(t)
	n, err := NewNFT(NFTOptions{Table: "pcparts", DefaultBuffers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Remove()
	els := make([]Element, 30_000)
	for i := range els {
		a := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		if i >= 1<<16 {
			t.Fatal("keep the test under 65536 addresses")
		}
		els[i] = Element{Jail: "sshd", Prefix: netip.PrefixFrom(a, 32), Timeout: time.Hour}
	}
	jails := []JailSpec{{Name: "sshd", Protocol: "tcp", BlockType: "drop"}}
	if err := n.Build(jails, els); err != nil {
		t.Fatal(err)
	}
	// A listing (a netlink dump in many parts) can fall short of the set for a moment: one that
	// does is taken again, for up to 10 s, before elements are called missing; then the first
	// missing one is named.
	var got map[string]time.Duration
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got = setElements(t, "pcparts", "sshd-v4"); len(got) == len(els) || time.Now().After(end) {
			break
		}
		t.Logf("listed %d elements of %d; listing again", len(got), len(els))
	}
	for _, e := range els {
		if _, ok := got[e.Prefix.Addr().String()]; !ok {
			t.Fatalf("%d elements in the set, want %d; %s is missing", len(got), len(els), e.Prefix.Addr())
		}
	}
}

// chain_hook = forward: the jail's rules go into a forward chain (containers, VMs), at priority -1
// so they run before iptables-nft's filter table and Docker's rules; an input-only jail's rules
// stay out of it, and a forward-only jail's out of the input chain.
func TestNFTForwardHook(t *testing.T) {
	netnstest.Require(t)
	n, err := NewNFT(NFTOptions{Table: "pcfwd"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Remove()
	jails := []JailSpec{
		{Name: "sshd", Ports: []config.PortRange{{From: 22, To: 22}}, Protocol: "tcp", BlockType: "drop", Input: true},
		{Name: "web", Ports: []config.PortRange{{From: 80, To: 80}}, Protocol: "tcp", BlockType: "drop", Forward: true},
		{Name: "both", Protocol: "all", BlockType: "drop", Input: true, Forward: true},
	}
	if err := n.Build(jails, []Element{{Jail: "web", Prefix: netip.MustParsePrefix("192.0.2.80/32"), Timeout: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	list := func(chain string) string {
		out, err := exec.Command("nft", "list", "chain", "inet", "pcfwd", chain).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return string(out)
	}
	in, fwd := list("input"), list("forward")
	for _, c := range []struct {
		chain, text, want string
		present           bool
	}{
		{"forward", fwd, "hook forward priority filter - 1", true},
		{"forward", fwd, "tcp dport 80 ip saddr @web-v4", true},
		{"forward", fwd, "ip saddr @both-v4", true},
		{"forward", fwd, "@sshd-v4", false},
		{"input", in, "tcp dport 22 ip saddr @sshd-v4", true},
		{"input", in, "ip saddr @both-v4", true},
		{"input", in, "@web-v4", false},
	} {
		if strings.Contains(c.text, c.want) != c.present {
			t.Errorf("chain %s: %q present = %v, want %v:\n%s", c.chain, c.want, !c.present, c.present, c.text)
		}
	}
	if got := setElements(t, "pcfwd", "web-v4"); len(got) != 1 {
		t.Fatalf("web-v4 = %v", keys(got))
	}
}

// Interval elements pair back into the prefixes they were made from (reconcile reads the sets).
func TestPairIntervals(t *testing.T) {
	var els []nftables.SetElement
	// Adjacent ranges (.7 and .8) share a boundary point: the end of one, the start of the next.
	want := []string{"0.0.0.0/8", "192.0.2.7/32", "192.0.2.8/32", "198.51.100.0/24", "255.255.255.255/32"}
	for _, p := range []string{"198.51.100.0/24", "192.0.2.8/32", "255.255.255.255/32", "192.0.2.7/32", "0.0.0.0/8"} {
		els = append(els, intervalElems(netip.MustParsePrefix(p), time.Hour)...)
	}
	var got []string
	for _, p := range pairIntervals(els) {
		got = append(got, p.String())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paired %v, want %v", got, want)
	}
	var els6 []nftables.SetElement
	for _, p := range []string{"2001:db8::/64", "2001:db8:1::5/128"} {
		els6 = append(els6, intervalElems(netip.MustParsePrefix(p), 0)...)
	}
	if got := fmt.Sprint(pairIntervals(els6)); got != "[2001:db8::/64 2001:db8:1::5/128]" {
		t.Fatalf("paired v6 %s", got)
	}
}

// Long and permanent bans never expire early in the kernel: an element takes a ten-year timeout as
// given, and a permanent ban is an element without one (the set's elements otherwise carry their
// own timeouts), so nothing needs renewing; the daemon's reconcile re-adds anything that vanished.
func TestNFTLongAndPermanentBans(t *testing.T) {
	netnstest.Require(t)
	n, err := NewNFT(NFTOptions{Table: "pclong"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Remove()
	tenYears := 10 * 365 * 24 * time.Hour
	if err := n.Build([]JailSpec{{Name: "j", Protocol: "all", BlockType: "drop", Input: true}}, []Element{
		{Jail: "j", Prefix: netip.MustParsePrefix("192.0.2.10/32"), Timeout: tenYears},
		{Jail: "j", Prefix: netip.MustParsePrefix("192.0.2.11/32")},
	}); err != nil {
		t.Fatal(err)
	}
	got := setElements(t, "pclong", "j-v4")
	if got["192.0.2.10"] != tenYears {
		t.Errorf("ten-year ban's kernel timeout %v", got["192.0.2.10"])
	}
	if d, ok := got["192.0.2.11"]; !ok || d != 0 {
		t.Errorf("permanent ban: present %v, timeout %v (want none)", ok, d)
	}
}

// A prolonged ban replaces its element with one of the new timeout in one transaction: a reader
// of the set, polling all the while, never finds it missing.
func TestNFTProlongReplacesInOneTransaction(t *testing.T) {
	netnstest.Require(t)
	n, err := NewNFT(NFTOptions{Table: "pcprolong"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Remove()
	jails := []JailSpec{{Name: "sshd", Ports: []config.PortRange{{From: 22, To: 22}}, Protocol: "tcp", BlockType: "drop"}}
	var els []Element
	for i := range 500 {
		els = append(els, Element{Jail: "sshd", Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i / 250), byte(i%250 + 1)}), 32), Timeout: time.Minute})
	}
	if err := n.Build(jails, els); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	missing := make(chan int, 1)
	go func() {
		defer close(missing)
		for {
			select {
			case <-done:
				return
			default:
			}
			if got := len(netnstest.NFTSet(t, "pcprolong", "sshd-v4")); got != len(els) {
				missing <- got
				return
			}
		}
	}()
	for round := range 20 {
		longer := make([]Element, len(els))
		for i, e := range els {
			e.Timeout = time.Duration(2+round) * time.Minute
			longer[i] = e
		}
		if err := n.Apply(longer, els); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if got, ok := <-missing; ok {
		t.Fatalf("a reader saw %d of %d elements while bans were prolonged", got, len(els))
	}
	if d := setElements(t, "pcprolong", "sshd-v4")["198.51.0.1"]; d != 21*time.Minute {
		t.Fatalf("timeout after prolonging %v, want 21m", d)
	}
}
