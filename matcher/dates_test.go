package matcher

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
)

func TestParseDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	f := func(line string, want time.Time, wantRest string) {
		t.Helper()
		got, off, ok := parseDate([]byte(line), now, time.UTC)
		if want.IsZero() {
			if ok {
				t.Fatalf("%q: want no date, got %v", line, got)
			}
			return
		}
		if !ok || !got.Equal(want) {
			t.Fatalf("%q: got %v (ok=%v), want %v", line, got, ok, want)
		}
		if rest := line[off:]; rest != wantRest {
			t.Fatalf("%q: rest %q, want %q", line, rest, wantRest)
		}
	}
	// Year inference: "Dec 31" seen just after new year belongs to the previous year.
	f("Dec 31 23:59:59 host x: y", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), " host x: y")
	f("Jan  1 00:10:00 host x", time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC), " host x")
	// Up to a day ahead stays in this year (clock skew between hosts).
	f("Jan  1 20:00:00 host x", time.Date(2026, 1, 1, 20, 0, 0, 0, time.UTC), " host x")
	f("Jan  2 01:00:00 host x", time.Date(2025, 1, 2, 1, 0, 0, 0, time.UTC), " host x")
	f("jan 01 00:10:00.250 h", time.Date(2026, 1, 1, 0, 10, 0, 250e6, time.UTC), " h")
	f("Jan  1 00:10:00 2024 h", time.Date(2024, 1, 1, 0, 10, 0, 0, time.UTC), " h")
	f("2025-06-30T12:00:01.5+02:00 h", time.Date(2025, 6, 30, 10, 0, 1, 5e8, time.UTC), " h")
	f("2025-06-30 12:00:01,123 h", time.Date(2025, 6, 30, 12, 0, 1, 123e6, time.UTC), " h")
	f("2025-06-30T12:00:01Z h", time.Date(2025, 6, 30, 12, 0, 1, 0, time.UTC), " h")
	f("  Feb 28 10:00:00 h", time.Date(2025, 2, 28, 10, 0, 0, 0, time.UTC), " h")
	f("Foo 28 10:00:00 h", time.Time{}, "")
	f("Feb 28 25:00:00 h", time.Time{}, "")
	f("2025-13-30T12:00:01Z h", time.Time{}, "")
	f("host sshd[1]: nothing", time.Time{}, "")
	f("", time.Time{}, "")
}

func TestParseDateAllocatesNothing(t *testing.T) {
	line := []byte("2025-06-30T12:00:01.5+02:00 h sshd[1]: x")
	line2 := []byte("Jun 30 12:00:01 h sshd[1]: x")
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		parseDate(line, now, time.UTC)
		parseDate(line2, now, time.UTC)
	}); n != 0 {
		t.Fatalf("parseDate allocates %v times per call", n)
	}
}

// The worker's stamp cache answers exactly as the templates do: for a repeated stamp, and not for
// lines whose first 15 bytes are not the whole stamp (a year or a fraction after it, a blank
// before it), another zone or another "now".
func TestStampCacheAgreesWithTemplates(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	f := &config.Filter{Name: "x", FailRegex: []config.Regex{{Text: `^\S+ x: <HOST>$`}}}
	m := newMatcher(t, JailSpec{ID: 0, Name: "utc", Filter: f}, JailSpec{ID: 1, Name: "berlin", Filter: f, Location: berlin})
	w := newWorker(t, m)
	lines := []string{
		"Mar  1 10:00:00 h x: 192.0.2.1",
		"Mar  1 10:00:00 h x: 192.0.2.2",
		"Mar  1 10:00:00 2025 h x: 192.0.2.3",
		"Mar  1 10:00:00.250 h x: 192.0.2.4",
		" Mar  1 10:00:00 h x: 192.0.2.5",
		"Mar  1 10:00:00 h x: 192.0.2.6",
		"Dec 31 23:59:59 h x: 192.0.2.7", // a year back from March
		"Mar  1 10:00:01 h x: 192.0.2.8",
		"Mar  1 10:00:00 h x: 192.0.2.9", // as the first: the next jail, or "now", starts cached
	}
	for _, now := range []time.Time{fixedNow, fixedNow.Add(-300 * 24 * time.Hour)} {
		for _, jail := range []int{0, 1, 0} {
			jr := &m.jails[jail]
			for _, l := range lines {
				gotT, gotText, gotOK := w.dateOf(jr, []byte(l), now)
				wantT, start, end, wantOK, _ := jr.dates.find([]byte(l), now, jr.loc)
				wantText := l[:start] + l[end:]
				if gotOK != wantOK || !gotT.Equal(wantT) || string(gotText) != wantText {
					t.Errorf("jail %s, now %v, %q: got %v %q %v, want %v %q %v", jr.name, now, l, gotT, gotText, gotOK, wantT, wantText, wantOK)
				}
			}
		}
	}
}

// The default templates are compiled when a line first needs them (dateDetector.all): they must
// compile, and a line only they can read must find its date through a fresh detector.
func TestDefaultTemplatesCompileWhenNeeded(t *testing.T) {
	for _, p := range []string{"", "{^LN-BEG}"} {
		d, err := newDateDetector(p)
		if err != nil {
			t.Fatal(err)
		}
		if d.templates != nil {
			t.Fatalf("%q: templates compiled at start", p)
		}
		line := []byte("@4000000063a29e0d1c4a2ba4 sshd[1]: x") // TAI64N: no fast path
		if _, start, end, ok, _ := d.find(line, fixedNow, time.UTC); !ok || start != 0 || end != 25 {
			t.Fatalf("%q: TAI64N stamp found %v at %d-%d", p, ok, start, end)
		}
		if n := len(d.all()); n < 15 {
			t.Fatalf("%q: %d templates", p, n)
		}
	}
}

// A wall clock the autumn DST change makes occur twice is read as its first occurrence, as
// fail2ban reads it; the rest of that night is unambiguous.
func TestAmbiguousWallClockIsTheFirst(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	now := time.Date(2026, 10, 26, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct{ stamp, utc string }{
		{"Oct 25 01:59:59", "2026-10-24T23:59:59Z"},
		{"Oct 25 02:30:00", "2026-10-25T00:30:00Z"}, // CEST: the first 02:30
		{"Oct 25 03:00:00", "2026-10-25T02:00:00Z"},
		{"Mar 29 03:30:00", "2026-03-29T01:30:00Z"},
	} {
		got, _, ok := parseDate([]byte(c.stamp+" host sshd[1]: x"), now, berlin)
		if !ok || got.UTC().Format(time.RFC3339) != c.utc {
			t.Errorf("%s in Berlin: %v (%v), want %s", c.stamp, got.UTC(), ok, c.utc)
		}
	}
}
