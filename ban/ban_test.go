package ban

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/formula"
	"github.com/portcullis/portcullis/window"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newManager(c *clock) *Manager {
	return New([]Policy{
		{Name: "sshd", BanTime: 10 * time.Minute, IgnoreIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}, IgnoreSelf: true},
		{Name: "forever", BanTime: -1},
	}, Options{Now: c.now, SelfAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}})
}

func cross(jail uint16, a string) window.Crossing {
	return window.Crossing{Jail: jail, Addr: netip.MustParseAddr(a)}
}

func TestNeverBanWhatIsProtected(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := newManager(c)
	protected := []struct {
		jail uint16
		addr string
	}{
		{0, "127.0.0.1"}, {0, "127.8.9.10"}, {0, "::1"}, {0, "::ffff:127.0.0.1"}, {1, "127.0.0.1"},
		{0, "10.1.2.3"}, {0, "2001:db8:ffff::5"}, {0, "::ffff:10.0.0.1"},
		{0, "192.0.2.10"}, {0, "2001:db8::10"},
		{0, "0.0.0.0"}, {0, "224.0.0.1"},
	}
	for _, p := range protected {
		if ds := m.Decide([]window.Crossing{cross(p.jail, p.addr)}, nil); len(ds) != 0 {
			t.Errorf("%s in jail %d was banned", p.addr, p.jail)
		}
		_, err := m.Ban(p.jail, netip.MustParseAddr(p.addr))
		var pe *ProtectedError
		if !errors.As(err, &pe) || pe.Reason == "" {
			t.Errorf("manual ban of %s: err %v, want a ProtectedError with a reason", p.addr, err)
		}
	}
	// ignoreself is per jail: jail 1 does not set it, and 10/8 is only in jail 0's ignoreip.
	if ds := m.Decide([]window.Crossing{cross(1, "192.0.2.10"), cross(1, "10.1.2.3")}, nil); len(ds) != 2 {
		t.Fatalf("jail without ignoreself/ignoreip: %d bans, want 2", len(ds))
	}
	if got := m.Stats[0].Ignored.Load(); got != uint64(2*(len(protected)-1)) {
		t.Fatalf("ignored counter %d", got)
	}
}

func TestBanExpireUnbanRestore(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := newManager(c)
	ds := m.Decide([]window.Crossing{cross(0, "198.51.100.7"), cross(0, "198.51.100.7"), cross(1, "198.51.100.7")}, nil)
	if len(ds) != 2 {
		t.Fatalf("want one ban per jail, got %+v", ds)
	}
	if ds[0].End != 1_000_000+600 || ds[0].Start != 1_000_000 || ds[0].Count != 1 {
		t.Fatalf("sshd ban %+v", ds[0])
	}
	if ds[1].End != 0 || ds[1].Count != 2 {
		t.Fatalf("a bantime = -1 ban must have no end and count history: %+v", ds[1])
	}
	if _, err := m.Ban(0, netip.MustParseAddr("198.51.100.7")); !errors.Is(err, ErrAlreadyBanned) {
		t.Fatalf("second manual ban: %v", err)
	}
	c.t = c.t.Add(599 * time.Second)
	if x := m.Expire(nil); len(x) != 0 {
		t.Fatalf("expired early: %+v", x)
	}
	c.t = c.t.Add(time.Second)
	x := m.Expire(nil)
	if len(x) != 1 || x[0].Op != OpUnban || x[0].Jail != 0 || x[0].Reason != "expired" {
		t.Fatalf("expiry %+v", x)
	}
	// Unban in every jail.
	p := netip.MustParsePrefix("198.51.100.7/32")
	if u := m.Unban(0, true, p, "manual"); len(u) != 1 || u[0].Jail != 1 {
		t.Fatalf("unban all: %+v", u)
	}
	if u := m.Unban(0, true, p, "manual"); len(u) != 0 {
		t.Fatalf("second unban: %+v", u)
	}

	// A new manager restores what was active, drops what expired meanwhile, and keeps the history.
	m2 := newManager(c)
	expired := m2.Restore([]Active{
		{Jail: 0, Prefix: netip.MustParsePrefix("203.0.113.1/32"), Start: c.t.Unix() - 100, End: c.t.Unix() + 100, Count: 3},
		{Jail: 0, Prefix: netip.MustParsePrefix("203.0.113.2/32"), Start: c.t.Unix() - 700, End: c.t.Unix() - 100, Count: 1},
	}, map[netip.Prefix]History{netip.MustParsePrefix("203.0.113.1/32"): {Count: 3, Last: c.t.Unix() - 100}})
	if len(expired) != 1 || expired[0].Prefix.String() != "203.0.113.2/32" {
		t.Fatalf("restore expired %+v", expired)
	}
	if !m2.IsBanned(0, netip.MustParsePrefix("203.0.113.1/32")) || m2.IsBanned(0, netip.MustParsePrefix("203.0.113.2/32")) {
		t.Fatal("restore kept the wrong bans")
	}
	m2.Unban(0, false, netip.MustParsePrefix("203.0.113.1/32"), "manual")
	d, err := m2.Ban(0, netip.MustParseAddr("203.0.113.1"))
	if err != nil || d.Count != 4 {
		t.Fatalf("ban after restore: %+v %v; want count 4 from history", d, err)
	}
}

func TestIncrement(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := New([]Policy{
		{Name: "a", BanTime: 10 * time.Minute, Increment: Increment{Enabled: true, MaxTime: 50 * time.Minute}},
		{Name: "b", BanTime: time.Minute, Increment: Increment{Enabled: true, Multipliers: []float64{1, 5, 30}}},
		{Name: "c", BanTime: time.Minute, Increment: Increment{Enabled: true, OverallJails: true, RndTime: 10 * time.Second}},
	}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	addr := netip.MustParseAddr("198.51.100.9")
	pfx := netip.PrefixFrom(addr, 32)
	length := func(jail uint16) int64 {
		t.Helper()
		d, err := m.Ban(jail, addr)
		if err != nil {
			t.Fatal(err)
		}
		m.Unban(jail, false, pfx, "test")
		return d.End - d.Start
	}
	// Default formula: 10m, 20m, 40m, then capped at bantime.maxtime.
	for i, want := range []int64{600, 1200, 2400, 3000, 3000} {
		if got := length(0); got != want {
			t.Fatalf("jail a, ban %d: %d s, want %d", i+1, got, want)
		}
	}
	// Multipliers, the last one repeating; counted in this jail only (jail a's bans do not count).
	for i, want := range []int64{60, 300, 1800, 1800} {
		if got := length(1); got != want {
			t.Fatalf("jail b, ban %d: %d s, want %d", i+1, got, want)
		}
	}
	// overalljails: the 9 earlier bans in a and b count: 60 * 2^9, plus up to 10 s at random.
	if got := length(2); got < 60*512 || got > 60*512+10 {
		t.Fatalf("jail c: %d s, want %d..%d", got, 60*512, 60*512+10)
	}
}

// As fail2ban's observer computes it: the first ban is bantime as set (no factor, formula,
// maxtime or rndtime); from the second on the factor multiplies the formula and the multipliers
// alike, the formula's result is never below bantime, and maxtime caps the result.
func TestIncrementFirstBanAndFactor(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	fml, err := formula.Compile("ban.Time * banFactor * 0.5")
	if err != nil {
		t.Fatal(err)
	}
	pols := []Policy{
		{Name: "factor", BanTime: 3 * time.Second, Increment: Increment{Enabled: true, Factor: 4}},
		{Name: "mult", BanTime: time.Minute, Increment: Increment{Enabled: true, Factor: 2, Multipliers: []float64{1, 5, 30}}},
		{Name: "cap", BanTime: time.Hour, Increment: Increment{Enabled: true, MaxTime: 30 * time.Minute, RndTime: time.Hour}},
		{Name: "floor", BanTime: time.Minute, Increment: Increment{Enabled: true, Factor: 1, Formula: fml}},
	}
	m := New(pols, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	addr := netip.MustParseAddr("198.51.100.10")
	for jail, want := range [][]int64{{3, 24, 48}, {60, 600, 3600, 3600}, {3600}, {60, 60}} {
		for i, w := range want {
			d, err := m.Ban(uint16(jail), addr)
			if err != nil {
				t.Fatal(err)
			}
			m.Unban(uint16(jail), false, netip.PrefixFrom(addr, 32), "test")
			if got := d.End - d.Start; got != w {
				t.Fatalf("jail %s, ban %d: %d s, want %d", pols[jail].Name, i+1, got, w)
			}
		}
	}
	// The second ban of "cap": the formula's 2 h, capped at 30 min, plus up to an hour at random.
	d, _ := m.Ban(2, addr)
	if got := d.End - d.Start; got < 1800 || got > 1800+3600 {
		t.Fatalf("jail cap, ban 2: %d s, want 1800..5400", got)
	}
}

// dbpurgeage: history last touched before the cutoff is forgotten (escalation starts over), unless
// the prefix is banned now; per-jail history likewise.
func TestPurgeHistory(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := New([]Policy{{Name: "a", BanTime: time.Hour, Increment: Increment{Enabled: true}}}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	old, recent, active := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	for _, a := range []netip.Addr{old, active} {
		if _, err := m.Ban(0, a); err != nil {
			t.Fatal(err)
		}
	}
	m.Unban(0, false, netip.PrefixFrom(old, 32), "test")
	c.t = c.t.Add(2 * 24 * time.Hour)
	if _, err := m.Ban(0, recent); err != nil {
		t.Fatal(err)
	}
	m.Unban(0, false, netip.PrefixFrom(recent, 32), "test")
	overall, perJail := m.PurgeHistory(c.t.Add(-24 * time.Hour).Unix())
	if fmt.Sprint(overall) != "[198.51.100.1/32]" || fmt.Sprint(perJail[0]) != "[198.51.100.1/32]" {
		t.Fatalf("purged %v %v, want only the old, unbanned prefix", overall, perJail)
	}
	// The purged address escalates from scratch; the recent one remembers.
	for a, want := range map[netip.Addr]uint32{old: 1, recent: 2} {
		d, err := m.Ban(0, a)
		if err != nil || d.Count != want {
			t.Fatalf("ban of %s: count %d %v, want %d", a, d.Count, err, want)
		}
	}
}

// A crossing counted per network bans the network, unless a protected address is inside it: then
// only the address that crossed. An address unbans the network ban that holds it.
func TestPrefixBans(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := New([]Policy{{Name: "a", BanTime: time.Hour, IgnoreSelf: true, IgnoreIP: []netip.Prefix{netip.MustParsePrefix("2001:db8:9:9::5/128")}}},
		Options{Now: c.now, SelfAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}})
	cross := func(addr, pfx string) window.Crossing {
		return window.Crossing{Jail: 0, Addr: netip.MustParseAddr(addr), Prefix: netip.MustParsePrefix(pfx), Count: 3}
	}
	ds := m.Decide([]window.Crossing{
		cross("2001:db8:1:2::77", "2001:db8:1:2::/64"),
		cross("2001:db8:9:9::6", "2001:db8:9:9::/64"), // ignoreip holds ::5 of this /64
		cross("198.51.100.33", "198.51.100.0/24"),     // ignoreself: this machine is .1
		cross("203.0.113.5", "203.0.113.0/24"),
	}, nil)
	var got []string
	for _, d := range ds {
		got = append(got, d.Prefix.String())
	}
	if want := "[2001:db8:1:2::/64 2001:db8:9:9::6/128 198.51.100.33/32 203.0.113.0/24]"; fmt.Sprint(got) != want {
		t.Fatalf("banned %v, want %s", got, want)
	}
	// Another address of the banned /64 is banned already.
	if _, err := m.decide(0, netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParsePrefix("2001:db8:1:2::/64"), "failures"); !errors.Is(err, ErrAlreadyBanned) {
		t.Fatalf("second crossing of the same /64: %v", err)
	}
	if u := m.Unban(0, false, netip.MustParsePrefix("2001:db8:1:2::1/128"), "manual"); len(u) != 1 || u[0].Prefix.String() != "2001:db8:1:2::/64" {
		t.Fatalf("unban of an address inside the /64: %+v", u)
	}
}

// ignorecommand: exit 0 protects the address, exit 1 lets the ban happen, a failing command bans
// (protection first) and is counted; answers are cached, so the program runs once per address.
func TestIgnoreCommand(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "check")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$1\" >> "+calls+"\ncase \"$1\" in 198.51.100.1) exit 0;; 198.51.100.2) exit 1;; esac\nexit 3\n"), 0o755)
	c := &clock{time.Unix(1_000_000, 0)}
	m := New([]Policy{{Name: "a", BanTime: time.Hour, IgnoreCommand: &IgnoreCommand{Argv: []string{script, "<ip>"}}}}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	for _, tc := range []struct {
		addr      string
		protected bool
	}{{"198.51.100.1", true}, {"198.51.100.2", false}, {"198.51.100.3", false}, {"198.51.100.1", true}} {
		err := m.Protected(0, netip.MustParseAddr(tc.addr))
		if (err != nil) != tc.protected {
			t.Errorf("%s: protected = %v (%v), want %v", tc.addr, err != nil, err, tc.protected)
		}
	}
	if n := m.Stats[0].IgnoreCommandErrors.Load(); n != 1 {
		t.Errorf("command errors %d, want 1 (exit 3)", n)
	}
	b, _ := os.ReadFile(calls)
	if got := strings.Fields(string(b)); fmt.Sprint(got) != "[198.51.100.1 198.51.100.2 198.51.100.3]" {
		t.Errorf("the program ran for %v; the second 198.51.100.1 should come from the cache", got)
	}
}

// Escalation: the third /64 banned inside one /56 bans the /56 and lifts the three; a /64 inside
// the banned /56 is banned already; a /48 rule counts every ban inside it (the /56 is one), and
// cascades; a network holding a protected address is never aggregated.
func TestEscalation(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := New([]Policy{{Name: "a", BanTime: time.Hour, IgnoreIP: []netip.Prefix{netip.MustParsePrefix("2001:db8:ff:ff00::1/128")},
		Escalate: []Escalation{{V6: true, Bits: 56, Count: 3}, {V6: true, Bits: 48, Count: 3}}}}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	ban64 := func(p string) string {
		pf := netip.MustParsePrefix(p)
		var out []string
		for _, d := range m.Decide([]window.Crossing{{Jail: 0, Addr: pf.Addr().Next(), Prefix: pf, Count: 5}}, nil) {
			out = append(out, d.Op.String()+" "+d.Prefix.String())
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	ban64("2001:db8:1:100::/64")
	ban64("2001:db8:1:101::/64")
	if got, want := ban64("2001:db8:1:1ff::/64"), "ban 2001:db8:1:100::/56, ban 2001:db8:1:1ff::/64, unban 2001:db8:1:100::/64, unban 2001:db8:1:101::/64, unban 2001:db8:1:1ff::/64"; got != want {
		t.Fatalf("third /64 of a /56:\n got %s\nwant %s", got, want)
	}
	if got := ban64("2001:db8:1:1aa::/64"); got != "" {
		t.Fatalf("a /64 inside the banned /56 was banned again: %s", got)
	}
	if got := ban64("2001:db8:1:200::/64"); got != "ban 2001:db8:1:200::/64" {
		t.Fatalf("first /64 of another /56: %s", got)
	}
	if got, want := ban64("2001:db8:1:201::/64"), "ban 2001:db8:1:201::/64, ban 2001:db8:1::/48, unban 2001:db8:1:100::/56, unban 2001:db8:1:200::/64, unban 2001:db8:1:201::/64"; got != want {
		t.Fatalf("third ban inside the /48:\n got %s\nwant %s", got, want)
	}
	if a := m.Active(0, true); len(a) != 1 || a[0].Prefix.String() != "2001:db8:1::/48" {
		t.Fatalf("active after the cascade: %+v", a)
	}
	for _, p := range []string{"2001:db8:ff:ff01::/64", "2001:db8:ff:ff02::/64", "2001:db8:ff:ff03::/64"} {
		if got := ban64(p); strings.Contains(got, "/56") || strings.Contains(got, "/48") {
			t.Fatalf("a network holding a protected address was aggregated: %s", got)
		}
	}
}

// Escalation counts only bans still in force: unbanned and expired ones inside the network do not
// count towards its rule, restored ones do.
func TestEscalationCountsBansInForce(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	pol := Policy{Name: "a", BanTime: time.Hour, Escalate: []Escalation{{V6: true, Bits: 48, Count: 3}}}
	m := New([]Policy{pol}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	ban := func(a string) (wide bool) {
		for _, d := range m.Decide([]window.Crossing{{Jail: 0, Addr: netip.MustParseAddr(a), Count: 5}}, nil) {
			wide = wide || d.Op == OpBan && d.Prefix.Bits() == 48
		}
		return wide
	}
	ban("2001:db8:1::1")
	ban("2001:db8:1::2")
	m.Unban(0, false, netip.MustParsePrefix("2001:db8:1::2/128"), "manual")
	if ban("2001:db8:1::3") {
		t.Fatal("an unbanned address counted towards the /48")
	}
	c.t = c.t.Add(2 * time.Hour)
	m.Expire(nil)
	ban("2001:db8:1::4")
	if ban("2001:db8:1::5") {
		t.Fatal("expired bans counted towards the /48")
	}
	if !ban("2001:db8:1::6") {
		t.Fatal("the third ban in force inside the /48 did not escalate")
	}

	m = New([]Policy{pol}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	end := c.t.Add(time.Hour).Unix()
	m.Restore([]Active{{Prefix: netip.MustParsePrefix("2001:db8:2::1/128"), End: end}, {Prefix: netip.MustParsePrefix("2001:db8:2::2/128"), End: end}}, nil)
	if !ban("2001:db8:2::3") {
		t.Fatal("restored bans did not count towards the /48")
	}
}

// A ban lifted by hand and made again later ends at its new time, not at the first ban's.
func TestExpireAfterUnbanAndReban(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := newManager(c)
	ds := m.Decide([]window.Crossing{cross(0, "198.51.100.9")}, nil)
	if len(ds) != 1 {
		t.Fatalf("first ban: %+v", ds)
	}
	firstEnd := ds[0].End
	p := netip.MustParsePrefix("198.51.100.9/32")
	if u := m.Unban(0, false, p, "manual"); len(u) != 1 {
		t.Fatalf("unban: %+v", u)
	}
	c.t = c.t.Add(300 * time.Second)
	ds = m.Decide([]window.Crossing{cross(0, "198.51.100.9")}, nil)
	if len(ds) != 1 || ds[0].End <= firstEnd {
		t.Fatalf("second ban %+v must end after %d", ds, firstEnd)
	}
	c.t = time.Unix(firstEnd, 0)
	if x := m.Expire(nil); len(x) != 0 {
		t.Fatalf("the second ban expired at the first one's end: %+v", x)
	}
	c.t = time.Unix(ds[0].End, 0)
	if x := m.Expire(nil); len(x) != 1 || x[0].Prefix != p || x[0].End != ds[0].End {
		t.Fatalf("expiry at the second ban's end: %+v", x)
	}
	if x := m.Expire(nil); len(x) != 0 || len(m.ends) != 0 {
		t.Fatalf("left behind: %+v, %d end entries", x, len(m.ends))
	}
}

// maxretry failures again during a ban prolong it as fail2ban's BanManager does: the ban then
// ends bantime after the crossing, when that is later; start and count stay. A permanent ban and
// an earlier end change nothing.
func TestProlongWhileBanned(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	m := New([]Policy{{Name: "sshd", BanTime: 30 * time.Second}, {Name: "forever", BanTime: -1}}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	if ds := m.Decide([]window.Crossing{cross(0, "203.0.113.1"), cross(1, "203.0.113.1")}, nil); len(ds) != 2 || ds[0].End != 1030 {
		t.Fatalf("first bans: %+v", ds)
	}
	c.t = time.Unix(1010, 0)
	ds := m.Decide([]window.Crossing{cross(0, "203.0.113.1"), cross(1, "203.0.113.1")}, nil)
	if len(ds) != 2 || ds[0].Op != OpUnban || ds[1].Op != OpBan || ds[1].Reason != Prolonged ||
		ds[1].Start != 1000 || ds[1].End != 1040 || ds[1].Count != 1 {
		t.Fatalf("prolong: %+v, want the ban lifted and made again from 1000 to 1040, count 1", ds)
	}
	if a := m.Active(0, false); len(a) != 1 || a[0].End != 1040 {
		t.Fatalf("active after prolong: %+v", a)
	}
	c.t = time.Unix(1005, 0) // a crossing read late: its end (1035) is earlier
	if ds := m.Decide([]window.Crossing{cross(0, "203.0.113.1")}, nil); len(ds) != 0 {
		t.Fatalf("an earlier end prolonged: %+v", ds)
	}
	c.t = time.Unix(1040, 0)
	if ds := m.Expire(nil); len(ds) != 1 || ds[0].End != 1040 {
		t.Fatalf("expiry after prolong: %+v", ds)
	}
	if got := m.Stats[0].Bans.Load(); got != 1 {
		t.Fatalf("bans counted %d, want 1: a prolong is no new ban", got)
	}
}

// With bantime.increment a failure of an address banned n times before counts 2^(n-1)+1 times, at
// most maxretry (fail2ban's observer, failureFound); failures at or before its last ban, of
// other addresses or in jails without increment count once.
func TestWeightsOfKnownOffenders(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	m := New([]Policy{{Name: "inc", BanTime: time.Second, MaxRetry: 5, Increment: Increment{Enabled: true}}, {Name: "plain", BanTime: time.Second, MaxRetry: 5}},
		Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	type ev struct {
		jail uint16
		addr string
		t    int64
	}
	weigh := func(evs ...ev) []uint8 {
		return m.Weights(len(evs), func(i int) (uint16, netip.Prefix, int64) {
			a := netip.MustParseAddr(evs[i].addr)
			return evs[i].jail, netip.PrefixFrom(a, a.BitLen()), evs[i].t
		}, nil)
	}
	if w := weigh(ev{0, "203.0.113.1", 1000}); len(w) != 0 {
		t.Fatalf("no history: weights %v", w)
	}
	for n, want := range []uint8{2, 3, 5, 5} {
		c.t = time.Unix(int64(1000+10*n), 0)
		m.Decide([]window.Crossing{cross(0, "203.0.113.1"), cross(1, "203.0.113.1")}, nil)
		at := c.t.Unix()
		w := weigh(ev{0, "203.0.113.1", at + 1}, ev{0, "203.0.113.1", at}, ev{0, "203.0.113.2", at + 1}, ev{1, "203.0.113.1", at + 1})
		if len(w) != 4 || w[0] != want || w[1] > 1 || w[2] > 1 || w[3] > 1 {
			t.Fatalf("after %d bans: weights %v, want [%d ≤1 ≤1 ≤1]", n+1, w, want)
		}
		c.t = c.t.Add(5 * time.Second)
		m.Expire(nil)
	}
}

// A recidive jail counts each new ban of the other jails once, at the ban's start: not a
// prolonged ban, not its own bans, not unbans.
func TestOffences(t *testing.T) {
	m := New([]Policy{{Name: "sshd", BanTime: time.Hour}, {Name: "recidive", Recidive: true, BanTime: time.Hour}},
		Options{SelfAddrs: []netip.Addr{}})
	p := netip.MustParsePrefix("203.0.113.1/32")
	ds := []Decision{
		{Op: OpBan, Jail: 0, Prefix: p, Start: 100, Reason: "failures"},
		{Op: OpBan, Jail: 0, Prefix: p, Start: 200, Reason: Prolonged},
		{Op: OpUnban, Jail: 0, Prefix: p, Start: 100, Reason: Expired},
		{Op: OpBan, Jail: 1, Prefix: p, Start: 300, Reason: "failures"},
	}
	got := m.Offences(ds, nil)
	if len(got) != 1 || got[0].Jail != 1 || got[0].Addr != p.Addr() || got[0].Time != 100 {
		t.Fatalf("offences %+v, want one for recidive at 100", got)
	}
	if none := New([]Policy{{Name: "sshd"}}, Options{SelfAddrs: []netip.Addr{}}).Offences(ds, nil); none != nil {
		t.Fatalf("no recidive jail, offences %+v", none)
	}
}

// Another node's longer ban extends one in force here as a prolongation the fleet decided (unban
// Prolonged, ban FleetProlonged), which the recidive jails do not count; a shorter or equal one,
// or a ban here that is permanent, is left alone.
func TestExtendTo(t *testing.T) {
	c := &clock{time.Unix(1_000_000, 0)}
	m := New([]Policy{{Name: "sshd", BanTime: time.Hour}, {Name: "recidive", Recidive: true, BanTime: time.Hour}}, Options{Now: c.now, SelfAddrs: []netip.Addr{}})
	a := netip.MustParseAddr("198.51.100.7")
	d, err := m.Ban(0, a)
	if err != nil {
		t.Fatal(err)
	}
	p := netip.PrefixFrom(a, 32)
	if ds := m.ExtendTo(0, p, d.End, nil); len(ds) != 0 {
		t.Fatalf("an equal end extended the ban: %+v", ds)
	}
	ds := m.ExtendTo(0, p, d.End+60, nil)
	if len(ds) != 2 || ds[0].Op != OpUnban || ds[0].Reason != Prolonged || ds[1].Op != OpBan || ds[1].Reason != FleetProlonged ||
		ds[1].End != d.End+60 || ds[1].Start != d.Start {
		t.Fatalf("extension: %+v", ds)
	}
	if offs := m.Offences(ds, nil); len(offs) != 0 {
		t.Fatalf("recidive counted an extension: %+v", offs)
	}
	if ds := m.ExtendTo(0, p, d.End+30, nil); len(ds) != 0 {
		t.Fatalf("a shorter end than the extended one changed the ban: %+v", ds)
	}
	m.Unban(0, false, p, "test")
	if ds := m.Import([]Active{{Jail: 0, Prefix: p, Start: c.t.Unix()}}, nil, nil, Fleet, nil); len(ds) != 1 || ds[0].End != 0 {
		t.Fatalf("the permanent fleet ban was not imported: %+v", ds)
	}
	if ds := m.ExtendTo(0, p, d.End+600, nil); len(ds) != 0 {
		t.Fatalf("a permanent ban was given an end: %+v", ds)
	}
}
