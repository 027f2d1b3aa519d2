package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/formula"
)

// listFields splits a list value (ignoreip, syslog_host, chain_hook, …) at commas and white space.
func listFields(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r' })
}

// loadJail reads one enabled jail in three steps: parse its keys (defaults from [DEFAULT] and
// ours), validate the values that must be one of a few, then resolve what lives outside the
// section (log paths, the filter file). Every error goes to r with its file, line and key, so
// the whole configuration's errors are reported at once.
func loadJail(dir string, r *reader, opts Options, cfg *Config) *Jail {
	j := parseJail(r, opts, cfg)
	validateJail(j, r)
	loadActions(j, dir, r)
	if j.Recidive {
		return j
	}
	resolveLogs(j, r, opts, cfg)
	resolveFilter(j, dir, r)
	return j
}

// parseJail reads the jail's keys into a Jail.
func parseJail(r *reader, opts Options, cfg *Config) *Jail {
	_, at, _ := r.get("enabled")
	j := &Jail{
		Name:            r.sec.Name,
		At:              at,
		Backend:         strings.ToLower(r.str("backend", "auto")),
		Protocol:        strings.ToLower(r.str("protocol", "tcp")),
		BlockType:       strings.ToLower(r.str("blocktype", "drop")),
		MaxRetry:        r.int("maxretry", 5, 1),
		FindTime:        r.duration("findtime", 10*time.Minute, false),
		BanTime:         r.duration("bantime", 10*time.Minute, true),
		IgnoreSelf:      r.bool("ignoreself", true),
		BanPrefix4:      r.int("banprefix4", 32, 8),
		BanPrefix6:      r.int("banprefix6", 128, 16),
		SkipIfNoLogs:    r.bool("skip_if_nologs", false),
		FleetShare:      r.bool("fleet_share", true),
		FleetApply:      r.bool("fleet_apply", true),
		FleetShareLines: r.bool("fleet_share_lines", false),
		UseDNS:          strings.ToLower(r.str("usedns", "warn")),
	}
	j.MaxMatches = r.int("maxmatches", j.MaxRetry, 0)
	parseEscalate(j, r)
	if s, v, ok := r.given("ignorecommand"); ok {
		argv, err := parseArgv(s)
		if err != nil {
			r.errs.AddAt(v, "ignorecommand", err.Error())
		} else if !filepath.IsAbs(argv[0]) {
			r.errs.AddAt(v, "ignorecommand", fmt.Sprintf("%q: give the program's absolute path (it is run without a shell)", argv[0]))
		} else {
			j.IgnoreCommand = argv
		}
	}
	parseChainHook(j, r)
	parseIncrement(j, r)
	switch lf := strings.ToLower(r.str("logformat", "text")); lf {
	case "text":
	case "json":
		j.JSON = true
		j.JSONTime, j.JSONHost, j.JSONMessage = r.str("json_time", ""), r.str("json_host", ""), r.str("json_message", "")
	default:
		_, v, _ := r.get("logformat")
		r.errs.AddAt(v, "logformat", fmt.Sprintf("%q: use text or json", lf))
	}
	if s, v, ok := r.given("logtimezone"); ok {
		loc, err := ParseTimezone(s)
		if err != nil {
			r.errs.AddAt(v, "logtimezone", err.Error())
		}
		j.LogTimezone = loc
	}
	if s, v, ok := r.get("port"); ok {
		ports, err := ParsePorts(s, j.Protocol)
		if err != nil {
			r.errs.AddAt(v, "port", err.Error())
		}
		j.Ports = ports
	}
	if s, v, ok := r.get("ignoreip"); ok {
		for _, f := range listFields(s) {
			ps, err := parseIgnore(f, opts.Resolve)
			if err != nil {
				r.errs.AddAt(v, "ignoreip", err.Error())
				continue
			}
			j.IgnoreIP = append(j.IgnoreIP, ps...)
		}
	}
	// fail2ban's recidive jail reads fail2ban's own log for its "Ban" lines. portcullis feeds its
	// own bans to such a jail directly (pipeline), so it reads no file and needs no regex.
	if fs, _, ok := r.get("filter"); (ok && strings.HasPrefix(strings.TrimSpace(fs), "recidive")) || (!ok && j.Name == "recidive") {
		if name, _, err := ParseFilterSpec(fs); !ok || err == nil && name == "recidive" {
			j.Recidive = true
			j.Filter = &Filter{Name: "recidive"}
			if s, _, ok := r.get("logpath"); ok && strings.TrimSpace(s) != "" {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("jail %s counts the bans portcullis makes in its other jails; its logpath (%s) is not read", j.Name, strings.TrimSpace(s)))
			}
		}
	}
	return j
}

// parseEscalate reads banprefix4_escalate and banprefix6_escalate: BITS:COUNT pairs.
func parseEscalate(j *Jail, r *reader) {
	for _, fam := range []struct {
		key  string
		v6   bool
		bits int
	}{{"banprefix4_escalate", false, 32}, {"banprefix6_escalate", true, 128}} {
		s, v, ok := r.given(fam.key)
		if !ok {
			continue
		}
		for _, f := range listFields(s) {
			bs, cs, found := strings.Cut(f, ":")
			bits, e1 := strconv.Atoi(bs)
			count, e2 := strconv.Atoi(cs)
			if !found || e1 != nil || e2 != nil || bits < 8 || bits >= fam.bits || count < 2 {
				r.errs.AddAt(v, fam.key, fmt.Sprintf("%q: BITS:COUNT, a prefix length shorter than %d and a count of 2 or more (56:3)", f, fam.bits))
				continue
			}
			j.Escalate = append(j.Escalate, Escalation{V6: fam.v6, Bits: bits, Count: count})
		}
	}
}

// parseChainHook reads chain_hook: input (the default), forward, or both.
func parseChainHook(j *Jail, r *reader) {
	j.ChainHookInput = true
	s, v, ok := r.given("chain_hook")
	if !ok {
		return
	}
	j.ChainHookInput = false
	for _, h := range listFields(strings.ToLower(s)) {
		switch h {
		case "input":
			j.ChainHookInput = true
		case "forward":
			j.ChainHookForward = true
		default:
			r.errs.AddAt(v, "chain_hook", fmt.Sprintf("%q: use input, forward, or both", h))
		}
	}
	if !j.ChainHookInput && !j.ChainHookForward {
		r.errs.AddAt(v, "chain_hook", "empty: use input, forward, or both")
	}
}

// parseIncrement reads fail2ban's bantime.* keys.
func parseIncrement(j *Jail, r *reader) {
	j.Increment.Enabled = r.bool("bantime.increment", false)
	if !j.Increment.Enabled {
		return
	}
	in := &j.Increment
	in.OverallJails = r.bool("bantime.overalljails", false)
	in.Factor = 1
	if s, v, ok := r.given("bantime.factor"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || f <= 0 {
			r.errs.AddAt(v, "bantime.factor", fmt.Sprintf("%q is not a number above 0", s))
		}
		in.Factor = f
	}
	if s, v, ok := r.given("bantime.formula"); ok {
		f, err := formula.Compile(strings.Join(strings.Fields(s), " "))
		if err != nil {
			r.errs.AddAt(v, "bantime.formula", err.Error())
		}
		in.Formula = f
	}
	if s, v, ok := r.given("bantime.multipliers"); ok {
		for _, f := range strings.Fields(s) {
			m, err := strconv.ParseFloat(f, 64)
			if err != nil || m <= 0 {
				r.errs.AddAt(v, "bantime.multipliers", fmt.Sprintf("%q is not a number above 0", f))
				continue
			}
			in.Multipliers = append(in.Multipliers, m)
		}
	}
	if s, v, ok := r.given("bantime.maxtime"); ok {
		in.MaxTime = r.parseDuration("bantime.maxtime", s, v, 0, false)
	}
	if s, v, ok := r.given("bantime.rndtime"); ok {
		in.RndTime = r.parseDuration("bantime.rndtime", s, v, 0, false)
	}
}

// validateJail checks the values that must be one of a few or within bounds.
func validateJail(j *Jail, r *reader) {
	oneOf := func(key, val, hint string, allowed ...string) {
		for _, a := range allowed {
			if val == a {
				return
			}
		}
		_, v, _ := r.get(key)
		r.errs.AddAt(v, key, fmt.Sprintf("%q: %s", val, hint))
	}
	if !validName(j.Name) {
		r.errs.AddAt(j.At, "["+j.Name+"]", "jail names may use letters, digits, '-', '_' and '.', up to 32 characters")
	}
	if j.BanPrefix4 > 32 {
		_, v, _ := r.get("banprefix4")
		r.errs.AddAt(v, "banprefix4", fmt.Sprintf("%d: an IPv4 prefix length from 8 to 32", j.BanPrefix4))
	}
	if j.BanPrefix6 > 128 {
		_, v, _ := r.get("banprefix6")
		r.errs.AddAt(v, "banprefix6", fmt.Sprintf("%d: an IPv6 prefix length from 16 to 128", j.BanPrefix6))
	}
	oneOf("usedns", j.UseDNS, "use yes, warn, no or raw", "yes", "warn", "no", "raw")
	oneOf("protocol", j.Protocol, "use tcp, udp or all", "tcp", "udp", "all")
	oneOf("blocktype", j.BlockType, "use drop or reject", "drop", "reject")
	if !j.Recidive {
		oneOf("backend", j.Backend, "use auto, polling, pyinotify or systemd", "auto", "polling", "pyinotify", "inotify", "gamin", "systemd")
	}
}

// resolveLogs reads where the jail's lines come from: logpath (files, or syslog) or the journal
// (backend = systemd).
func resolveLogs(j *Jail, r *reader, opts Options, cfg *Config) {
	switch j.Backend {
	case "systemd":
		// The journal: lines come from journalctl with the filter's (or the jail's) journalmatch.
		j.Journal = true
		return
	case "auto", "polling", "pyinotify", "inotify", "gamin":
	default:
		return // reported by validateJail
	}
	s, v, ok := r.get("logpath")
	if !ok && v != nil {
		return // the interpolation error is reported already
	}
	if !ok || strings.TrimSpace(s) == "" {
		if v == nil {
			_, v, _ = r.get("enabled")
		}
		r.errs.AddAt(v, "logpath", "an enabled jail needs at least one logpath")
		return
	}
	for _, line := range strings.Split(s, "\n") {
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if fs[0] == "syslog" {
			j.Syslog = true
			continue
		}
		lp := LogPath{Pattern: fs[0]}
		if len(fs) > 1 {
			switch fs[1] {
			case "head":
				lp.Head = true
			case "tail":
				lp.Tail = true
			default:
				r.errs.AddAt(v, "logpath", fmt.Sprintf("%q: a path may be followed only by head or tail", line))
			}
		}
		if !filepath.IsAbs(lp.Pattern) {
			r.errs.AddAt(v, "logpath", fmt.Sprintf("%q: log paths must be absolute", lp.Pattern))
			continue
		}
		if _, err := filepath.Match(lp.Pattern, ""); err != nil {
			r.errs.AddAt(v, "logpath", fmt.Sprintf("%q: bad glob: %v", lp.Pattern, err))
			continue
		}
		j.LogPaths = append(j.LogPaths, lp)
	}
	if j.Syslog {
		resolveSyslog(j, r, opts, cfg)
	}
}

// resolveSyslog reads which syslog messages a jail takes: syslog_program, syslog_host.
func resolveSyslog(j *Jail, r *reader, opts Options, cfg *Config) {
	if s, _, ok := r.get("syslog_program"); ok {
		j.SyslogPrograms = listFields(s)
	}
	if s, v, ok := r.get("syslog_host"); ok {
		for _, f := range listFields(s) {
			if id, ok := strings.CutPrefix(f, "cert:"); ok {
				// A client certificate's name, proved by the TLS handshake.
				if id == "" {
					r.errs.AddAt(v, "syslog_host", "cert: needs a certificate name (or * for any verified one)")
				} else if cfg.Daemon.SyslogTLSClientCA == "" {
					r.errs.AddAt(v, "syslog_host", fmt.Sprintf("%q: certificate names need syslog_tls and syslog_tls_client_ca in portcullis.conf", f))
				}
				j.SyslogIdentities = append(j.SyslogIdentities, id)
				continue
			}
			p, err := parseIgnore(f, opts.Resolve)
			if err != nil {
				r.errs.AddAt(v, "syslog_host", err.Error())
				continue
			}
			j.SyslogSenders = append(j.SyslogSenders, p...)
		}
	}
	if cfg.Daemon.SyslogUDP == "" && cfg.Daemon.SyslogTCP == "" && cfg.Daemon.SyslogTLS == "" {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("jail %s reads syslog, but portcullis.conf opens no syslog listener (syslog_udp, syslog_tcp)", j.Name))
	}
}

// resolveFilter loads the jail's filter from dir/filter.d with its arguments.
func resolveFilter(j *Jail, dir string, r *reader) {
	fs, fv, ok := r.get("filter")
	if !ok {
		if fv != nil {
			return // the interpolation error is reported already
		}
		fs, fv = j.Name, j.At
	}
	name, args, err := ParseFilterSpec(fs)
	if err != nil {
		r.errs.AddAt(fv, "filter", err.Error())
		return
	}
	if j.Journal {
		// As fail2ban: a journal jail reads its filter in the journal's log type.
		if args == nil {
			args = map[string]string{}
		}
		if _, ok := args["logtype"]; !ok {
			args["logtype"] = "journal"
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "filter.d", name+".conf")); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, "filter.d", name+".local")); err2 != nil {
			r.errs.AddAt(fv, "filter", fmt.Sprintf("no filter %q in %s", name, filepath.Join(dir, "filter.d")))
			return
		}
	}
	f, ferrs := LoadFilter(filepath.Join(dir, "filter.d"), name, args)
	if ferrs != nil {
		r.errs = append(r.errs, ferrs...)
		return
	}
	if len(f.FailRegex) == 0 {
		r.errs.AddAt(fv, "filter", fmt.Sprintf("filter %q has no failregex", name))
	}
	j.Filter = f
	if j.Journal {
		j.JournalMatch = f.JournalMatch
		if s, _, ok := r.given("journalmatch"); ok {
			j.JournalMatch = strings.TrimSpace(s)
		}
	}
}

// ValidJailName reports whether name may name a jail (fail2ban-client add): letters, digits,
// '-', '_' and '.', up to 32 characters, as in a configuration.
func ValidJailName(name string) bool { return validName(name) }
