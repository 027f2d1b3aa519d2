// Package config loads fail2ban-compatible configuration: jail.conf, jail.d/*.conf, jail.local,
// jail.d/*.local, filter.d/NAME.conf + NAME.local, and our own portcullis.conf. It parses Python
// ConfigParser syntax with [INCLUDES], [DEFAULT], [Definition] and [Init], interpolates %(name)s lazily,
// substitutes filter <tags>, and validates every enabled jail, reporting all problems at once, each with
// file, line and key.
package config

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/formula"
)

// Forever is the ban time of a permanent ban (bantime = -1).
const Forever time.Duration = -1

// Defaults for the daemon, overridable by portcullis.conf and then by command-line flags.
const (
	DefaultSocket  = "/run/portcullis/portcullis.sock"
	DefaultDBDir   = "/var/lib/portcullis"
	DefaultMetrics = "127.0.0.1:9191"
)

// Config is a loaded, validated configuration.
type Config struct {
	Dir    string
	Daemon Daemon
	// Jails holds the enabled jails in the order their sections first appeared.
	Jails []*Jail
	// Warnings are problems that do not stop the daemon (a jail feature not supported yet, ...).
	Warnings []string
}

// Daemon holds daemon-wide settings from portcullis.conf [Definition].
type Daemon struct {
	Socket  string
	DBDir   string
	Metrics string
	// Syslog network input (off unless an address is set): UDP and TCP listen addresses, the
	// sender networks allowed (empty: any), and the largest message accepted.
	SyslogUDP        string
	SyslogTCP        string
	SyslogAllow      []netip.Prefix
	SyslogMaxMessage int
	// Journalctl is the journalctl program journal jails run; "journalctl" when empty.
	Journalctl string
	// Syslog over TLS: listen address, certificate and key files (PEM), and the CA that signs
	// the client certificates every sender must then present (syslog_tls_client_ca).
	SyslogTLS, SyslogTLSCert, SyslogTLSKey, SyslogTLSClientCA string
	// TCP and TLS connection limits: in all (syslog_max_conns, 1024), per sender address
	// (syslog_max_conns_per_sender, 16), and how long a silent connection stays open
	// (syslog_idle_timeout, 5m). Zero: the default.
	SyslogMaxConns, SyslogMaxConnsPerSender int
	SyslogIdleTimeout                       time.Duration
	// DBPurgeAge: ban history older than this is forgotten (fail2ban's dbpurgeage, 1d by
	// default); 0 keeps it forever.
	DBPurgeAge time.Duration
	// AuditLog is a file that gets one JSON line per ban and unban (auditlog); empty: none.
	AuditLog string
	// MaxKeys caps the (jail, address) failure counts held in memory (max_keys, 1,000,000 by
	// default); at the cap the keys with the fewest failures make room.
	MaxKeys int
}

// Jail is one enabled jail.
type Jail struct {
	Name       string
	Filter     *Filter
	LogPaths   []LogPath
	Backend    string
	Ports      []PortRange // empty means every port
	Protocol   string      // "tcp", "udp" or "all"
	BlockType  string      // "drop" or "reject"
	MaxRetry   int
	FindTime   time.Duration
	BanTime    time.Duration // Forever for permanent bans
	IgnoreIP   []netip.Prefix
	IgnoreSelf bool
	// Increment is fail2ban's bantime.increment family of keys.
	Increment Increment
	// UseDNS is fail2ban's usedns: yes, warn, no or raw. With "no", <HOST> matches addresses
	// only; otherwise a host name is captured as text (portcullis never bans by name).
	UseDNS string
	// LogTimezone is the zone of stamps without one (logtimezone); nil means the system's.
	LogTimezone *time.Location
	// JSON: logformat = json; the jail's files hold JSON lines, read through JSONTime, JSONHost
	// and JSONMessage (dotted field paths; see ingest.JSONFormat).
	JSON                            bool
	JSONTime, JSONHost, JSONMessage string
	// Journal: backend = systemd; the jail reads journalctl's output for JournalMatch
	// ("_SYSTEMD_UNIT=ssh.service + _COMM=sshd": fields ANDed, "+" ORs groups, as journalctl).
	Journal      bool
	JournalMatch string
	// Syslog: the jail reads the network syslog input (logpath = syslog), the messages of
	// SyslogPrograms (APP-NAME or tag; empty: all) from senders in SyslogSenders (empty: all).
	Syslog         bool
	SyslogPrograms []string
	SyslogSenders  []netip.Prefix
	// SyslogIdentities are client certificate names (syslog_host = cert:NAME) whose TLS
	// connections the jail reads; "*" is any certificate the client CA verified.
	SyslogIdentities []string
	// ChainHookInput and ChainHookForward: which traffic the bans block (chain_hook, the name of
	// fail2ban's nftables action parameter: input, forward, or both). forward covers containers.
	ChainHookInput, ChainHookForward bool
	// IgnoreCommand is fail2ban's ignorecommand as arguments (run without a shell, "<ip>"
	// replaced); nil when unset.
	IgnoreCommand []string
	// MaxMatches is fail2ban's maxmatches (default: maxretry); 0 keeps log lines out of the
	// audit log. portcullis keeps the line of the failure that crossed maxretry.
	MaxMatches int
	// BanPrefix4 and BanPrefix6 (ours): failures are counted, and bans made, per network of this
	// length (32 and 128: per address). banprefix6 = 64 catches an attacker rotating addresses
	// inside its /64.
	BanPrefix4, BanPrefix6 int
	// Escalate (banprefix6_escalate = 56:3 48:5, banprefix4_escalate = 16:4): when COUNT bans of
	// the jail lie inside one /BITS, that network is banned instead.
	Escalate []Escalation
	// SkipIfNoLogs: a jail none of whose logpaths matches a file (and that has no journal to
	// read instead) is left out with a warning instead of failing the start (fail2ban's
	// skip_if_nologs).
	SkipIfNoLogs bool
	// Recidive: the jail's filter is recidive. It counts the bans of the other jails (each ban
	// is one failure of the banned address) instead of reading a log.
	Recidive bool
	// At is where the jail's section starts, for messages.
	At *Value
}

// Increment holds bantime.increment, .factor, .formula, .multipliers, .maxtime, .rndtime and
// .overalljails.
type Increment struct {
	Enabled bool
	Factor  float64 // bantime.factor; 1 when zero
	// Formula computes the ban time from ban.Time, ban.Count (previous bans) and banFactor;
	// formula.Default when nil. Multipliers, when set, are used instead: bantime times factor
	// times multipliers[ban.Count], the last one for larger counts.
	Formula     *formula.Formula
	Multipliers []float64
	MaxTime     time.Duration // cap; none when zero
	RndTime     time.Duration // a random extra of up to this much (against timed retries)
	// OverallJails counts previous bans of the address in every jail, not only this one.
	OverallJails bool
}

// Escalation is one banprefix*_escalate rule: Count bans inside a /Bits network ban the network.
type Escalation struct {
	V6          bool
	Bits, Count int
}

// LogPath is one logpath entry: a path or glob and fail2ban's option after it. A file never read
// before is read from its start (its failures older than findtime do not count) unless Tail is
// set, which starts it at its end; Head also backfills the rotated archives the glob matches.
type LogPath struct {
	Pattern string
	Head    bool
	Tail    bool
}

// PortRange is an inclusive destination port range.
type PortRange struct{ From, To uint16 }

// Filter is a jail's filter after interpolation and tag substitution; the matcher tags (<HOST> and
// friends) are left for the matcher.
type Filter struct {
	Name         string
	File         string
	PrefRegex    *Regex // optional; its <F-CONTENT> is what the failregexes see
	FailRegex    []Regex
	IgnoreRegex  []Regex
	DatePattern  string
	MaxLines     int
	JournalMatch string
}

// Regex is one failregex/ignoreregex line and where it came from.
type Regex struct {
	Text string
	File string
	Line int
}

// Options tune Load; the zero value is fine.
type Options struct {
	// Resolve looks up DNS names in ignoreip; nil uses the system resolver with a 3 s timeout.
	Resolve func(name string) ([]netip.Addr, error)
}

var daemonKeys = map[string]bool{"socket": true, "dbdir": true, "metrics": true, "loglevel": true, "dbpurgeage": true,
	"syslog_udp": true, "syslog_tcp": true, "syslog_allow": true, "syslog_max_message": true, "journalctl": true,
	"syslog_tls": true, "syslog_tls_cert": true, "syslog_tls_key": true, "max_keys": true, "auditlog": true,
	"syslog_tls_client_ca": true, "syslog_max_conns": true, "syslog_max_conns_per_sender": true, "syslog_idle_timeout": true}

// Load reads the configuration in dir. The returned error is an Errors listing every problem.
func Load(dir string, opts Options) (*Config, error) {
	if opts.Resolve == nil {
		opts.Resolve = systemResolve
	}
	var errs Errors
	cfg := &Config{Dir: dir}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, Errors{{File: dir, Msg: "is not a readable configuration folder"}}
	}

	cfg.Daemon = loadDaemon(dir, &errs)

	ini := NewINI()
	ini.readLayered(dir, "jail", true, &errs)
	cfg.Warnings = append(cfg.Warnings, typoWarnings(ini)...)
	for _, name := range ini.Sections() {
		if name == "DEFAULT" || name == "INCLUDES" {
			continue
		}
		r := newReader(ini, name)
		if !r.bool("enabled", false) {
			r.flush(&errs)
			continue
		}
		j := loadJail(dir, r, opts, cfg)
		r.flush(&errs)
		if j != nil {
			cfg.Jails = append(cfg.Jails, j)
		}
	}
	if err := errs.Err(); err != nil {
		// Files in the order they were first mentioned, lines in order within a file.
		rank := map[string]int{}
		for _, e := range errs {
			if _, ok := rank[e.File]; !ok {
				rank[e.File] = len(rank)
			}
		}
		sort.SliceStable(errs, func(a, b int) bool {
			if ra, rb := rank[errs[a].File], rank[errs[b].File]; ra != rb {
				return ra < rb
			}
			return errs[a].Line < errs[b].Line
		})
		return nil, err
	}
	return cfg, nil
}

// LoadDaemon reads only the daemon settings (portcullis.conf and .local) of dir; the CLI uses it
// to find the socket.
func LoadDaemon(dir string) (Daemon, error) {
	var errs Errors
	d := loadDaemon(dir, &errs)
	return d, errs.Err()
}

func loadDaemon(dir string, errs *Errors) Daemon {
	out := Daemon{Socket: DefaultSocket, DBDir: DefaultDBDir, Metrics: DefaultMetrics, DBPurgeAge: 24 * time.Hour, MaxKeys: 1_000_000}
	d := NewINI()
	d.ReadFile(filepath.Join(dir, "portcullis.conf"), false, errs)
	d.ReadFile(filepath.Join(dir, "portcullis.local"), false, errs)
	s := d.Section("Definition")
	if s == nil {
		return out
	}
	defer func() {
		if out.SyslogTLS != "" && (out.SyslogTLSCert == "" || out.SyslogTLSKey == "") {
			v, _ := s.Raw("syslog_tls")
			errs.AddAt(v, "syslog_tls", "needs syslog_tls_cert and syslog_tls_key")
		}
	}()
	// Plain text options: the value as written, blanks trimmed.
	text := map[string]*string{
		"socket": &out.Socket, "dbdir": &out.DBDir, "metrics": &out.Metrics, "journalctl": &out.Journalctl,
		"syslog_tls": &out.SyslogTLS, "syslog_tls_cert": &out.SyslogTLSCert, "syslog_tls_key": &out.SyslogTLSKey,
		"syslog_tls_client_ca": &out.SyslogTLSClientCA,
		"syslog_udp":           &out.SyslogUDP, "syslog_tcp": &out.SyslogTCP, "auditlog": &out.AuditLog,
	}
	for _, k := range s.Keys() {
		v, _ := s.Raw(k)
		if !daemonKeys[k] {
			msg := "unknown option in portcullis.conf"
			if near := closest(k, slices.Sorted(maps.Keys(daemonKeys))); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			errs.AddAt(v, k, msg)
			continue
		}
		if p := text[k]; p != nil {
			*p = strings.TrimSpace(v.Text)
			if k == "syslog_udp" || k == "syslog_tcp" || k == "syslog_tls" {
				if err := checkListen(*p); err != nil {
					errs.AddAt(v, k, err.Error())
				}
			}
			continue
		}
		switch k {
		case "syslog_allow":
			for _, f := range listFields(v.Text) {
				p, err := parseIgnore(f, func(string) ([]netip.Addr, error) { return nil, fmt.Errorf("names are not allowed here") })
				if err != nil {
					errs.AddAt(v, k, err.Error())
					continue
				}
				out.SyslogAllow = append(out.SyslogAllow, p...)
			}
		case "syslog_max_message":
			n, err := strconv.Atoi(strings.TrimSpace(v.Text))
			if err != nil || n < 256 || n > 1<<20 {
				errs.AddAt(v, k, fmt.Sprintf("%q: a size in bytes from 256 to 1048576", v.Text))
				continue
			}
			out.SyslogMaxMessage = n
		case "dbpurgeage":
			d, err := ParseDuration(v.Text)
			if err != nil {
				errs.AddAt(v, k, err.Error())
				continue
			}
			out.DBPurgeAge = max(d, 0) // fail2ban: 0 or negative never purges
		case "syslog_max_conns", "syslog_max_conns_per_sender":
			n, err := strconv.Atoi(strings.TrimSpace(v.Text))
			if err != nil || n < 1 || n > 1<<20 {
				errs.AddAt(v, k, fmt.Sprintf("%q: a number of connections from 1 to 1048576", v.Text))
				continue
			}
			if k == "syslog_max_conns" {
				out.SyslogMaxConns = n
			} else {
				out.SyslogMaxConnsPerSender = n
			}
		case "syslog_idle_timeout":
			d, err := ParseDuration(v.Text)
			if err != nil || d < time.Second {
				errs.AddAt(v, k, fmt.Sprintf("%q: a duration of at least 1s", v.Text))
				continue
			}
			out.SyslogIdleTimeout = d
		case "max_keys":
			n, err := strconv.Atoi(strings.TrimSpace(v.Text))
			if err != nil || n < 1000 {
				errs.AddAt(v, k, fmt.Sprintf("%q: a number of keys, at least 1000", v.Text))
				continue
			}
			out.MaxKeys = n
		}
	}
	return out
}

// checkListen reports whether addr is a listen address: HOST:PORT with HOST an IP address,
// localhost or empty (every address), PORT 0 to 65535; empty means off.
func checkListen(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: a listen address HOST:PORT (0.0.0.0:514, [::]:514, 127.0.0.1:514)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" && host != "localhost" {
		return fmt.Errorf("%q: the host must be an IP address, localhost or empty", addr)
	}
	return nil
}

// Jail returns the enabled jail with this name, or nil.
func (c *Config) Jail(name string) *Jail {
	for _, j := range c.Jails {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// reader reads typed options of one jail section, falling back to [DEFAULT], collecting errors.
type reader struct {
	ini    *INI
	sec    *Section
	lookup lookupFunc // the jail's options, then [DEFAULT]
	errs   Errors
}

func newReader(ini *INI, section string) *reader {
	sec := ini.Section(section)
	return &reader{ini: ini, sec: sec, lookup: ini.lookup(section, sec, ini.Section("DEFAULT"))}
}

func (r *reader) flush(errs *Errors) { *errs = append(*errs, r.errs...) }

// get returns the interpolated value of key, its position, and whether it is set.
func (r *reader) get(key string) (string, *Value, bool) {
	v, ok := r.lookup(key)
	if !ok {
		return "", nil, false
	}
	s, err := Interpolate(v, r.lookup)
	if err != nil {
		err.Key = key
		r.errs = append(r.errs, err)
		return "", v, false
	}
	return s, v, true
}

// given is get for keys whose blank value means "not set".
func (r *reader) given(key string) (string, *Value, bool) {
	s, v, ok := r.get(key)
	return s, v, ok && strings.TrimSpace(s) != ""
}

func (r *reader) str(key, def string) string {
	s, _, ok := r.get(key)
	if !ok {
		return def
	}
	return s
}

func (r *reader) bool(key string, def bool) bool {
	s, v, ok := r.get(key)
	if !ok {
		return def
	}
	b, err := ParseBool(s)
	if err != nil {
		r.errs.AddAt(v, key, err.Error())
		return def
	}
	return b
}

func (r *reader) int(key string, def, min int) int {
	s, v, ok := r.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < min {
		r.errs.AddAt(v, key, fmt.Sprintf("%q is not a whole number >= %d", s, min))
		return def
	}
	return n
}

func (r *reader) duration(key string, def time.Duration, allowForever bool) time.Duration {
	s, v, ok := r.get(key)
	if !ok {
		return def
	}
	return r.parseDuration(key, s, v, def, allowForever)
}

func (r *reader) parseDuration(key, s string, v *Value, def time.Duration, allowForever bool) time.Duration {
	d, err := ParseDuration(s)
	if err == nil && d == Forever && !allowForever {
		err = fmt.Errorf("%q: a negative time is only allowed for bantime", s)
	}
	if err == nil && d == 0 {
		err = fmt.Errorf("%q: must be longer than zero", s)
	}
	if err != nil {
		r.errs.AddAt(v, key, err.Error())
		return def
	}
	return d
}

func validName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

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
