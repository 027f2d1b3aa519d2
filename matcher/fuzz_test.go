package matcher

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/ingest"
)

// FuzzParseDate: never panics, never reads past the line, and a found stamp is a sane time.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Nov 24 10:01:02 h", "2025-06-30T12:00:01.5+02:00 h", "Jan  1 00:00:00 2024", "2025-06-30 12:00:01,", "Feb 30 99:99:99", "2025-01-01T00:00:00+"} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line []byte) {
		ts, off, ok := parseDate(line, now, time.UTC)
		if !ok {
			return
		}
		if off <= 0 || off > len(line) {
			t.Fatalf("offset %d outside line of %d bytes", off, len(line))
		}
		if ts.Year() < 1 || ts.Year() > 10000 {
			t.Fatalf("implausible year %d", ts.Year())
		}
	})
}

// FuzzPCREAgreesWithGo feeds lines through Match (PCRE2 batches the confirmations) with our sshd,
// postfix and dovecot filters loaded, and holds every PCRE2 answer to Go's regexp.
func FuzzPCREAgreesWithGo(f *testing.F) {
	var specs []JailSpec
	for i, name := range []string{"sshd", "postfix", "dovecot"} {
		addSamples(f, name)
		specs = append(specs, JailSpec{ID: i, Name: name, Filter: ownFilter(f, name)})
	}
	w := newWorker(f, newMatcher(f, specs...))
	var differ string
	crossCheck = func(r *rx, text []byte, matched bool, c *captures) {
		if why := disagreement(r, text, matched, c); why != "" && differ == "" {
			differ = fmt.Sprintf("%s: %s on %q", why, r.expr, text)
		}
	}
	f.Cleanup(func() { crossCheck = nil })
	all := ingest.NewJailSet(0, 1, 2)
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.ContainsAny(line, "\n\r") {
			return
		}
		differ = ""
		if _, err := w.Match(block(all, string(line)), nil); err != nil {
			t.Fatal(err)
		}
		if differ != "" {
			t.Fatal(differ)
		}
	})
}

// FuzzScanMissesNothing holds Hyperscan's scan forms (hsExpr: a regex's rarest literal, or the
// regex from its first strong literal on) to being supersets: every jail of our library reads each
// line through Match, where only the regexes Hyperscan reports are tried, and through slowLine,
// where every regex is, on a second matcher; the failures found must be the same. The seeds are
// every sample line of every filter, so `go test` runs them all.
func FuzzScanMissesNothing(f *testing.F) {
	specs := librarySpecs(f)
	for _, s := range specs {
		addSamples(f, s.Name)
	}
	ws, we := newWorker(f, newMatcher(f, specs...)), newWorker(f, newMatcher(f, specs...))
	all := jailSet(specs)
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.ContainsAny(line, "\n\r") {
			return
		}
		got, err := ws.Match(block(all, string(line)), nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []Event
		for _, s := range specs {
			want = we.slowLine(s.ID, line, 0, fixedNow, time.Time{}, want, nil)
		}
		key := func(evs []Event) []string {
			var out []string
			for _, e := range evs {
				out = append(out, fmt.Sprintf("%s[%d] %s", specs[e.Jail].Name, e.Regex, e.Addr))
			}
			slices.Sort(out)
			return out
		}
		if g, w := key(got), key(want); !slices.Equal(g, w) {
			t.Fatalf("%q: through the scan %v, trying every regex %v", line, g, w)
		}
	})
}
