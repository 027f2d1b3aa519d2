// Package config loads fail2ban-compatible configuration: jail.conf, jail.d/*.conf, jail.local,
// jail.d/*.local, filter.d/NAME.conf + NAME.local, and our own portcullis.conf. It parses Python
// ConfigParser syntax with [INCLUDES], [DEFAULT], [Definition] and [Init], interpolates %(name)s lazily,
// substitutes filter <tags>, and validates every enabled jail, reporting all problems at once, each with
// file, line and key.
package config

import (
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
	// LogLevel (loglevel: CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG, as fail2ban) and
	// LogTarget (logtarget: STDERR, STDOUT, SYSLOG, SYSTEMD-JOURNAL or a file) say where the
	// daemon logs; INFO to STDERR by default.
	LogLevel, LogTarget string
	// Fail2banDB is fail2ban.conf's dbfile, when the folder is an /etc/fail2ban layout: the
	// database import_fail2ban = auto takes over.
	Fail2banDB string
	// Notes say how fail2ban.conf's settings were taken (for the start log).
	Notes []string
	// MetricsToken (metrics_token), when set, is required by /metrics, the status page and its
	// API: a bearer token, or the password of basic auth. MetricsTLSCert and MetricsTLSKey
	// (metrics_tls_cert, metrics_tls_key) serve them over TLS.
	MetricsToken, MetricsTLSCert, MetricsTLSKey string
	// Fleet shares bans and counts failures with other nodes over NATS JetStream (fleet_*).
	Fleet Fleet
	// ImportFail2ban is fail2ban's database that the first start takes the bans and ban counts
	// of (import_fail2ban): a path, "auto" (fail2ban.conf's dbfile, else
	// /var/lib/fail2ban/fail2ban.sqlite3) or "off".
	ImportFail2ban string
	// MaxKeys caps the (jail, address) failure counts held in memory (max_keys, 1,000,000 by
	// default); at the cap the keys with the fewest failures make room.
	MaxKeys int
}

// Jail is one enabled jail.
type Jail struct {
	Name      string
	Filter    *Filter
	LogPaths  []LogPath
	Backend   string
	Ports     []PortRange // empty means every port
	Protocol  string      // "tcp", "udp" or "all"
	BlockType string      // "drop" or "reject"
	// Actions is the jail's action list (action, action_* macros, banaction) as read from
	// action.d; empty when the jail names none. Firewall: the jail bans in nftables (it names a
	// firewall action, or no action at all).
	Actions    []Action
	Firewall   bool
	MaxRetry   int
	FindTime   time.Duration
	BanTime    time.Duration // Forever for permanent bans
	IgnoreIP   []netip.Prefix
	IgnoreSelf bool
	// FleetShare: the jail's bans (and, on a node that publishes them, its failures) go to the
	// fleet (fleet_share); FleetApply: the fleet's bans of this jail are applied here
	// (fleet_apply). Both true by default; nothing without fleet in portcullis.conf.
	// FleetShareLines (fleet_share_lines, false by default): the failures it publishes carry their
	// log lines, so a decider's bans have them as evidence.
	FleetShare, FleetApply, FleetShareLines bool
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
	"syslog_tls_client_ca": true, "syslog_max_conns": true, "syslog_max_conns_per_sender": true, "syslog_idle_timeout": true,
	"import_fail2ban": true, "logtarget": true, "metrics_token": true, "metrics_tls_cert": true, "metrics_tls_key": true}

func init() {
	for _, k := range fleetKeys {
		daemonKeys[k] = true
	}
}

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

func loadDaemon(dir string, errs *Errors) (out Daemon) {
	out = Daemon{Socket: DefaultSocket, DBDir: DefaultDBDir, Metrics: DefaultMetrics, DBPurgeAge: 24 * time.Hour, MaxKeys: 1_000_000,
		ImportFail2ban: "auto", LogLevel: "INFO", LogTarget: "STDERR"}
	readFail2banConf(dir, &out, errs)
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
		if (out.MetricsTLSCert == "") != (out.MetricsTLSKey == "") {
			v, _ := s.Raw("metrics_tls_cert")
			errs.AddAt(v, "metrics_tls_cert", "metrics_tls_cert and metrics_tls_key go together")
		}
		if err := out.Fleet.finish(); err != nil {
			v, _ := s.Raw("fleet")
			errs.AddAt(v, "fleet", err.Error())
		}
	}()
	// Plain text options: the value as written, blanks trimmed.
	text := map[string]*string{
		"socket": &out.Socket, "dbdir": &out.DBDir, "metrics": &out.Metrics, "journalctl": &out.Journalctl,
		"syslog_tls": &out.SyslogTLS, "syslog_tls_cert": &out.SyslogTLSCert, "syslog_tls_key": &out.SyslogTLSKey,
		"syslog_tls_client_ca": &out.SyslogTLSClientCA,
		"syslog_udp":           &out.SyslogUDP, "syslog_tcp": &out.SyslogTCP, "auditlog": &out.AuditLog,
		"import_fail2ban": &out.ImportFail2ban, "logtarget": &out.LogTarget,
		"metrics_token": &out.MetricsToken, "metrics_tls_cert": &out.MetricsTLSCert, "metrics_tls_key": &out.MetricsTLSKey,
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
		if strings.HasPrefix(k, "fleet") {
			if err := out.Fleet.key(k, v.Text); err != nil {
				errs.AddAt(v, k, err.Error())
			}
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
		case "loglevel":
			lv, err := logLevel(v.Text)
			if err != nil {
				errs.AddAt(v, k, err.Error())
				continue
			}
			out.LogLevel = lv
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
