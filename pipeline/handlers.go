package pipeline

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/sink"
)

// handle serves one control request.
func (d *Daemon) handle(req control.Request) control.Reply {
	switch req.Cmd {
	case "ping":
		return control.DataReply(Version)
	case "stop":
		if len(req.Args) == 1 {
			return d.stopJail(req.Args[0])
		}
		if d.opts.Stop == nil {
			return control.ErrorReply("this daemon is not stopped over its socket")
		}
		r := control.DataReply("Shutdown successful")
		r.After = d.opts.Stop
		return r
	case "start":
		// start JAIL: the jail from the configuration on disk, as reload JAIL takes it.
		if len(req.Args) != 1 {
			return control.ErrorReply("usage: start JAIL")
		}
		return d.startJail(req.Args[0])
	case "add":
		return d.addJail(req.Args)
	case "set":
		if len(req.Args) == 2 {
			return d.setDaemon(req.Args[0], req.Args[1])
		}
		return d.setJail(req.Args)
	case "flushlogs":
		if d.opts.FlushLogs != nil {
			if err := d.opts.FlushLogs(); err != nil {
				return control.ErrorReply("%v", err)
			}
		}
		return control.DataReply("rolled over")
	case "status":
		return d.status(req.Args)
	case "ban":
		return d.ban(req.Args)
	case "unban":
		return d.unban(req.Args)
	case "banned":
		if len(req.Args) == 1 && req.Args[0] == "--fleet" {
			return d.fleetBanned()
		}
		return d.banned(req.Args)
	case "fleet":
		if len(req.Args) != 1 || req.Args[0] != "status" {
			return control.ErrorReply("usage: fleet status")
		}
		return d.fleetStatus()
	case "get":
		return d.get(req.Args)
	case "import":
		// import PATH [--dry-run]: fail2ban's database, read by the daemon (the socket is root's).
		if len(req.Args) < 1 || len(req.Args) > 2 || len(req.Args) == 2 && req.Args[1] != "--dry-run" {
			return control.ErrorReply("usage: import PATH [--dry-run]")
		}
		sum, err := d.importFail2ban(req.Args[0], len(req.Args) == 2)
		if err != nil {
			return errReply(err)
		}
		return control.DataReply(sum)
	case "reload":
		if len(req.Args) > 1 {
			return control.ErrorReply("usage: reload [JAIL]")
		}
		name := ""
		if len(req.Args) == 1 {
			name = req.Args[0]
		}
		if err := d.ReloadJail(name); err != nil {
			return control.ErrorReply("reload failed, the running configuration stays:\n%v", err)
		}
		if name != "" {
			return control.DataReply("reloaded jail " + name)
		}
		return control.DataReply("reloaded")
	}
	return control.ErrorReply("unknown command %q (known: %s)", req.Cmd, strings.Join(control.Commands, ", "))
}

// errReply is a failed reply; one naming a jail that is not enabled says which.
func errReply(err error) control.Reply {
	r := control.ErrorReply("%v", err)
	var uj *UnknownJailError
	if errors.As(err, &uj) {
		r.UnknownJail = uj.Name
	}
	return r
}

// orderBans sorts bans as fail2ban's status and banned list them: in the order they were made
// (start, then address for bans of one second; a prolonged ban keeps its place).
func orderBans(list []ban.Active) {
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		return a.Prefix.Addr().Less(b.Prefix.Addr())
	})
}

func (d *Daemon) status(args []string) control.Reply {
	eng := d.current()
	if len(args) == 0 {
		st := control.Status{Version: Version, Uptime: d.opts.Now().Sub(d.started).Seconds()}
		for _, j := range eng.jails {
			st.Jails = append(st.Jails, j.Name)
		}
		return control.DataReply(st)
	}
	if len(args) > 1 {
		return control.ErrorReply("status takes at most one jail")
	}
	id, err := eng.jailID(args[0])
	if err != nil {
		return errReply(err)
	}
	j := eng.jails[id]
	js := control.JailStatus{
		Name:            j.Name,
		CurrentlyFailed: eng.win.CurrentlyFailed(id),
		TotalFailed:     eng.m.Stats[id].Matched.Load(),
		TotalBanned:     eng.bans.Stats[id].Bans.Load(),
	}
	js.Files = eng.files(int(id))
	active := eng.bans.Active(id, false)
	orderBans(active)
	for _, a := range active {
		js.Banned = append(js.Banned, sink.PrefixString(a.Prefix))
	}
	js.CurrentlyBanned = len(js.Banned)
	for _, m := range eng.m.Modes(int(id)) {
		js.Regexes = append(js.Regexes, m.String())
	}
	js.Actions = jailActions(j)
	return control.DataReply(js)
}

func parseTarget(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (d *Daemon) ban(args []string) control.Reply {
	if len(args) < 2 {
		return control.ErrorReply("usage: ban JAIL IP...")
	}
	eng := d.current()
	id, err := eng.jailID(args[0])
	if err != nil {
		return errReply(err)
	}
	var results []control.Result
	var ds []ban.Decision
	for _, s := range args[1:] {
		r := control.Result{Addr: s, Jail: args[0]}
		a, err := netip.ParseAddr(s)
		if err != nil {
			r.Error = fmt.Sprintf("%q is not an IP address", s)
			results = append(results, r)
			continue
		}
		dec, err := eng.bans.Ban(id, a)
		switch {
		case errors.Is(err, ban.ErrAlreadyBanned):
			r.OK, r.Error = true, "already banned"
			ds = eng.bans.Prolong(id, a, ds) // as fail2ban: banned again, it ends bantime from now
		case err != nil:
			r.Error = "refused: " + err.Error()
		default:
			r.OK = true
			ds = append(ds, dec)
		}
		results = append(results, r)
	}
	ds = eng.countBans(eng.win.NewAdder(eng.bans), ds)
	return d.applyAndReply("ban", ds, eng, results)
}

func (d *Daemon) unban(args []string) control.Reply {
	if len(args) == 0 {
		return control.ErrorReply("usage: unban [JAIL] IP... | unban --all")
	}
	eng := d.current()
	if len(args) == 1 && args[0] == "--all" {
		// Every ban of every jail, like fail2ban-client unban --all.
		var ds []ban.Decision
		var results []control.Result
		for _, a := range eng.bans.Active(0, true) {
			got := eng.bans.Unban(a.Jail, false, a.Prefix, "manual")
			ds = append(ds, got...)
			for _, x := range got {
				results = append(results, control.Result{Addr: sink.PrefixString(x.Prefix), Jail: eng.jails[x.Jail].Name, OK: true})
			}
		}
		return d.applyAndReply("unban", ds, eng, results)
	}
	all := true
	var id uint16
	if _, err := parseTarget(args[0]); err != nil {
		jid, jerr := eng.jailID(args[0])
		if jerr != nil {
			return errReply(jerr)
		}
		id, all, args = jid, false, args[1:]
		if len(args) == 0 {
			return control.ErrorReply("usage: unban [JAIL] IP...")
		}
	}
	var results []control.Result
	var ds []ban.Decision
	for _, s := range args {
		r := control.Result{Addr: s}
		p, err := parseTarget(s)
		if err != nil {
			r.Error = err.Error()
			results = append(results, r)
			continue
		}
		got := eng.bans.Unban(id, all, p, "manual")
		if len(got) == 0 {
			r.Error = "not banned"
		} else {
			r.OK = true
			var jails []string
			for _, x := range got {
				jails = append(jails, eng.jails[x.Jail].Name)
			}
			sort.Strings(jails)
			r.Jail = strings.Join(jails, ",")
			ds = append(ds, got...)
		}
		results = append(results, r)
	}
	return d.applyAndReply("unban", ds, eng, results)
}

// applyAndReply waits until the decisions are in the store and the firewall, then answers with
// the per-address results.
func (d *Daemon) applyAndReply(what string, ds []ban.Decision, eng *engine, results []control.Result) control.Reply {
	if len(ds) > 0 {
		if err := d.applySync(ds, eng); err != nil {
			return control.ErrorReply("the %s is decided but could not be fully applied: %v", what, err)
		}
	}
	return control.DataReply(results)
}

func (d *Daemon) banned(args []string) control.Reply {
	eng := d.current()
	all := len(args) == 0
	var id uint16
	if !all {
		var err error
		if id, err = eng.jailID(args[0]); err != nil {
			return errReply(err)
		}
	}
	list := eng.bans.Active(id, all)
	// Jails in their configured order, each jail's bans as fail2ban lists them.
	orderBans(list)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Jail < list[j].Jail })
	out := make([]control.Banned, 0, len(list))
	for _, a := range list {
		out = append(out, control.Banned{Jail: eng.jails[a.Jail].Name, Prefix: sink.PrefixString(a.Prefix), Start: a.Start, End: a.End, Count: a.Count})
	}
	return control.DataReply(out)
}

// get answers fail2ban-client's "get JAIL PARAM" for the settings a jail runs with; the reply
// is a list of strings (one value for most).
func (d *Daemon) get(args []string) control.Reply {
	if len(args) == 1 {
		// The daemon's own settings, as fail2ban-client's "get loglevel" and friends.
		dm := d.current().cfg.Daemon
		switch args[0] {
		case "loglevel":
			return control.DataReply([]string{dm.LogLevel})
		case "logtarget":
			return control.DataReply([]string{dm.LogTarget})
		case "dbfile":
			return control.DataReply([]string{d.opts.DBDir})
		case "dbpurgeage":
			return control.DataReply([]string{strconv.FormatInt(int64(dm.DBPurgeAge/time.Second), 10)})
		}
		return control.ErrorReply("get: unknown setting %q (loglevel, logtarget, dbfile, dbpurgeage; or get JAIL SETTING)", args[0])
	}
	if len(args) != 2 {
		return control.ErrorReply("usage: get JAIL maxretry|findtime|bantime|ignoreip|ignoreself|logpath|failregex|ignoreregex|journalmatch|actions (banip is answered from banned)")
	}
	if j := d.pendingJail(args[0]); j != nil {
		out, err := jailSetting(j, args[1])
		if err != nil {
			return control.ErrorReply("%v", err)
		}
		return control.DataReply(out)
	}
	eng := d.current()
	id, err := eng.jailID(args[0])
	if err != nil {
		return errReply(err)
	}
	if args[1] == "banned" {
		var out []string
		active := eng.bans.Active(id, false)
		orderBans(active)
		for _, a := range active {
			out = append(out, sink.PrefixString(a.Prefix))
		}
		return control.DataReply(out)
	}
	out, err := jailSetting(eng.jails[id], args[1])
	if err != nil {
		return control.ErrorReply("%v", err)
	}
	return control.DataReply(out)
}

// jailSetting is a jail setting as "get JAIL KEY" answers it (a list of strings, one for most).
func jailSetting(j *config.Jail, key string) ([]string, error) {
	secs := func(t time.Duration) string {
		if t < 0 {
			return "-1"
		}
		return strconv.FormatInt(int64(t/time.Second), 10)
	}
	var out []string
	switch key {
	case "maxretry":
		out = []string{strconv.Itoa(j.MaxRetry)}
	case "findtime":
		out = []string{secs(j.FindTime)}
	case "bantime":
		out = []string{secs(j.BanTime)}
	case "ignoreself":
		out = []string{strconv.FormatBool(j.IgnoreSelf)}
	case "ignoreip":
		// As fail2ban lists them: networks in the order given, then single addresses.
		for _, single := range []bool{false, true} {
			for _, p := range j.IgnoreIP {
				if p.IsSingleIP() == single {
					out = append(out, sink.PrefixString(p))
				}
			}
		}
	case "logpath":
		for _, lp := range j.LogPaths {
			out = append(out, lp.Pattern)
		}
	case "failregex", "ignoreregex":
		if j.Filter != nil {
			list := j.Filter.FailRegex
			if key == "ignoreregex" {
				list = j.Filter.IgnoreRegex
			}
			for _, r := range list {
				out = append(out, r.Text)
			}
		}
	case "journalmatch":
		out = []string{j.JournalMatch}
	case "actions":
		out = jailActions(j)
	case "logencoding":
		out = []string{"UTF-8"} // portcullis reads logs as UTF-8, bytes that are not kept as they are
	case "usedns":
		out = []string{j.UseDNS}
	case "maxmatches":
		out = []string{strconv.Itoa(j.MaxMatches)}
	case "maxlines":
		n := 1
		if j.Filter != nil && j.Filter.MaxLines > 0 {
			n = j.Filter.MaxLines
		}
		out = []string{strconv.Itoa(n)}
	default:
		return nil, fmt.Errorf("get: unknown setting %q", key)
	}
	return out, nil
}

// jailActions lists a jail's actions, each with how it runs (fail2ban-client prints the names).
func jailActions(j *config.Jail) []string {
	if len(j.Actions) == 0 {
		return []string{"nftables (native nftables)"}
	}
	var out []string
	for _, a := range j.Actions {
		out = append(out, a.Name+" ("+a.Kind.String()+")")
	}
	return out
}
