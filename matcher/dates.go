package matcher

import (
	"bytes"
	"time"
)

// Date detection runs only on lines Hyperscan hit. It recognises, at the start of a line (after
// optional blanks), the classic syslog stamp "Jan _2 15:04:05" and ISO 8601 / RFC 3339 stamps
// ("2006-01-02T15:04:05.999999-07:00", "2006-01-02 15:04:05,999"). Nothing here allocates.

var monthNames = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func digits(b []byte, n int) (int, bool) {
	if len(b) < n {
		return 0, false
	}
	v := 0
	for i := 0; i < n; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseDate finds a timestamp at the start of line. It returns the time, the offset just past the
// stamp, and whether one was found. Year-less stamps take now's year, or the previous one when that
// would put them more than a day in the future (fail2ban's rule).
func parseDate(line []byte, now time.Time, loc *time.Location) (time.Time, int, bool) {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	rest := line[i:]
	if len(rest) >= 15 && rest[0] >= '0' && rest[0] <= '9' {
		if t, n, ok := parseISO(rest, loc); ok {
			return t, i + n, true
		}
		return time.Time{}, 0, false
	}
	if t, n, ok := parseSyslog(rest, now, loc); ok {
		return t, i + n, true
	}
	return time.Time{}, 0, false
}

func parseSyslog(b []byte, now time.Time, loc *time.Location) (time.Time, int, bool) {
	// "Jan _2 15:04:05" is 15 bytes.
	if len(b) < 15 || b[3] != ' ' {
		return time.Time{}, 0, false
	}
	mon := -1
	for m, name := range monthNames {
		if lower(b[0]) == name[0] && lower(b[1]) == name[1] && lower(b[2]) == name[2] {
			mon = m
			break
		}
	}
	if mon < 0 {
		return time.Time{}, 0, false
	}
	var day int
	switch {
	case b[4] == ' ':
		d, ok := digits(b[5:], 1)
		if !ok {
			return time.Time{}, 0, false
		}
		day = d
	default:
		d, ok := digits(b[4:], 2)
		if !ok {
			return time.Time{}, 0, false
		}
		day = d
	}
	if b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return time.Time{}, 0, false
	}
	h, ok1 := digits(b[7:], 2)
	mi, ok2 := digits(b[10:], 2)
	s, ok3 := digits(b[13:], 2)
	if !ok1 || !ok2 || !ok3 || day < 1 || day > 31 || h > 23 || mi > 59 || s > 60 {
		return time.Time{}, 0, false
	}
	n := 15
	nsec := 0
	if len(b) > n+1 && b[n] == '.' {
		nsec, n = fraction(b, n+1)
	}
	nowIn := now.In(loc)
	t := wallTime(nowIn.Year(), time.Month(mon+1), day, h, mi, s, nsec, loc)
	if t.Sub(now) > 24*time.Hour {
		t = wallTime(nowIn.Year()-1, time.Month(mon+1), day, h, mi, s, nsec, loc)
	}
	// An optional year after the time ("Jan  2 15:04:05 2006") is taken when present.
	if len(b) >= n+5 && b[n] == ' ' {
		if y, ok := digits(b[n+1:], 4); ok && (len(b) == n+5 || b[n+5] == ' ') && y > 1970 {
			t = wallTime(y, time.Month(mon+1), day, h, mi, s, nsec, loc)
			n += 5
		}
	}
	return t, n, true
}

func fraction(b []byte, i int) (nsec, end int) {
	scale := 100000000
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		nsec += int(b[i]-'0') * scale
		scale /= 10
		i++
	}
	return nsec, i
}

func parseISO(b []byte, loc *time.Location) (time.Time, int, bool) {
	// 2006-01-02T15:04:05
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0, false
	}
	y, ok0 := digits(b, 4)
	mo, ok1 := digits(b[5:], 2)
	d, ok2 := digits(b[8:], 2)
	h, ok3 := digits(b[11:], 2)
	mi, ok4 := digits(b[14:], 2)
	s, ok5 := digits(b[17:], 2)
	if !(ok0 && ok1 && ok2 && ok3 && ok4 && ok5) || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 {
		return time.Time{}, 0, false
	}
	n := 19
	nsec := 0
	if len(b) > n+1 && (b[n] == '.' || b[n] == ',') {
		nsec, n = fraction(b, n+1)
	}
	zone := loc
	// A zone may follow after blanks ("2019-11-26 01:04:49.008 +08:00").
	if z := n; z < len(b) && b[z] == ' ' {
		for z < len(b) && b[z] == ' ' {
			z++
		}
		if z < len(b) && (b[z] == '+' || b[z] == '-' || b[z] == 'Z') && z+1 < len(b) && (b[z] == 'Z' || b[z+1] >= '0' && b[z+1] <= '9') {
			n = z
		}
	}
	if n < len(b) {
		switch c := b[n]; {
		case c == 'Z':
			zone = time.UTC
			n++
		case (c == '+' || c == '-') && n+3 <= len(b):
			zh, okh := digits(b[n+1:], 2)
			m := n + 3
			if okh && m < len(b) && b[m] == ':' {
				m++
			}
			zm, okm := 0, false
			if okh && m <= len(b) {
				zm, okm = digits(b[m:], 2)
			}
			if okh && okm {
				off := (zh*60 + zm) * 60
				if c == '-' {
					off = -off
				}
				zone = fixedZone(off)
				n = m + 2
			}
		}
	}
	return wallTime(y, time.Month(mo), d, h, mi, s, nsec, zone), n, true
}

// fixedZone avoids allocating a *time.Location per line for the common offsets.
var utc = time.UTC

func fixedZone(off int) *time.Location {
	if off == 0 {
		return utc
	}
	idx := off/900 + 14*4
	if off%900 == 0 && idx >= 0 && idx < len(zoneCache) {
		return zoneCache[idx]
	}
	return time.FixedZone("", off)
}

var zoneCache = func() []*time.Location {
	out := make([]*time.Location, 28*4+1)
	for i := range out {
		out[i] = time.FixedZone("", (i-14*4)*900)
	}
	return out
}()

// parseCLF finds the Common Log Format stamp of web servers, "[02/Jan/2006:15:04:05 -0700]", and
// returns its time and where the text inside the brackets starts and ends (the default templates
// cut the same text, leaving "[]"). Month names match without regard to case, as the templates do.
func parseCLF(line []byte, loc *time.Location) (time.Time, int, int, bool) {
	i := bytes.IndexByte(line, '[')
	if i < 0 || len(line)-i < 28 {
		return time.Time{}, 0, 0, false
	}
	b := line[i+1:]
	if b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' || b[20] != ' ' || (b[21] != '+' && b[21] != '-') {
		return time.Time{}, 0, 0, false
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	mon := -1
	for k, name := range monthNames {
		if bytes.EqualFold(b[3:6], []byte(name)) {
			mon = k
		}
	}
	day, year, h, mi, sec, zh, zm := num(b[0:2]), num(b[7:11]), num(b[12:14]), num(b[15:17]), num(b[18:20]), num(b[22:24]), num(b[24:26])
	if mon < 0 || day < 1 || day > 31 || year < 1970 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0 || zh < 0 || zm < 0 || b[26] != ']' {
		return time.Time{}, 0, 0, false
	}
	off := (zh*60 + zm) * 60
	if b[21] == '-' {
		off = -off
	}
	t := time.Date(year, time.Month(mon+1), day, h, mi, sec, 0, time.FixedZone("", off))
	return t.In(loc), i + 1, i + 27, true
}

// LineTime reads the timestamp at the start of line (syslog or ISO 8601, as parseDate) in unix
// seconds, year-less stamps as of now: what a file source bisects a backlog by.
func LineTime(line []byte, now time.Time, loc *time.Location) (int64, bool) {
	t, _, ok := parseDate(line, now, loc)
	return t.Unix(), ok
}

// wallTime is time.Date, except that a wall clock a DST change makes occur twice (clocks set
// back) is read as its first occurrence, as fail2ban reads it (Python's time.mktime); Go leaves
// the choice open.
func wallTime(y int, mo time.Month, d, h, mi, s, ns int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, s, ns, loc)
	if loc == time.UTC {
		return t
	}
	_, off := t.Zone()
	for _, back := range [...]time.Duration{time.Hour, 30 * time.Minute, 2 * time.Hour} {
		e := t.Add(-back)
		if _, eoff := e.Zone(); eoff == off+int(back/time.Second) {
			if eh, emi, es := e.Clock(); eh == h && emi == mi && es == s {
				return e
			}
		}
	}
	return t
}
