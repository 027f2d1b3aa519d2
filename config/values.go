package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

func systemResolve(name string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", name)
}

// parseIgnore turns one ignoreip entry into prefixes: an address, a CIDR, a DNS name (resolved
// now) or a file: list.
func parseIgnore(s string, resolve func(string) ([]netip.Addr, error)) ([]netip.Prefix, error) {
	if name, ok := strings.CutPrefix(s, "file:"); ok {
		return parseIgnoreFile(name, resolve)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a valid CIDR", s)
		}
		return []netip.Prefix{p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
	}

	addrs, err := resolve(s)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("%q is neither an address nor a CIDR, and does not resolve: %v", s, err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parseIgnoreFile reads an ignoreip file: list, as fail2ban does: addresses, CIDRs and DNS names
// separated by spaces, commas or newlines, "#" starting a comment. It is read when the
// configuration is loaded (start and reload).
func parseIgnoreFile(name string, resolve func(string) ([]netip.Addr, error)) ([]netip.Prefix, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("file:%s: %v", name, err)
	}
	var out []netip.Prefix
	for i, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, f := range listFields(line) {
			if strings.HasPrefix(f, "file:") {
				return nil, fmt.Errorf("file:%s line %d: %q: a list cannot include another", name, i+1, f)
			}
			ps, err := parseIgnore(f, resolve)
			if err != nil {
				return nil, fmt.Errorf("file:%s line %d: %v", name, i+1, err)
			}
			out = append(out, ps...)
		}
	}
	return out, nil
}

// parseArgv splits a command line (ignorecommand) into arguments: blanks separate them, and single or
// double quotes group (no other shell syntax: nothing is ever run through a shell).
func parseArgv(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inArg := false
	var quote rune
	for _, c := range s {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, inArg = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(c)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote", quote)
	}
	if inArg {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return out, nil
}

// ParseBool accepts Python ConfigParser's booleans.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use true or false)", s)
}

var durationUnits = []struct {
	names []string
	d     time.Duration
}{
	{[]string{"years", "year", "yy", "y"}, 365 * 24 * time.Hour},
	{[]string{"months", "month", "mo"}, 30 * 24 * time.Hour},
	{[]string{"weeks", "week", "ww", "w"}, 7 * 24 * time.Hour},
	{[]string{"days", "day", "dd", "d"}, 24 * time.Hour},
	{[]string{"hours", "hour", "hh", "h"}, time.Hour},
	{[]string{"minutes", "minute", "mins", "min", "mm", "m"}, time.Minute},
	{[]string{"seconds", "second", "secs", "sec", "ss", "s"}, time.Second},
}

// ParseDuration parses fail2ban time values: "600", "10m", "1h 30m", "1d", "2w", "-1" (Forever).
// A bare number is seconds. Any negative value means forever, as in fail2ban.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("empty time value")
	}
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		if n < 0 {
			return Forever, nil
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	var total time.Duration
	rest := t
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t")
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%q is not a time (use seconds or 10m, 1h, 1d, 1w; -1 for forever)", s)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a time", s)
		}
		rest = strings.TrimLeft(rest[i:], " \t")
		j := 0
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		mult := time.Duration(0)
		if unit == "" {
			mult = time.Second
		}
		for _, u := range durationUnits {
			for _, name := range u.names {
				if unit == name {
					mult = u.d
				}
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("%q: unknown time unit %q", s, unit)
		}
		total += time.Duration(n * float64(mult))
	}
	return total, nil
}

var wellKnownPorts = map[string]uint16{
	"ssh": 22, "ftp": 21, "ftp-data": 20, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "pop3": 110,
	"imap": 143, "imap2": 143, "https": 443, "submission": 587, "submissions": 465, "smtps": 465,
	"imaps": 993, "pop3s": 995, "sieve": 4190, "mysql": 3306, "postgresql": 5432, "ldap": 389,
	"ldaps": 636, "sip": 5060, "sip-tls": 5061, "openvpn": 1194, "rsync": 873, "ms-sql-s": 1433,
	"http-alt": 8080, "webcache": 8080, "tproxy": 8081, "squid": 3128, "mongodb": 27017,
	"imap3": 220, "kerberos": 88, "ntp": 123, "snmp": 161, "xmpp-client": 5222,
}

// ParsePorts parses fail2ban's port syntax: "ssh", "22", "http,https", "1000:2000", "0:65535" or "all".
// An empty result means every port.
func ParsePorts(s, proto string) ([]PortRange, error) {
	if proto == "all" {
		proto = "tcp"
	}
	var out []PortRange
	for _, f := range listFields(s) {
		switch strings.ToLower(f) {
		case "all", "any":
			return nil, nil
		}
		lo, hi, isRange := strings.Cut(f, ":")
		a, err := parsePort(lo, proto)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi, proto); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("%q: range ends before it starts", f)
			}
		}
		if a == 0 && b == 65535 {
			return nil, nil
		}
		out = append(out, PortRange{From: a, To: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q names no port", s)
	}
	return out, nil
}

func parsePort(s, proto string) (uint16, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 65535 {
			return 0, fmt.Errorf("port %d is out of range", n)
		}
		return uint16(n), nil
	}
	if p, ok := wellKnownPorts[strings.ToLower(s)]; ok {
		return p, nil
	}
	if n, err := net.LookupPort(proto, s); err == nil {
		return uint16(n), nil
	}
	return 0, fmt.Errorf("%q is not a port number or a known service name", s)
}

// ParseTimezone parses fail2ban's logtimezone: "UTC", "UTC+0200", "UTC-5", "UTC+05:30", or a
// zone name such as "Europe/Berlin".
func ParseTimezone(s string) (*time.Location, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(strings.ToUpper(s), "UTC"); ok {
		if rest == "" {
			return time.UTC, nil
		}
		sign := 1
		switch rest[0] {
		case '+':
		case '-':
			sign = -1
		default:
			return nil, fmt.Errorf("%q: expected UTC, UTC+HHMM, UTC-HH or a zone name", s)
		}
		d := strings.ReplaceAll(rest[1:], ":", "")
		var h, m int
		switch len(d) {
		case 1, 2:
			h, _ = strconv.Atoi(d)
		case 4:
			h, _ = strconv.Atoi(d[:2])
			m, _ = strconv.Atoi(d[2:])
		default:
			return nil, fmt.Errorf("%q: expected UTC, UTC+HHMM, UTC-HH or a zone name", s)
		}
		if h > 14 || m > 59 {
			return nil, fmt.Errorf("%q: offset out of range", s)
		}
		return time.FixedZone(s, sign*(h*3600+m*60)), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a zone this system knows: %v", s, err)
	}
	return loc, nil
}

// ParseIgnoreIP reads one ignoreip entry given at run time (fail2ban-client set JAIL
// addignoreip): an address or a CIDR; host names and file: lists are for the configuration.
func ParseIgnoreIP(s string) ([]netip.Prefix, error) {
	return parseIgnore(s, func(string) ([]netip.Addr, error) {
		return nil, fmt.Errorf("a host name is not taken at run time: put it in the jail's ignoreip")
	})
}
