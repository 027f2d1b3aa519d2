package matcher

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
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
	for _, name := range []string{"sshd", "postfix", "dovecot"} {
		data, err := os.ReadFile(filepath.Join(ownSamples, name+".log"))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				f.Add([]byte(line))
			}
		}
	}
	var specs []JailSpec
	for i, name := range []string{"sshd", "postfix", "dovecot"} {
		flt, errs := config.LoadFilter(ownFilterDir, name, nil)
		if errs != nil {
			f.Fatal(errs)
		}
		specs = append(specs, JailSpec{ID: i, Name: name, Filter: flt})
	}
	m := newMatcher(f, specs...)
	w, err := m.NewWorker()
	if err != nil {
		f.Fatal(err)
	}
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
