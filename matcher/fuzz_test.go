package matcher

import (
	"testing"
	"time"
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
