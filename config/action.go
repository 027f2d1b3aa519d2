package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ActionKind is how portcullis carries out one of a jail's actions.
type ActionKind int

const (
	// ActionNative is a firewall action (iptables*, nftables*, firewallcmd*, ufw, shorewall*,
	// route): not run as a command; its port, protocol, block type and chain go to the nftables sink.
	ActionNative ActionKind = iota
	// ActionExec runs its commands as fail2ban runs them (mail, whois, Cloudflare, AbuseIPDB, …).
	ActionExec
	// ActionRefused cannot run here (a Python action); Reason says what to use instead.
	ActionRefused
	// ActionWebhook is portcullis's own webhook action (native = webhook): an HTTP POST per ban and
	// unban, queued like an executed action, no shell.
	ActionWebhook
	// ActionSMTP is portcullis's own mail action (native = smtp): a mail per ban sent over SMTP
	// directly (STARTTLS, auth), no local MTA, queued like an executed action.
	ActionSMTP
)

func (k ActionKind) String() string {
	switch k {
	case ActionNative:
		return "native nftables"
	case ActionExec:
		return "executed"
	case ActionWebhook:
		return "native webhook"
	case ActionSMTP:
		return "native smtp"
	}
	return "refused"
}

// Action is one entry of a jail's action list with its action.d file read.
type Action struct {
	Name   string            // the action.d file's base name
	Args   map[string]string // the jail's arguments: name[key=value, ...]
	Kind   ActionKind
	Reason string // how it runs, or why it cannot, for the start log and status
	File   string // the action.d file read last
	// Native actions: what the firewall blocks. AllPorts ignores Ports.
	Ports          []PortRange
	AllPorts       bool
	Protocol       string // tcp, udp or all
	BlockType      string // drop or reject
	Input, Forward bool   // the chain: INPUT, or FORWARD / DOCKER-USER
	// Executed actions: each command key fail2ban knows (actionstart, actionstop, actioncheck,
	// actionban, actionunban, actionflush, actionreban) with %(x)s and the action's own <tags>
	// filled in at load; the tags of a ban (<ip>, <matches>, <F-*>, …) stay for run time.
	Commands map[string]string
	// Commands6 are the commands for IPv6 bans when [Init?family=inet6] changes any; nil: the same.
	Commands6 map[string]string
	Webhook   *Webhook // ActionWebhook
	SMTP      *SMTP    // ActionSMTP
	// Digest (webhook, smtp): at most one message per interval listing every ban in it, as
	// fail2ban's mail-buffered; zero: a message per ban.
	Digest        time.Duration
	Timeout       time.Duration // fail2ban's default: 60 s
	NoRestored    bool          // norestored: not run for bans restored at start
	StartOnDemand bool          // actionstart_on_demand
	RepairOnUnban bool          // actionrepair_on_unban: a failed unban may repair the action
}

// Webhook is where and how a webhook action posts (action.d/webhook.conf).
type Webhook struct {
	URL    string
	Preset string // generic (JSON of the ban), slack, discord, ntfy, matrix
	Secret string // when set: X-Portcullis-Signature: sha256=<HMAC-SHA256 of the body>
}

// SMTP is where and how the smtp action sends its mail (action.d/smtp.conf).
type SMTP struct {
	Host     string
	Port     int
	TLS      string // opportunistic (STARTTLS when offered), mandatory, none
	User     string // with Password: SMTP AUTH
	Password string
	From     string
	To       []string
}

// Command is the command key for a ban of family ("inet4" or "inet6").
func (a *Action) Command(key, family string) string {
	if family == "inet6" && a.Commands6 != nil {
		return a.Commands6[key]
	}
	return a.Commands[key]
}

// actionCommands are the command keys of an action.d [Definition].
var actionCommands = []string{"actionstart", "actionstop", "actioncheck", "actionban", "actionunban", "actionflush", "actionreban", "actionrepair", "actionprolong"}

// nativeActions are the action.d families portcullis carries out in nftables itself.
var nativeActions = []string{"iptables", "ip6tables", "nftables", "firewallcmd", "ufw", "shorewall", "route"}

// pythonActions names the native replacement of fail2ban's Python actions.
var pythonActions = map[string]string{
	"smtp":          "the smtp action in portcullis's action.d (direct SMTP, STARTTLS, auth)",
	"badips":        "none: badips.com is gone",
	"apprise":       "the webhook action",
	"mynetwatchman": "the webhook action",
}

// splitActions splits a jail's action value into its entries: one per line, where a line break
// inside brackets or quotes (a logpath list passed as an argument) does not end an entry.
func splitActions(s string) []string {
	var out []string
	depth, quote, start := 0, byte(0), 0
	flush := func(end int) {
		if e := strings.TrimSpace(s[start:end]); e != "" {
			out = append(out, e)
		}
		start = end + 1
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			if depth > 0 {
				quote = c
			}
		case c == '[':
			depth++
		case c == ']':
			depth = max(0, depth-1)
		case c == '\n' && depth == 0:
			flush(i)
		}
	}
	flush(len(s))
	return out
}

// loadActions reads the jail's action key: each entry's action.d file, how it runs, and for
// native actions what the firewall blocks. A jail with no action key keeps portcullis's own
// meaning: its port, protocol, blocktype and chain_hook go to nftables.
func loadActions(j *Jail, dir string, r *reader) {
	s, v, ok := r.given("action")
	if !ok {
		j.Firewall = true
		return
	}
	for _, spec := range splitActions(s) {
		name, args, err := ParseFilterSpec(spec)
		if err != nil {
			r.errs.AddAt(v, "action", strings.Replace(err.Error(), "filter", "action", -1))
			continue
		}
		if args == nil {
			args = map[string]string{}
		}
		// As fail2ban's ActionReader: the jail's name is the action's <name> unless given, and
		// <actname> tells two instances of one action in a jail apart.
		if _, ok := args["name"]; !ok {
			args["name"] = j.Name
		}
		if _, ok := args["actname"]; !ok {
			args["actname"] = name
			if n := args["name"]; n != j.Name {
				if rest, ok := strings.CutPrefix(n, j.Name); ok {
					args["actname"] += rest
				} else {
					args["actname"] += "-" + n
				}
			}
		}
		a := loadAction(dir, name, args, v, r)
		if a == nil {
			continue
		}
		j.Actions = append(j.Actions, *a)
	}
	// The first native action says what the kernel blocks; a jail with none bans nothing in the
	// kernel, as in fail2ban (action = sendmail-whois only mails).
	for _, a := range j.Actions {
		if a.Kind != ActionNative {
			continue
		}
		if !j.Firewall {
			j.Firewall = true
			j.Ports, j.Protocol, j.BlockType = a.Ports, a.Protocol, a.BlockType
			if a.AllPorts {
				j.Ports = nil
			}
			j.ChainHookInput, j.ChainHookForward = a.Input, a.Forward
			continue
		}
		r.errs.AddAt(v, "action", fmt.Sprintf("%s: a second firewall action in one jail; portcullis blocks what the first one says (split the jail to block differently)", a.Name))
	}
}

// loadAction reads action.d/NAME.conf and NAME.local with their includes.
func loadAction(dir, name string, args map[string]string, at *Value, r *reader) *Action {
	a := &Action{Name: name, Args: args}
	adir := filepath.Join(dir, "action.d")
	conf := filepath.Join(adir, name+".conf")
	_, errConf := os.Stat(conf)
	_, errLocal := os.Stat(filepath.Join(adir, name+".local"))
	base, py := strings.CutSuffix(name, ".py") // fail2ban names Python actions smtp.py[...]
	if py || errConf != nil && errLocal != nil {
		if _, err := os.Stat(filepath.Join(adir, base+".py")); py || err == nil || pythonActions[base] != "" {
			a.Kind, a.File = ActionRefused, filepath.Join(adir, base+".py")
			alt := pythonActions[base]
			if alt == "" {
				alt = "an action.d .conf action, or the webhook action"
			}
			a.Reason = fmt.Sprintf("a Python action: portcullis runs no Python; use %s", alt)
			return a
		}
		r.errs.AddAt(at, "action", fmt.Sprintf("no action %q in %s", name, adir))
		return nil
	}
	var errs Errors
	ini := NewINI()
	ini.ReadFile(conf, false, &errs)
	ini.ReadFile(filepath.Join(adir, name+".local"), false, &errs)
	if len(errs) > 0 {
		r.errs = append(r.errs, errs...)
		return nil
	}
	a.File = ini.Files[len(ini.Files)-1]
	def, init, dflt := ini.Section("Definition"), ini.Section("Init"), ini.Section("DEFAULT")
	if def == nil {
		def = newSection("Definition")
	}
	if init == nil {
		init = newSection("Init")
	}
	// <known/key> in an argument is the action's own value of key (jail.conf passes
	// chain="<known/chain>").
	for k, val := range args {
		if known, ok := strings.CutPrefix(val, "<known/"); ok && strings.HasSuffix(known, ">") {
			key := strings.TrimSuffix(known, ">")
			own := ""
			if x, ok := init.Raw(key); ok {
				own = x.Text
			} else if x, ok := def.Raw(key); ok {
				own = x.Text
			}
			args[k] = own
		}
	}
	for k, val := range args {
		ini.Set("Init", k, val, at.File, at.Line)
	}
	lookup := ini.lookup(name, ini.Section("Init"), def, dflt)
	get := func(key string) (string, *Value) {
		s, v, err := option(key, lookup, ini.Section("Init"), def)
		if v == nil {
			return "", nil
		}
		if err != nil {
			r.errs = append(r.errs, err)
			return "", v
		}
		// The action's own options as tags, nested ones too (<_nft_for_proto-<type>-iter>); the
		// tags of a ban stay for run time.
		for range 10 {
			next := replaceTagsOnce(s, func(tag, _ string) (string, bool) {
				if runtimeTag(tag) {
					return "", false
				}
				if val, ok := lookup(tag); ok {
					out, ierr := Interpolate(val, lookup)
					return out, ierr == nil
				}
				// As fail2ban's getCombOption: a tag the action does not define is the jail's
				// own option (<logpath>, <maxretry>, a key of your own).
				if val, ok := r.lookup(tag); ok {
					out, ierr := Interpolate(val, r.lookup)
					return out, ierr == nil
				}
				return "", false
			})
			if next == s {
				break
			}
			s = next
		}
		return s, v
	}
	if isNative(name) {
		nativeAction(a, get, at, r)
		return a
	}
	if native, v := get("native"); v != nil && strings.TrimSpace(native) != "" {
		a := webhookAction(a, get, v, r)
		if a != nil {
			if s, dv := get("digest"); dv != nil && strings.TrimSpace(s) != "" && strings.TrimSpace(s) != "0" {
				d, err := ParseDuration(strings.TrimSpace(s))
				if err != nil || d <= 0 {
					r.errs.AddAt(dv, "digest", fmt.Sprintf("%q: a time such as 10m (0: a message per ban)", s))
				}
				a.Digest = d
			}
		}
		return a
	}
	a.Kind = ActionExec
	a.Reason = "run through /bin/sh as fail2ban runs it"
	commands := func() map[string]string {
		m := map[string]string{}
		for _, k := range actionCommands {
			if s, v := get(k); v != nil && strings.TrimSpace(s) != "" {
				m[k] = s
			}
		}
		return m
	}
	a.Commands = commands()
	// [Init?family=inet6] holds what differs for IPv6 bans (cloudflare's cftarget, hostsdeny's
	// [<ip>]): its options over [Init] give the IPv6 commands.
	if six := ini.Section("Init?family=inet6"); six != nil {
		for _, k := range six.Keys() {
			v, _ := six.Raw(k)
			ini.Set("Init", k, v.Text, v.File, v.Line)
		}
		if c6 := commands(); !maps.Equal(c6, a.Commands) {
			a.Commands6 = c6
		}
	}
	a.Timeout = 60 * time.Second
	if s, v := get("timeout"); v != nil && strings.TrimSpace(s) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			r.errs.AddAt(v, "timeout", fmt.Sprintf("%q is not a number of seconds above 0", s))
		} else {
			a.Timeout = time.Duration(n) * time.Second
		}
	}
	for key, dst := range map[string]*bool{"norestored": &a.NoRestored, "actionstart_on_demand": &a.StartOnDemand, "actionrepair_on_unban": &a.RepairOnUnban} {
		if s, v := get(key); v != nil && strings.TrimSpace(s) != "" {
			b, err := ParseBool(strings.TrimSpace(s))
			if err != nil {
				r.errs.AddAt(v, key, err.Error())
			}
			*dst = b
		}
	}
	if a.Commands["actionban"] == "" {
		r.errs.AddAt(at, "action", fmt.Sprintf("action %s (%s) has no actionban", name, a.File))
	}
	return a
}

// Queued reports whether the jail has an action run from a queue (executed, webhook, smtp):
// those need the lines of a ban (<matches>) whether or not an audit log is kept.
func (j *Jail) Queued() bool {
	return slices.ContainsFunc(j.Actions, func(a Action) bool {
		return a.Kind == ActionExec || a.Kind == ActionWebhook || a.Kind == ActionSMTP
	})
}

// UsesFields reports whether one of the jail's executed actions has <F-*> tags: only then does a
// ban carry the filter's captures.
func (j *Jail) UsesFields() bool {
	for _, a := range j.Actions {
		for _, m := range []map[string]string{a.Commands, a.Commands6} {
			for _, c := range m {
				if strings.Contains(c, "<F-") {
					return true
				}
			}
		}
	}
	return false
}

// runtimeTag reports whether <tag> is filled per ban: the address and what led to the ban.
func runtimeTag(tag string) bool {
	switch tag {
	case "ip", "ip-rev", "ip-host", "fid", "family", "failures", "matches", "ipmatches", "ipjailmatches",
		"ipfailures", "ipjailfailures", "time", "bantime", "bancount", "restored", "fq-hostname", "sh-hostname":
		return true
	}
	return strings.HasPrefix(tag, "F-") || strings.HasPrefix(tag, "known/") || strings.HasPrefix(tag, "raw-")
}

func isNative(name string) bool {
	family, _, _ := strings.Cut(name, "-")
	return slices.Contains(nativeActions, family)
}

// nativeAction maps a firewall action's options onto what the nftables sink blocks.
func nativeAction(a *Action, get func(string) (string, *Value), at *Value, r *reader) {
	a.Kind = ActionNative
	a.Reason = "carried out by portcullis in nftables (table inet portcullis), not run as a command"
	proto, _ := get("protocol")
	a.Protocol = strings.ToLower(strings.TrimSpace(proto))
	if a.Protocol == "" {
		a.Protocol = "tcp"
	}
	if a.Protocol != "tcp" && a.Protocol != "udp" && a.Protocol != "all" {
		r.errs.AddAt(at, "action", fmt.Sprintf("%s: protocol %q: use tcp, udp or all", a.Name, a.Protocol))
		a.Protocol = "tcp"
	}
	typ, _ := get("type")
	a.AllPorts = strings.Contains(a.Name, "allports") || strings.TrimSpace(typ) == "allports" ||
		a.Name == "route" || strings.HasPrefix(a.Name, "shorewall")
	if !a.AllPorts {
		port, v := get("port")
		if v == nil || strings.TrimSpace(port) == "" {
			a.AllPorts = true
		} else {
			ports, err := ParsePorts(port, a.Protocol)
			if err != nil {
				r.errs.AddAt(at, "action", fmt.Sprintf("%s: port: %v", a.Name, err))
			}
			a.Ports = ports
		}
	}
	bt, _ := get("blocktype")
	switch b := strings.ToLower(bt); {
	case strings.Contains(b, "drop") || strings.Contains(b, "blackhole") || strings.Contains(b, "deny"):
		a.BlockType = "drop"
	default: // REJECT …, reject, unreachable, prohibit: iptables' and nftables' defaults
		a.BlockType = "reject"
	}
	chain, _ := get("chain")
	switch c := strings.ToUpper(strings.TrimSpace(chain)); c {
	case "", "INPUT", "F2B-INPUT", "INPUT_DIRECT":
		a.Input = true
	case "FORWARD", "DOCKER-USER", "FORWARD_DIRECT":
		a.Forward = true
	default:
		r.errs.AddAt(at, "action", fmt.Sprintf("%s: chain %q: portcullis blocks in its own table, on the input hook (INPUT) or the forward hook (FORWARD, DOCKER-USER)", a.Name, chain))
		a.Input = true
	}
}

// webhookAction reads portcullis's own webhook action: url, preset, secret, timeout.
func webhookAction(a *Action, get func(string) (string, *Value), native *Value, r *reader) *Action {
	switch n := strings.TrimSpace(native.Text); n {
	case "webhook":
	case "smtp":
		return smtpAction(a, get, native, r)
	default:
		r.errs.AddAt(native, "native", fmt.Sprintf("%q: the native actions are webhook and smtp", n))
		return nil
	}
	a.Kind, a.Reason = ActionWebhook, "an HTTP POST per ban and unban, queued, no shell"
	url, uv := get("url")
	preset, _ := get("preset")
	secret, _ := get("secret")
	w := &Webhook{URL: strings.TrimSpace(url), Preset: strings.ToLower(strings.TrimSpace(preset)), Secret: strings.TrimSpace(secret)}
	if w.Preset == "" {
		w.Preset = "generic"
	}
	if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
		if uv == nil {
			uv = native
		}
		r.errs.AddAt(uv, "url", fmt.Sprintf("%q: the webhook needs an http:// or https:// URL", w.URL))
	}
	switch w.Preset {
	case "generic", "slack", "discord", "ntfy", "matrix":
	default:
		r.errs.AddAt(native, "preset", fmt.Sprintf("%q: use generic, slack, discord, ntfy or matrix", w.Preset))
	}
	a.Webhook = w
	a.Timeout = 10 * time.Second
	if s, v := get("timeout"); v != nil && strings.TrimSpace(s) != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			a.Timeout = time.Duration(n) * time.Second
		} else {
			r.errs.AddAt(v, "timeout", fmt.Sprintf("%q is not a number of seconds above 0", s))
		}
	}
	return a
}

// smtpAction reads portcullis's own mail action: host, port, tls, user, password, sender, dest.
func smtpAction(a *Action, get func(string) (string, *Value), native *Value, r *reader) *Action {
	a.Kind, a.Reason = ActionSMTP, "a mail per ban over SMTP, queued, no shell and no local MTA"
	val := func(k, def string) (string, *Value) {
		s, v := get(k)
		if v == nil {
			v = native
		}
		if strings.TrimSpace(s) == "" {
			return def, v
		}
		return strings.TrimSpace(s), v
	}
	m := &SMTP{}
	m.Host, _ = val("host", "localhost")
	port, pv := val("port", "25")
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		r.errs.AddAt(pv, "port", fmt.Sprintf("%q is not a port number", port))
	}
	m.Port = n
	var tv *Value
	m.TLS, tv = val("tls", "opportunistic")
	if m.TLS != "opportunistic" && m.TLS != "mandatory" && m.TLS != "none" {
		r.errs.AddAt(tv, "tls", fmt.Sprintf("%q: use opportunistic, mandatory or none", m.TLS))
	}
	m.User, _ = val("user", "")
	m.Password, _ = val("password", "")
	host, _ := os.Hostname()
	m.From, _ = val("sender", "portcullis@"+host)
	to, dv := val("dest", "root")
	m.To = listFields(to)
	for _, addr := range append([]string{m.From}, m.To...) {
		if (!strings.Contains(addr, "@") && addr != "root") || strings.ContainsAny(addr, "\r\n<>") {
			r.errs.AddAt(dv, "dest", fmt.Sprintf("%q is not a mail address", addr))
		}
	}
	if m.User != "" && m.TLS == "none" {
		r.errs.AddAt(native, "user", "SMTP AUTH over a connection without TLS would send the password in clear: set tls")
	}
	a.SMTP = m
	a.Timeout = 30 * time.Second
	return a
}
