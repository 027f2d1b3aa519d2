package matcher

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/testconf"
)

// fixedNow is the clock of these tests: year inference puts "Nov 24" stamps in 2026.
var fixedNow = time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)

func shippedSSHD(t testing.TB) *config.Filter {
	t.Helper()
	f, errs := config.LoadFilter(filepath.Join(testconf.Shipped(), "filter.d"), "sshd", nil)
	if errs != nil {
		t.Fatal(errs)
	}
	return f
}

func newMatcher(t testing.TB, jails ...JailSpec) *Matcher {
	t.Helper()
	return newMatcherWith(t, Options{Now: func() time.Time { return fixedNow }, Location: time.UTC}, jails...)
}

// newMatcherWith compiles jails with opts; the matcher is closed when the test ends.
func newMatcherWith(t testing.TB, opts Options, jails ...JailSpec) *Matcher {
	t.Helper()
	m, err := New(jails, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// newWorker is a worker of m, closed when the test ends (before m, which newMatcher closes).
func newWorker(t testing.TB, m *Matcher) *Worker {
	t.Helper()
	w, err := m.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// jailSet is the set of the jails' ids.
func jailSet(jails []JailSpec) ingest.JailSet {
	var s ingest.JailSet
	for _, j := range jails {
		s = s.With(j.ID)
	}
	return s
}

// block builds a block of lines read by the given jails.
func block(jails ingest.JailSet, lines ...string) *ingest.Block {
	b := &ingest.Block{Source: &ingest.Source{Name: "test", Jails: jails}}
	for _, l := range lines {
		start := len(b.Buf)
		b.Buf = append(b.Buf, l...)
		b.Lines = append(b.Lines, ingest.Span{Start: uint32(start), End: uint32(len(b.Buf))})
		b.Buf = append(b.Buf, '\n')
	}
	return b
}

func match(t testing.TB, m *Matcher, b *ingest.Block) []Event {
	t.Helper()
	w, err := m.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	evs, err := w.Match(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestSSHDCatches(t *testing.T) {
	m := newMatcher(t, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(t)})
	for _, mode := range m.Modes(0) {
		if mode != Exact {
			t.Fatalf("shipped sshd regexes must compile exactly in Hyperscan, got modes %v", m.Modes(0))
		}
	}
	f := func(line, wantAddr string, wantRegex int) {
		t.Helper()
		evs := match(t, m, block(ingest.NewJailSet(0), line))
		if wantAddr == "" {
			if len(evs) != 0 {
				t.Fatalf("line %q: want no failure, got %+v", line, evs)
			}
			return
		}
		if len(evs) != 1 {
			t.Fatalf("line %q: want one failure from %s, got %+v", line, wantAddr, evs)
		}
		if got := evs[0].Addr.String(); got != wantAddr {
			t.Fatalf("line %q: address %s, want %s", line, got, wantAddr)
		}
		if int(evs[0].Regex) != wantRegex {
			t.Fatalf("line %q: regex %d, want %d", line, evs[0].Regex, wantRegex)
		}
		if want := time.Date(2026, 11, 24, 10, 1, 2, 0, time.UTC).Unix(); evs[0].Time != want {
			t.Fatalf("line %q: time %d, want %d", line, evs[0].Time, want)
		}
	}
	f("Nov 24 10:01:02 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 51234 ssh2", "203.0.113.7", 0)
	f("Nov 24 10:01:02 web1 sshd[1234]: Failed password for invalid user admin from 203.0.113.8 port 51234 ssh2", "203.0.113.8", 0)
	f("Nov 24 10:01:02 web1 sshd[1234]: Failed publickey for git from 2001:db8::42 port 40000 ssh2: RSA SHA256:abc", "", 0)
	f("Nov 24 10:01:02 web1 sshd[1234]: Failed publickey for git from 2001:db8::42 port 40000 ssh2", "2001:db8::42", 0)
	f("Nov 24 10:01:02 web1 sshd-session[1234]: Failed password for root from 198.51.100.1 port 22 ssh2", "198.51.100.1", 0)
	f("Nov 24 10:01:02 web1 sshd[1234]: Invalid user oracle from 203.0.113.9 port 40022", "203.0.113.9", 1)
	f("Nov 24 10:01:02 web1 sshd[1234]: Invalid user  from 2001:db8:1::9", "2001:db8:1::9", 1)
	f("Nov 24 10:01:02 web1 sshd[1234]: error: maximum authentication attempts exceeded for invalid user admin from 203.0.113.10 port 22 ssh2 [preauth]", "203.0.113.10", 2)
	f("Nov 24 10:01:02 web1 sshd[1234]: Disconnecting authenticating user root 203.0.113.11 port 22: Too many authentication failures [preauth]", "203.0.113.11", 3)
	f("Nov 24 10:01:02 web1 sshd[1234]: Connection closed by authenticating user root 203.0.113.12 port 50000 [preauth]", "203.0.113.12", 4)
	f("Nov 24 10:01:02 web1 sshd[1234]: Connection closed by invalid user test 2001:db8::12 port 50000 [preauth]", "2001:db8::12", 4)
	f("Nov 24 10:01:02 web1 sshd[1234]: User bob from 203.0.113.15 not allowed because not listed in AllowUsers", "203.0.113.15", 5)
	f("2026-11-24T10:01:02.123456+00:00 web1 sshd[1234]: Failed password for root from 203.0.113.16 port 1 ssh2", "203.0.113.16", 0)
	// Not failures. PAM's line repeats the first "Failed password" of its connection (mode extra).
	f("Nov 24 10:01:02 web1 sshd[1234]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.13  user=root", "", 0)
	f("Nov 24 10:01:02 web1 sshd[1234]: Accepted password for root from 203.0.113.7 port 51234 ssh2", "", 0)
	f("Nov 24 10:01:02 web1 sshd[1234]: Connection closed by 203.0.113.7 port 51234 [preauth]", "", 0)
	f("Nov 24 10:01:02 web1 CRON[99]: pam_unix(cron:session): session opened for user root", "", 0)
	f("Nov 24 10:01:02 web1 sudo[99]: Failed password for root from 203.0.113.7 port 51234 ssh2", "", 0)
}

// An attacker controls the user name; the address in it must never be the one taken.
func TestSSHDInjection(t *testing.T) {
	m := newMatcher(t, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(t)})
	lines := []string{
		"Nov 24 10:01:02 web1 sshd[1]: Failed password for invalid user x from 6.6.6.6 port 1 ssh2 from 203.0.113.77 port 22 ssh2",
		"Nov 24 10:01:02 web1 sshd[1]: Invalid user a from 6.6.6.6 from 203.0.113.77 port 40022",
		"Nov 24 10:01:02 web1 sshd[1]: Connection closed by authenticating user x 6.6.6.6 port 1 [preauth] 203.0.113.77 port 2 [preauth]",
		"Nov 24 10:01:02 web1 sshd[1]: User x from 6.6.6.6 not allowed because listed in X from 203.0.113.77 not allowed because not listed in AllowUsers",
	}
	for _, l := range lines {
		evs := match(t, m, block(ingest.NewJailSet(0), l))
		for _, ev := range evs {
			if ev.Addr.String() == "6.6.6.6" {
				t.Errorf("line %q: the injected address was taken", l)
			}
		}
	}
	// A user name ending in sshd's own tail, colon included: after "ssh2: " sshd writes only key
	// info, so the real address is the last one.
	for _, l := range []string{
		"Nov 24 10:01:02 web1 sshd[1]: Failed password for invalid user x from 6.6.6.6 port 22 ssh2: from 198.51.100.9 port 50021 ssh2",
		"Nov 24 10:01:02 web1 sshd[1]: Failed password for invalid user x from 6.6.6.6 port 22 ssh2: RSA SHA256:AAAA from 198.51.100.9 port 50021 ssh2",
		"Nov 24 10:01:02 web1 sshd[1]: Failed publickey for invalid user x from 6.6.6.6 port 22 ssh2: from 198.51.100.9 port 50021 ssh2: RSA SHA256:v3dpapGleDaUKf4V1vKyR9ZyUgjaJAmoCTcb2PLljI",
	} {
		evs := match(t, m, block(ingest.NewJailSet(0), l))
		if len(evs) != 1 || evs[0].Addr.String() != "198.51.100.9" {
			t.Errorf("line %q: events %+v, want one for sshd's own address 198.51.100.9", l, evs)
		}
	}
	// A message from another program carrying sshd-looking text is not sshd's.
	evs := match(t, m, block(ingest.NewJailSet(0), "Nov 24 10:01:02 web1 myapp[1]: got: sshd[1]: Failed password for root from 6.6.6.6 port 1 ssh2"))
	if len(evs) != 0 {
		t.Fatalf("text inside another program's message was taken as sshd's: %+v", evs)
	}
}

func TestJailsListenOnlyToTheirSources(t *testing.T) {
	other := &config.Filter{Name: "other", FailRegex: []config.Regex{{Text: `^\s*\S+ app: bad login from <HOST>$`}}}
	m := newMatcher(t, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(t)}, JailSpec{ID: 1, Name: "app", Filter: other})
	lines := []string{
		"Nov 24 10:01:02 web1 sshd[1]: Failed password for root from 203.0.113.1 port 1 ssh2",
		"Nov 24 10:01:02 web1 app: bad login from 203.0.113.2",
		"Nov 24 10:01:02 web1 app: good login from 203.0.113.3",
	}
	evs := match(t, m, block(ingest.NewJailSet(1), lines...))
	if len(evs) != 1 || evs[0].Jail != 1 || evs[0].Addr.String() != "203.0.113.2" || evs[0].Line != 1 {
		t.Fatalf("jail 1 only: got %+v", evs)
	}
	evs = match(t, m, block(ingest.NewJailSet(0, 1), lines...))
	if len(evs) != 2 || evs[0].Jail != 0 || evs[1].Jail != 1 {
		t.Fatalf("both jails: got %+v", evs)
	}
	if got := m.Stats[1].Matched.Load(); got != 2 {
		t.Fatalf("jail 1 matched %d lines, want 2", got)
	}
}

func TestIgnoreRegexAndNoDate(t *testing.T) {
	f := &config.Filter{Name: "x",
		FailRegex:   []config.Regex{{Text: `^\s*\S+ app: bad login for (?P<user>\S+) from <HOST>$`}},
		IgnoreRegex: []config.Regex{{Text: `for monitor `}}}
	m := newMatcher(t, JailSpec{ID: 0, Name: "x", Filter: f})
	evs := match(t, m, block(ingest.NewJailSet(0),
		"Nov 24 10:01:02 h app: bad login for monitor from 203.0.113.1",
		"h app: bad login for bob from 203.0.113.2",
		"Nov 24 10:01:02 h app: bad login for bob from 999.1.1.1",
		"Nov 24 10:01:02 h app: bad login for bob from 203.0.113.3",
	))
	if len(evs) != 1 || evs[0].Addr.String() != "203.0.113.3" {
		t.Fatalf("got %+v", evs)
	}
	s := &m.Stats[0]
	if s.Ignored.Load() != 1 || s.NoDate.Load() != 1 || s.BadAddr.Load() != 1 || s.Matched.Load() != 1 {
		t.Fatalf("stats ignored=%d nodate=%d badaddr=%d matched=%d; want 1 each", s.Ignored.Load(), s.NoDate.Load(), s.BadAddr.Load(), s.Matched.Load())
	}
}

// A regex Hyperscan cannot take runs through Go regexp alone; a regex nobody can compile is an error
// naming the filter and the regex index, never a crash.
func TestHyperscanFallbackAndErrors(t *testing.T) {
	// Hyperscan refuses patterns that can match the empty string; Go takes it.
	f := &config.Filter{Name: "odd",
		FailRegex:   []config.Regex{{Text: `^\s*\S+ app: denied <HOST>$`}},
		IgnoreRegex: []config.Regex{{Text: `(?:trusted)?`}}}
	m := newMatcher(t, JailSpec{ID: 0, Name: "odd", Filter: f})
	if len(m.Warnings) == 0 {
		t.Fatal("want a warning about the regex Hyperscan could not take")
	}
	// The empty-matching ignoreregex ignores every line, as Python would.
	evs := match(t, m, block(ingest.NewJailSet(0), "Nov 24 10:01:02 h app: denied 203.0.113.1"))
	if len(evs) != 0 {
		t.Fatalf("got %+v", evs)
	}
	f2 := &config.Filter{Name: "odd2", FailRegex: []config.Regex{{Text: `^\s*\S+ app: denied (?:x{0,3})?<HOST>$`}}}
	m2 := newMatcher(t, JailSpec{ID: 0, Name: "odd2", Filter: f2})
	if evs := match(t, m2, block(ingest.NewJailSet(0), "Nov 24 10:01:02 h app: denied 203.0.113.1")); len(evs) != 1 {
		t.Fatalf("got %+v", evs)
	}

	bad := &config.Filter{Name: "py", File: "filter.d/py.conf", FailRegex: []config.Regex{
		{Text: `^ok <HOST>$`, File: "filter.d/py.conf", Line: 3},
		{Text: `^bad (<HOST>$`, File: "filter.d/py.conf", Line: 4},
		{Text: `^no address here$`, File: "filter.d/py.conf", Line: 5},
	}}
	_, err := New([]JailSpec{{ID: 0, Name: "j", Filter: bad}}, Options{})
	if err == nil {
		t.Fatal("want an error")
	}
	// An address tag used twice is a duplicate group name, which Python refuses: an error, not a
	// regex whose second address can never be read.
	twice := &config.Filter{Name: "twice", File: "filter.d/twice.conf", FailRegex: []config.Regex{
		{Text: `^x (?:\[<HOST>\]|<HOST>)$`, File: "filter.d/twice.conf", Line: 7},
		{Text: `^y <F-USER>\S+</F-USER> <F-USER>\S+</F-USER> <HOST>$`, File: "filter.d/twice.conf", Line: 8},
	}}
	_, terr := New([]JailSpec{{ID: 0, Name: "j", Filter: twice}}, Options{})
	for _, want := range []string{`filter.d/twice.conf:7: jail j, filter twice: failregex[0]: group "ip4" is defined twice`, `filter.d/twice.conf:8: jail j, filter twice: failregex[1]: group "user" is defined twice`} {
		if terr == nil || !strings.Contains(terr.Error(), want) {
			t.Errorf("error %v lacks %q", terr, want)
		}
	}
	for _, want := range []string{"filter.d/py.conf:4: jail j, filter py: failregex[1]: neither Go regexp", "filter.d/py.conf:5: jail j, filter py: failregex[2]: has no <HOST>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// Hits that end in a skipped (over-long or binary) line or across lines never produce events for
// the wrong line.
func TestHitsMapToTheirLine(t *testing.T) {
	m := newMatcher(t, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(t)})
	good := "Nov 24 10:01:02 web1 sshd[1]: Failed password for root from 203.0.113.1 port 1 ssh2"
	skipped := "Nov 24 10:01:02 web1 sshd[1]: Failed password for root from 203.0.113.2 port 1 ssh2"
	b := block(ingest.NewJailSet(0), good)
	// Append a line that is in Buf but has no span (as the splitter does for skipped lines).
	b.Buf = append(b.Buf, skipped...)
	b.Buf = append(b.Buf, '\n')
	start := len(b.Buf)
	b.Buf = append(b.Buf, good...)
	b.Lines = append(b.Lines, ingest.Span{Start: uint32(start), End: uint32(len(b.Buf))})
	b.Buf = append(b.Buf, '\n')
	evs := match(t, m, b)
	if len(evs) != 2 || evs[0].Line != 0 || evs[1].Line != 1 {
		t.Fatalf("got %+v", evs)
	}
	for _, ev := range evs {
		if ev.Addr == netip.MustParseAddr("203.0.113.2") {
			t.Fatal("a skipped line produced an event")
		}
	}
}

// fail2ban filters are Python regexes: lookarounds, back-references and conditionals run through
// Hyperscan's prefilter mode and are confirmed by regexp2; prefregex hands its <F-CONTENT> to the
// failregexes; <F-NOFAIL> helpers are not failures; captures carry fail2ban's names.
func TestPythonDialect(t *testing.T) {
	f := &config.Filter{Name: "py",
		PrefRegex: &config.Regex{Text: `^\s*\S+ (?P<daemon>app|web)\[\d+\]: <F-CONTENT>.+</F-CONTENT>$`},
		FailRegex: []config.Regex{
			{Text: `^(?<!good )login failed for <F-USER>\S+</F-USER> from <HOST>$`},
			{Text: `^tok (?P<t>\w+) as (?P=t) by <ADDR>$`},
			{Text: `^(?P<q>")?quoted(?(q)"|) from <IP4>$`},
			{Text: `^<F-NOFAIL>session opened</F-NOFAIL> for <HOST>$`},
			{Text: `^bad id <F-ID>\S+</F-ID>$`},
		},
		IgnoreRegex: []config.Regex{{Text: `from 203\.0\.113\.99$`}},
	}
	m := newMatcher(t, JailSpec{ID: 0, Name: "py", Filter: f})
	modes := m.Modes(0)
	// The lookbehind of the first lies before the literal Hyperscan scans for ("login failed
	// for "), so Hyperscan takes that exactly; the confirming regex still applies it. The second
	// has no literal of 5 letters and digits to scan for alone: its back-reference goes to
	// Hyperscan, prefiltered. The third's conditional stays out of its literal ("quoted").
	if modes[0] != Exact || modes[1] != Prefilter || modes[2] != Exact || modes[3] != Exact {
		t.Fatalf("modes %v", modes)
	}
	w := newWorker(t, m)
	f2 := func(line string, want Result) {
		t.Helper()
		got, err := w.Explain(0, []byte("Nov 24 10:01:02"+line))
		if err != nil {
			t.Fatal(err)
		}
		if got.Matched != want.Matched || got.NoFail != want.NoFail || got.Ignored != want.Ignored || (want.Matched && (got.Regex != want.Regex || got.ID != want.ID)) {
			t.Fatalf("%q: got %+v, want %+v", line, got, want)
		}
		for k, v := range want.Fields {
			if got.Fields[k] != v {
				t.Fatalf("%q: field %s = %q, want %q (fields %v)", line, k, got.Fields[k], v, got.Fields)
			}
		}
	}
	f2(" h app[1]: login failed for bob from 203.0.113.1", Result{Matched: true, Regex: 0, ID: "203.0.113.1", Fields: map[string]string{"user": "bob", "ip4": "203.0.113.1", "daemon": "app"}})
	f2(" h app[1]: good login failed for bob from 203.0.113.1", Result{})
	f2(" h cron[1]: login failed for bob from 203.0.113.1", Result{}) // prefregex gates it
	f2(" h web[1]: login failed for bob from host.example.org", Result{Matched: true, Regex: 0, ID: "host.example.org", Fields: map[string]string{"dns": "host.example.org"}})
	f2(" h app[1]: login failed for bob from ::ffff:203.0.113.2", Result{Matched: true, Regex: 0, ID: "203.0.113.2"})
	f2(" h app[1]: login failed for bob from [2001:db8::2]", Result{Matched: true, Regex: 0, ID: "2001:db8::2"})
	f2(" h app[1]: tok abc as abc by 2001:db8::3", Result{Matched: true, Regex: 1, ID: "2001:db8::3"})
	f2(" h app[1]: tok abc as abd by 2001:db8::3", Result{})
	f2(` h app[1]: "quoted" from 203.0.113.4`, Result{Matched: true, Regex: 2, ID: "203.0.113.4"})
	f2(` h app[1]: "quoted from 203.0.113.4`, Result{})
	f2(" h app[1]: session opened for 203.0.113.5", Result{NoFail: true})
	f2(" h app[1]: bad id session-42", Result{Matched: true, Regex: 4, ID: "session-42"})
	f2(" h app[1]: login failed for bob from 203.0.113.99", Result{Ignored: true})

	// In blocks, only failures with an IP address become events; a name or an F-ID is counted.
	evs := match(t, m, block(ingest.NewJailSet(0),
		"Nov 24 10:01:02 h app[1]: login failed for bob from 203.0.113.1",
		"Nov 24 10:01:02 h app[1]: session opened for 203.0.113.5",
		"Nov 24 10:01:02 h web[1]: login failed for bob from host.example.org",
		"Nov 24 10:01:02 h app[1]: tok x as x by 2001:db8::3",
	))
	if len(evs) != 2 || evs[0].Addr.String() != "203.0.113.1" || evs[1].Addr.String() != "2001:db8::3" {
		t.Fatalf("events %+v", evs)
	}
}

// Explain reports other failregexes that would also count the line (fail2ban's samples require
// exactly one).
func TestExplainCountsOtherMatches(t *testing.T) {
	f := &config.Filter{Name: "dup", FailRegex: []config.Regex{
		{Text: `^\s*\S+ app: login failed from <HOST>$`},
		{Text: `failed from <HOST>$`},
		{Text: `^<F-NOFAIL>\s*\S+ app: login</F-NOFAIL> failed from <HOST>$`},
	}}
	m := newMatcher(t, JailSpec{ID: 0, Name: "dup", Filter: f})
	w := newWorker(t, m)
	res, err := w.Explain(0, []byte("Nov 24 10:01:02 h app: login failed from 203.0.113.1"))
	if err != nil || !res.Matched || res.Regex != 0 || res.Others != 1 {
		t.Fatalf("got %+v, %v; want regex 0 with one other (the nofail helper does not count)", res, err)
	}
}

// Per-jail usedns = no keeps host names out of <HOST>; per-jail logtimezone dates the stamps.
func TestPerJailDNSAndZone(t *testing.T) {
	f := &config.Filter{Name: "x", FailRegex: []config.Regex{{Text: `^\s*\S+ app: denied <HOST>$`}}}
	ist := time.FixedZone("IST", 5*3600+1800)
	m := newMatcher(t, JailSpec{ID: 0, Name: "names", Filter: f}, JailSpec{ID: 1, Name: "nonames", Filter: f, NoDNS: true, Location: ist})
	w := newWorker(t, m)
	line := []byte("Nov 24 10:01:02 h app: denied bad.example.org")
	r0, _ := w.Explain(0, line)
	r1, _ := w.Explain(1, line)
	if !r0.Matched || r0.ID != "bad.example.org" || r1.Matched {
		t.Fatalf("usedns: with names %+v, without %+v", r0, r1)
	}
	ip := []byte("Nov 24 10:01:02 h app: denied 203.0.113.1")
	r0, _ = w.Explain(0, ip)
	r1, _ = w.Explain(1, ip)
	if d := r0.Time.Sub(r1.Time); d != 5*time.Hour+30*time.Minute {
		t.Fatalf("logtimezone: UTC stamp %v, IST stamp %v, difference %v", r0.Time, r1.Time, d)
	}
}

// The multi-line cache is bounded: connections not seen for a generation are dropped, and a
// connection seen again survives while the ones around it go; an expired one reads as new.
func TestMultiLineCacheEviction(t *testing.T) {
	s := newMLState()
	ip := func() *fieldList { return &fieldList{{"ip4", "192.0.2.1"}} }
	seen := func(id string) bool { _, e, _ := s.lookup(id, 0); return e != nil }
	for i := range mlGeneration {
		s.merge(fmt.Sprint("a", i), ip(), 0, false)
	}
	for i := range mlGeneration {
		s.merge(fmt.Sprint("b", i), ip(), 0, false)
		if i == 10 {
			s.merge("a0", ip(), 0, false) // a0 is seen again in b's generation
		}
	}
	if n := s.len(); n > mlMaxEntries {
		t.Fatalf("%d entries, more than %d", n, mlMaxEntries)
	}
	s.merge("c0", ip(), 0, false) // a new generation: the a's not seen since go
	if n := s.len(); n > mlMaxEntries || n < mlGeneration {
		t.Fatalf("%d entries after a new generation", n)
	}
	if seen("a1") || seen(fmt.Sprint("a", mlGeneration-1)) {
		t.Fatal("a connection not seen for a generation survived")
	}
	for _, id := range []string{"a0", "b0", fmt.Sprint("b", mlGeneration-1), "c0"} {
		if !seen(id) {
			t.Fatalf("%s was dropped", id)
		}
	}
	if _, e, _ := s.lookup("c0", mlMaxAge+1); e != nil {
		t.Fatal("an expired connection was found")
	}
	if seen("c0") {
		t.Fatal("an expired connection was kept")
	}
}

// altBase names the group an alternate fills exactly as fail2ban's ^alt_(.*?)(?:_\d+)?$ does.
func TestAltBase(t *testing.T) {
	re := regexp.MustCompile(`^alt_(.*?)(?:_\d+)?$`)
	for _, n := range []string{"alt_user", "alt_user_2", "alt_user_12", "alt_a_1_2", "alt_user_", "alt_12", "alt__3", "alt_", "alt_x_y", "alt_x_2y"} {
		if want := re.FindStringSubmatch(n)[1]; altBase(n) != want {
			t.Errorf("altBase(%q) = %q, want %q", n, altBase(n), want)
		}
	}
	f := mergeAltList(fieldList{{"alt_user_2", "b"}, {"user", ""}, {"alt_user", "a"}, {"ip4", "192.0.2.1"}})
	if f.val("user") != "a" {
		t.Fatalf("merged %v: the first alternate in name order fills user", f)
	}
}

// A helper line that ends a connection (<F-NOFAIL> with <F-MLFFORGET>) forgets a connection it
// knows and leaves nothing for one it does not (the shortcut that skips the merge then); Explain
// still describes such a line.
func TestMultiLineHelperEndsConnection(t *testing.T) {
	f := &config.Filter{Name: "ml",
		PrefRegex: &config.Regex{Text: `^\s*\S+ sshd\[<F-MLFID>\d+</F-MLFID>\]: <F-CONTENT>.+</F-CONTENT>$`},
		FailRegex: []config.Regex{
			{Text: `^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>$`},
			{Text: `^Failed password for \S+$`},
			{Text: `^<F-NOFAIL><F-MLFFORGET>Disconnected</F-MLFFORGET></F-NOFAIL>$`},
		}}
	m := newMatcher(t, JailSpec{ID: 0, Name: "ml", Filter: f})
	w := newWorker(t, m)
	l := func(pid int, msg string) string { return fmt.Sprintf("Nov 24 10:01:02 h sshd[%d]: %s", pid, msg) }
	evs, err := w.Match(block(ingest.NewJailSet(0),
		l(2, "Disconnected"), // never seen: nothing
		l(1, "Connection from 192.0.2.1"),
		l(1, "Failed password for root"), // the host from the connection line
		l(1, "Disconnected"),             // forgets pid 1
		l(1, "Failed password for root"), // no host any more: pending, no event
		l(3, "Connection from 192.0.2.3"),
		l(3, "Disconnected"),
		l(3, "Failed password for admin"),
	), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Addr != netip.MustParseAddr("192.0.2.1") || evs[0].Line != 2 {
		t.Fatalf("events %+v, want one for 192.0.2.1 on line 2", evs)
	}
	res, err := w.Explain(0, []byte(l(4, "Disconnected")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Regex != 2 || res.Matched || !res.Pending && !res.NoFail {
		t.Fatalf("Explain of a disconnect of an unknown connection: %+v", res)
	}
}

// Lines whose candidates all end a connection as helpers wait for their connection id and are
// skipped when it is unknown (planDeferred). That must change nothing: fail2ban's sshd.conf over
// a stream of interleaved connections, cut into blocks of every size, gives the same failures,
// details and cache as the same matcher with deferral turned off.
func TestDeferredHelpersChangeNothing(t *testing.T) {
	needCorpus(t)
	f, errs := config.LoadFilter(f2bcorpus.FilterDir(), "sshd", nil)
	if errs != nil {
		t.Fatal(errs)
	}
	msgs := []string{
		"Connection from %[1]s port %[2]d on 10.0.0.1 port 22",
		"Failed password for invalid user %[3]s from %[1]s port %[2]d ssh2",
		"Failed password for %[3]s from %[1]s port %[2]d ssh2",
		"Invalid user %[3]s from %[1]s port %[2]d",
		"Connection closed by authenticating user %[3]s %[1]s port %[2]d [preauth]",
		"Connection closed by %[1]s port %[2]d [preauth]",
		"Disconnected from user %[3]s %[1]s port %[2]d",
		"Received disconnect from %[1]s port %[2]d:11: Bye Bye [preauth]",
		"Accepted publickey for %[3]s from %[1]s port %[2]d ssh2: ED25519 SHA256:abc",
		"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%[1]s  user=%[3]s",
		"Disconnecting: Too many authentication failures [preauth]",
	}
	// A few dozen connections live at a time, each of many lines, or a few hundred of a few
	// lines each; a line a second, so connections also expire (mlMaxAge).
	stream := func(seed uint64, conns int) []string {
		rnd := rand.New(rand.NewPCG(seed, seed))
		var lines []string
		for i := range 3000 {
			pid := 100 + rnd.IntN(conns)
			ip := fmt.Sprintf("192.0.2.%d", pid%250)
			user := []string{"root", "admin", "deploy"}[rnd.IntN(3)]
			msg := fmt.Sprintf(msgs[rnd.IntN(len(msgs))], ip, 1000+pid, user)
			lines = append(lines, fmt.Sprintf("Nov 24 %02d:%02d:%02d h sshd[%d]: %s", 10+i/3600, i/60%60, i%60, pid, msg))
		}
		return lines
	}
	type outcome struct {
		events  []Event
		details []Result
		cached  int
	}
	run := func(lines []string, deferral bool, size int) outcome {
		m := newMatcher(t, JailSpec{ID: 0, Name: "sshd", Filter: f})
		if !m.jails[0].canDefer {
			t.Fatal("fail2ban's sshd.conf should allow deferral")
		}
		m.jails[0].canDefer = deferral
		w := newWorker(t, m)
		w.Collect = true
		var o outcome
		for at := 0; at < len(lines); at += size {
			w.Details = w.Details[:0]
			evs, err := w.Match(block(ingest.NewJailSet(0), lines[at:min(at+size, len(lines))]...), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				ev.Line += uint32(at)
				o.events = append(o.events, ev)
			}
			for _, d := range w.Details {
				d.Line += uint32(at)
				o.details = append(o.details, d)
			}
		}
		o.cached = m.jails[0].ml.len()
		return o
	}
	for _, c := range []struct {
		seed  uint64
		conns int
	}{{7, 40}, {8, 40}, {9, 400}} {
		lines := stream(c.seed, c.conns)
		want := run(lines, false, len(lines))
		if len(want.events) < 100 {
			t.Fatalf("only %d failures: the stream does not exercise the merge", len(want.events))
		}
		for _, size := range []int{1, 2, 7, 64, 500, len(lines)} {
			got := run(lines, true, size)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("seed %d, %d connections, blocks of %d lines: %d events, %d details, %d cached; without deferral %d, %d, %d",
					c.seed, c.conns, size, len(got.events), len(got.details), got.cached, len(want.events), len(want.details), want.cached)
			}
		}
	}
}

// keySet: what was added this block is there, what was added in an earlier block is not, across
// a growth and a wrap of its generation count.
func TestKeySet(t *testing.T) {
	var s keySet
	s.reset(10)
	for k := uint64(0); k < 10; k++ {
		s.add(k * 1024)
	}
	for k := uint64(0); k < 10; k++ {
		if !s.has(k*1024) || s.has(k*1024+1) {
			t.Fatalf("key %d after one block", k*1024)
		}
	}
	for round := 0; round < 3; round++ {
		if round == 1 {
			s.gen = ^uint32(0) // the next reset wraps the count
		}
		s.reset(5000) // grows at round 0
		if s.has(0) || s.has(9*1024) || s.has(5000) {
			t.Fatalf("round %d: a key of an earlier block is still there", round)
		}
		for k := uint64(1); k <= 5000; k++ {
			s.add(k)
		}
		if !s.has(1) || !s.has(5000) || s.has(5001) {
			t.Fatalf("round %d: wrong members", round)
		}
		s.add(0)
		s.add(9 * 1024)
	}
	// A wrapped count must not read the slots never stamped (0) as this block's: key 0 lives there.
	var fresh keySet
	fresh.reset(10)
	fresh.gen = ^uint32(0)
	fresh.reset(10)
	if fresh.has(0) {
		t.Fatal("after the generation count wrapped, an empty set holds key 0")
	}
}

// sshd reuses PIDs: with fail2ban's sshd.conf (<F-MLFID> = the PID), a new connection under a
// PID an earlier client used is another connection. Its failure is reported for the address its
// line names, never the earlier client's, and its closing line inherits no pending state.
func TestMultiLineReusedConnectionID(t *testing.T) {
	needCorpus(t)
	f, errs := config.LoadFilter(f2bcorpus.FilterDir(), "sshd", nil)
	if errs != nil {
		t.Fatal(errs)
	}
	m := newMatcher(t, JailSpec{ID: 0, Name: "sshd", Filter: f})
	w := newWorker(t, m)
	l := func(sec, pid int, msg string) string {
		return fmt.Sprintf("Nov 24 10:01:%02d h sshd[%d]: %s", sec, pid, msg)
	}
	evs, err := w.Match(block(ingest.NewJailSet(0),
		l(1, 100, "Connection from 192.0.2.1 port 4000 on 10.0.0.1 port 22 rdomain \"\""),
		l(2, 100, "Failed password for invalid user admin from 192.0.2.1 port 4000 ssh2"),
		l(21, 100, "Invalid user ubuntu from 2001:db8::5 port 35064"),
		l(22, 100, "Connection closed by invalid user ubuntu 2001:db8::5 port 35064 [preauth]"),
	), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, fmt.Sprintf("%d:%s", ev.Line, ev.Addr))
	}
	for _, g := range got {
		if strings.HasPrefix(g, "2:") || strings.HasPrefix(g, "3:") {
			if !strings.HasSuffix(g, ":2001:db8::5") {
				t.Fatalf("events %v: a line of the new connection was reported for another address", got)
			}
		}
	}
	if len(got) == 0 || got[0] != "1:192.0.2.1" || !slices.Contains(got, "2:2001:db8::5") {
		t.Fatalf("events %v, want 192.0.2.1 on line 1 and 2001:db8::5 on line 2", got)
	}
}
