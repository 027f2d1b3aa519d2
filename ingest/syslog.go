package ingest

import (
	"bytes"
	"time"
)

// SyslogMessage is one parsed syslog message. The byte slices point into the message given to
// ParseSyslog and are valid as long as it is.
type SyslogMessage struct {
	Time    time.Time // zero when the message carries none (or none that parses)
	Host    []byte    // HOSTNAME as the sender wrote it; may be empty
	Program []byte    // APP-NAME or the RFC 3164 tag
	PID     []byte
	Msg     []byte
}

var syslogMonths = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// ParseSyslog parses an RFC 5424 or RFC 3164 message (the <PRI> is optional). Year-less RFC 3164
// stamps take now's year, or the previous one when that would put them more than a day ahead.
// It never fails on the message text: what cannot be parsed as a header becomes the message.
func ParseSyslog(b []byte, now time.Time, loc *time.Location) SyslogMessage {
	return parseSyslog(b, now, loc, nil)
}

// stampCache remembers the last RFC 3164 stamp parsed and the last time formatted. Messages that
// arrive together mostly share their second, and time.Date plus Time.AppendFormat were a third of
// a UDP message's user-space cost. One per goroutine; a nil cache is valid (no caching).
type stampCache struct {
	raw  [15]byte
	now  int64 // year inference depends on now: a hit needs the same second (see parse)
	t    time.Time
	ok   bool
	fmtT time.Time
	fmtB []byte
}

func parseSyslog(b []byte, now time.Time, loc *time.Location, c *stampCache) SyslogMessage {
	b = bytes.TrimRight(b, "\r\n\x00")
	if len(b) > 0 && b[0] == '<' {
		if end := bytes.IndexByte(b, '>'); end > 1 && end <= 4 && allDigits(b[1:end]) {
			b = b[end+1:]
		}
	}
	// RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
	if len(b) > 2 && b[0] >= '1' && b[0] <= '9' && b[1] == ' ' {
		if m, ok := parse5424(b[2:], loc); ok {
			return m
		}
	}
	return parse3164(b, now, loc, c)
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func nextField(b []byte) ([]byte, []byte, bool) {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

func nilValue(f []byte) []byte {
	if len(f) == 1 && f[0] == '-' {
		return nil
	}
	return f
}

func parse5424(b []byte, loc *time.Location) (SyslogMessage, bool) {
	var m SyslogMessage
	ts, rest, ok := nextField(b)
	if !ok {
		return m, false
	}
	if !(len(ts) == 1 && ts[0] == '-') {
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		if err != nil {
			return m, false
		}
		m.Time = t.In(loc)
	}
	var host, app, pid, msgid []byte
	if host, rest, ok = nextField(rest); !ok {
		return m, false
	}
	if app, rest, ok = nextField(rest); !ok {
		return m, false
	}
	if pid, rest, ok = nextField(rest); !ok {
		return m, false
	}
	if msgid, rest, ok = nextField(rest); !ok && len(msgid) == 0 {
		return m, false
	}
	_ = msgid
	m.Host, m.Program, m.PID = nilValue(host), nilValue(app), nilValue(pid)
	// STRUCTURED-DATA: "-" or [id k="v" ...]... with \" \] \\ escapes inside values.
	switch {
	case len(rest) > 0 && rest[0] == '-':
		rest = rest[1:]
	case len(rest) > 0 && rest[0] == '[':
		i, inQuote := 0, false
		for i < len(rest) {
			c := rest[i]
			switch {
			case inQuote && c == '\\':
				i++
			case c == '"':
				inQuote = !inQuote
			case !inQuote && c == ']' && (i+1 == len(rest) || rest[i+1] != '['):
				i++
				goto sdDone
			}
			i++
		}
	sdDone:
		rest = rest[min(i, len(rest)):]
	default:
		return m, false
	}
	rest = bytes.TrimPrefix(rest, []byte(" "))
	rest = bytes.TrimPrefix(rest, []byte("\xef\xbb\xbf")) // BOM
	m.Msg = rest
	return m, true
}

func parse3164(b []byte, now time.Time, loc *time.Location, c *stampCache) SyslogMessage {
	var m SyslogMessage
	rest := b
	if t, n, ok := c.parse(b, now, loc); ok {
		m.Time = t
		rest = bytes.TrimLeft(b[n:], " ")
	}
	// Then HOSTNAME (optional) and TAG: "host prog[pid]: msg" or "prog[pid]: msg" or "host msg".
	first, after, ok := nextField(rest)
	if !ok {
		m.Msg = rest
		return m
	}
	if isTag(first) {
		m.Program, m.PID = splitTag(first)
		m.Msg = after
		return m
	}
	if !isHostname(first) {
		m.Msg = rest
		return m
	}
	m.Host = first
	second, after2, ok := nextField(after)
	if ok && isTag(second) {
		m.Program, m.PID = splitTag(second)
		m.Msg = after2
		return m
	}
	m.Msg = after
	return m
}

// isHostname: a name or an address, nothing a header would not hold.
func isHostname(f []byte) bool {
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':' || c == '@') {
			return false
		}
	}
	return len(f) > 0
}

// isTag: "prog:", "prog[123]:".
func isTag(f []byte) bool {
	if len(f) < 2 || f[len(f)-1] != ':' {
		return false
	}
	for _, c := range f[:len(f)-1] {
		if c == ' ' {
			return false
		}
	}
	return true
}

func splitTag(f []byte) (prog, pid []byte) {
	f = f[:len(f)-1]
	if i := bytes.IndexByte(f, '['); i > 0 && f[len(f)-1] == ']' {
		return f[:i], f[i+1 : len(f)-1]
	}
	return f, nil
}

func (c *stampCache) parse(b []byte, now time.Time, loc *time.Location) (time.Time, int, bool) {
	if c == nil || len(b) < 15 {
		return parse3164Time(b, now, loc)
	}
	// A stamp is whole seconds, so its year and its "more than a day ahead" test come out the
	// same for every now within one second: the second is an exact key.
	sec := now.Unix()
	if c.ok && string(b[:15]) == string(c.raw[:]) && sec == c.now {
		return c.t, 15, true
	}
	t, n, ok := parse3164Time(b, now, loc)
	if ok && n == 15 {
		copy(c.raw[:], b[:15])
		c.now, c.t, c.ok = sec, t, true
	}
	return t, n, ok
}

func parse3164Time(b []byte, now time.Time, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		// rsyslog may send RFC 3339 stamps in the 3164 layout.
		if i := bytes.IndexByte(b, ' '); i >= 19 {
			if t, err := time.Parse(time.RFC3339Nano, string(b[:i])); err == nil {
				return t.In(loc), i, true
			}
		}
		return time.Time{}, 0, false
	}
	mon := -1
	for i, name := range syslogMonths {
		if string(b[:3]) == name {
			mon = i
		}
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c == ' ' {
				continue
			}
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	day, h, mi, s := num(b[4:6]), num(b[7:9]), num(b[10:12]), num(b[13:15])
	if mon < 0 || day < 1 || day > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60 {
		return time.Time{}, 0, false
	}
	nowIn := now.In(loc)
	t := time.Date(nowIn.Year(), time.Month(mon+1), day, h, mi, s, 0, loc)
	if t.Sub(now) > 24*time.Hour {
		t = t.AddDate(-1, 0, 0)
	}
	return t, 15, true
}

// AppendClassicLine writes m as a classic syslog file line, "Jan _2 15:04:05 host prog[pid]: msg",
// so that stock filters read it as they read /var/log/auth.log. Newlines inside the message
// become spaces: a sender can never forge a second line. host is used when the message names none.
func AppendClassicLine(dst []byte, m *SyslogMessage, recv time.Time, host []byte, loc *time.Location) []byte {
	return appendClassicLine(dst, m, recv, host, loc, nil)
}

// appendClassicLine is AppendClassicLine with a stamp cache, which must always be given the same loc.
func appendClassicLine(dst []byte, m *SyslogMessage, recv time.Time, host []byte, loc *time.Location, c *stampCache) []byte {
	t := m.Time
	if t.IsZero() {
		t = recv
	}
	switch {
	case c == nil:
		dst = t.In(loc).AppendFormat(dst, time.Stamp)
	case c.fmtB != nil && t.Equal(c.fmtT):
		dst = append(dst, c.fmtB...)
	default:
		c.fmtT, c.fmtB = t, t.In(loc).AppendFormat(c.fmtB[:0], time.Stamp)
		dst = append(dst, c.fmtB...)
	}
	dst = append(dst, ' ')
	if len(m.Host) > 0 {
		dst = appendClean(dst, m.Host)
	} else {
		dst = append(dst, host...)
	}
	dst = append(dst, ' ')
	if len(m.Program) > 0 {
		dst = appendClean(dst, m.Program)
		if len(m.PID) > 0 {
			dst = append(dst, '[')
			dst = appendClean(dst, m.PID)
			dst = append(dst, ']')
		}
		dst = append(dst, ':', ' ')
	}
	dst = appendClean(dst, m.Msg)
	return append(dst, '\n')
}

func appendClean(dst, b []byte) []byte {
	n := len(dst)
	dst = append(dst, b...)
	for i, c := range dst[n:] {
		if c == '\n' || c == '\r' || c == 0 {
			dst[n+i] = ' '
		}
	}
	return dst
}
