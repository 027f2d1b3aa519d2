// Package tzenv makes the TZ environment variable work as the C library reads it. Go loads TZ only
// when it names a zone file ("Europe/Berlin"); a POSIX rule string such as
// "CET-01CEST-02,M3.5.0,M10.5.0" (fail2ban's own tests use that one) silently gives UTC. FromEnv
// builds such a zone from a minimal TZif document whose footer carries the rule, which Go's zone
// loader evaluates for every instant.
package tzenv

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"time"
)

// FromEnv returns the zone TZ describes when Go did not load it itself, nil otherwise (TZ unset,
// empty, a zone name Go knows, or not a POSIX rule).
func FromEnv() *time.Location {
	tz, ok := os.LookupEnv("TZ")
	if !ok || tz == "" || strings.HasPrefix(tz, ":") {
		return nil
	}
	if _, err := time.LoadLocation(tz); err == nil {
		return nil
	}
	loc, err := FromRule(tz)
	if err != nil {
		return nil
	}
	return loc
}

// FromRule builds a zone from a POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0", "CET-1").
func FromRule(rule string) (*time.Location, error) {
	std, rest := splitName(rule)
	if std == "" {
		return nil, errors.New("no zone name in TZ rule")
	}
	off, ok := parseOffset(rest)
	if !ok {
		return nil, errors.New("no UTC offset in TZ rule")
	}
	return time.LoadLocationFromTZData(rule, tzif(rule, int32(-off)))
}

// splitName takes the standard zone name: letters, or <...> quoted.
func splitName(s string) (string, string) {
	if strings.HasPrefix(s, "<") {
		if i := strings.IndexByte(s, '>'); i > 0 {
			return s[1:i], s[i+1:]
		}
		return "", s
	}
	i := 0
	for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 'a' && s[i] <= 'z') {
		i++
	}
	if i < 3 {
		return "", s
	}
	return s[:i], s[i:]
}

// parseOffset reads "[+-]hh[:mm[:ss]]" in seconds west of UTC, as POSIX writes it.
func parseOffset(s string) (int, bool) {
	sign := 1
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	parts := strings.SplitN(strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '<' })[0], ":", 3)
	mult := []int{3600, 60, 1}
	total := 0
	for i, p := range parts {
		n := 0
		if p == "" {
			return 0, false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		total += n * mult[i]
	}
	return sign * total, true
}

// tzif is a TZif version 2 document with no transitions, one local time type (the standard
// offset) and the rule as its footer.
func tzif(rule string, stdOff int32) []byte {
	var b []byte
	block := func() {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		for _, v := range []uint32{0, 0, 0, 0, 1, 2} { // isut, isstd, leap, time, type, char counts
			b = binary.BigEndian.AppendUint32(b, v)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(stdOff))
		b = append(b, 0, 0, 'X', 0) // isdst, abbreviation index, abbreviation
	}
	block()
	block()
	b = append(b, '\n')
	b = append(b, rule...)
	return append(b, '\n')
}
