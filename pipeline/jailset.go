package pipeline

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/control"
)

// setJail is fail2ban-client's run-time "set JAIL KEY VALUE…": the running configuration with the
// jail changed is swapped in as a reload swaps one (bans, counts and positions carry over). As in
// fail2ban, the change lasts until the next reload. The reply is the setting's new value, as
// "get JAIL KEY" gives it.
func (d *Daemon) setJail(args []string) control.Reply {
	if len(args) < 3 {
		return control.ErrorReply("usage: set JAIL addignoreip|delignoreip|addlogpath|dellogpath|addfailregex|delfailregex|addignoreregex|delignoreregex|maxretry|findtime|bantime VALUE")
	}
	name, key, vals := args[0], args[1], args[2:]
	if key == "idle" {
		// fail2ban-client set JAIL idle on|off: the jail's failures are not counted meanwhile.
		eng := d.current()
		id, err := eng.jailID(name)
		if err != nil {
			return errReply(err)
		}
		on, err := config.ParseBool(vals[0])
		if err != nil {
			return control.ErrorReply("set %s idle %q: on or off", name, vals[0])
		}
		eng.setIdle(id, on)
		return control.DataReply([]string{strconv.FormatBool(on)})
	}
	d.reloadMu.Lock()
	if pj := d.pending[name]; pj != nil {
		// A jail made by add: changed in place, started later.
		j := *pj
		get, err := changeJail(&j, key, vals)
		if err == nil {
			d.pending[name] = &j
		}
		d.reloadMu.Unlock()
		if err != nil {
			return control.ErrorReply("%v", err)
		}
		out, _ := jailSetting(&j, get)
		return control.DataReply(out)
	}
	running := d.current().cfg
	idx := slices.IndexFunc(running.Jails, func(j *config.Jail) bool { return j.Name == name })
	if idx < 0 {
		d.reloadMu.Unlock()
		_, err := d.current().jailID(name)
		return errReply(err)
	}
	j := *running.Jails[idx]
	get, err := changeJail(&j, key, vals)
	if err != nil {
		d.reloadMu.Unlock()
		return control.ErrorReply("%v", err)
	}
	cfg := *running
	cfg.Jails = slices.Clone(running.Jails)
	cfg.Jails[idx] = &j
	err = d.swap(&cfg)
	d.reloadMu.Unlock()
	if err != nil {
		return control.ErrorReply("%v", err)
	}
	return d.get([]string{name, get})
}

// changeJail applies one run-time setting to j (a copy; slices it changes are copied first) and
// returns the key whose value the reply shows.
func changeJail(j *config.Jail, key string, vals []string) (string, error) {
	v := vals[0]
	switch key {
	case "maxretry":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return "", fmt.Errorf("maxretry %q: a number of at least 1", v)
		}
		j.MaxRetry = n
		return key, nil
	case "maxmatches":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return "", fmt.Errorf("maxmatches %q: a number of lines, 0 or more", v)
		}
		j.MaxMatches = n
		return key, nil
	case "ignoreself":
		b, err := config.ParseBool(v)
		if err != nil {
			return "", err
		}
		j.IgnoreSelf = b
		return key, nil
	case "usedns":
		switch v {
		case "yes", "warn", "no", "raw":
			j.UseDNS = v
		default:
			return "", fmt.Errorf("usedns %q: yes, warn, no or raw", v)
		}
		return key, nil
	case "maxlines":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || j.Filter == nil {
			return "", fmt.Errorf("maxlines %q: a number of lines, at least 1", v)
		}
		f := *j.Filter
		f.MaxLines = n
		j.Filter = &f
		return key, nil
	case "findtime", "bantime":
		t, err := config.ParseDuration(v)
		if err != nil || key == "findtime" && t <= 0 {
			return "", fmt.Errorf("%s %q: a time such as 600, 10m or 1h (bantime -1: forever)", key, v)
		}
		if t < 0 {
			t = config.Forever
		}
		if key == "findtime" {
			j.FindTime = t
		} else {
			j.BanTime = t
		}
		return key, nil
	case "addignoreip", "delignoreip":
		ps, err := config.ParseIgnoreIP(v)
		if err != nil {
			return "", err
		}
		list := slices.Clone(j.IgnoreIP)
		for _, p := range ps {
			i := slices.Index(list, p)
			switch {
			case key == "addignoreip" && i < 0:
				list = append(list, p)
			case key == "delignoreip" && i < 0:
				return "", fmt.Errorf("%s is not in the jail's ignoreip", p)
			case key == "delignoreip":
				list = slices.Delete(list, i, i+1)
			}
		}
		j.IgnoreIP = list
		return "ignoreip", nil
	case "addlogpath", "dellogpath":
		list := slices.Clone(j.LogPaths)
		i := slices.IndexFunc(list, func(lp config.LogPath) bool { return lp.Pattern == v })
		if key == "dellogpath" {
			if i < 0 {
				return "", fmt.Errorf("%s is not a log path of the jail", v)
			}
			j.LogPaths = slices.Delete(list, i, i+1)
			return "logpath", nil
		}
		if _, err := os.Stat(v); err != nil {
			return "", err // as fail2ban: a log to add must exist
		}
		if i < 0 {
			lp := config.LogPath{Pattern: v}
			if len(vals) > 1 {
				lp.Tail, lp.Head = vals[1] == "tail", vals[1] == "head"
			}
			j.LogPaths = append(list, lp)
		}
		return "logpath", nil
	case "addfailregex", "delfailregex", "addignoreregex", "delignoreregex":
		if j.Filter == nil {
			return "", fmt.Errorf("the jail has no filter")
		}
		f := *j.Filter
		list := &f.FailRegex
		if strings.HasSuffix(key, "ignoreregex") {
			list = &f.IgnoreRegex
		}
		*list = slices.Clone(*list)
		if strings.HasPrefix(key, "add") {
			*list = append(*list, config.Regex{Text: v, File: "fail2ban-client set " + j.Name + " " + key})
		} else {
			i, err := strconv.Atoi(v)
			if err != nil || i < 0 || i >= len(*list) {
				return "", fmt.Errorf("%s %q: the index of a regex (get %s %s lists them)", key, v, j.Name, key[3:])
			}
			*list = slices.Delete(*list, i, i+1)
		}
		j.Filter = &f
		return key[3:], nil
	}
	return "", fmt.Errorf("set %s %s: not a setting portcullis changes at run time", j.Name, key)
}

// stopJail is fail2ban-client "stop JAIL": the jail leaves the running configuration (its bans
// are lifted, as a reload without it lifts them) until a reload or "start JAIL" brings it back.
func (d *Daemon) stopJail(name string) control.Reply {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	running := d.current().cfg
	idx := slices.IndexFunc(running.Jails, func(j *config.Jail) bool { return j.Name == name })
	if idx < 0 {
		_, err := d.current().jailID(name)
		return errReply(err)
	}
	cfg := *running
	cfg.Jails = slices.Delete(slices.Clone(running.Jails), idx, idx+1)
	if err := d.swap(&cfg); err != nil {
		return control.ErrorReply("%v", err)
	}
	return control.DataReply("Jail stopped")
}

// setDaemon is fail2ban-client "set loglevel|dbpurgeage VALUE", swapped in as a reload swaps a
// configuration; until the next reload, as in fail2ban.
func (d *Daemon) setDaemon(key, v string) control.Reply {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	running := d.current().cfg
	cfg := *running
	switch key {
	case "loglevel":
		lv, err := config.LogLevel(v)
		if err != nil {
			return control.ErrorReply("%v", err)
		}
		if d.opts.LogLevel == nil {
			return control.ErrorReply("this daemon's log level is not changed at run time")
		}
		d.opts.LogLevel.Set(config.SlogLevel(lv))
		cfg.Daemon.LogLevel = lv
	case "logtarget":
		if d.opts.SetLogTarget == nil {
			return control.ErrorReply("this daemon's log target is not changed at run time")
		}
		if err := d.opts.SetLogTarget(v); err != nil {
			return control.ErrorReply("%v", err)
		}
		cfg.Daemon.LogTarget = v
	case "dbfile":
		// fail2ban refuses it while any jail runs; portcullis's state is its dbdir, always.
		return control.ErrorReply("Cannot change database when there are jails present")
	case "dbpurgeage":
		t, err := config.ParseDuration(v)
		if err != nil {
			return control.ErrorReply("dbpurgeage %q: %v", v, err)
		}
		cfg.Daemon.DBPurgeAge = max(t, 0)
	default:
		return control.ErrorReply("set %s: not a setting portcullis changes at run time (loglevel, logtarget, dbpurgeage)", key)
	}
	if err := d.swap(&cfg); err != nil {
		return control.ErrorReply("%v", err)
	}
	return d.get([]string{key})
}

// addJail is fail2ban-client "add JAIL [BACKEND]": a jail made at run time, with fail2ban's
// defaults and nothing to read or match yet; "set JAIL addlogpath|addfailregex|…" fill it and
// "start JAIL" runs it. Like every run-time change it lasts until the next reload.
func (d *Daemon) addJail(args []string) control.Reply {
	if len(args) < 1 || len(args) > 2 {
		return control.ErrorReply("usage: add JAIL [BACKEND]")
	}
	name := args[0]
	if !config.ValidJailName(name) {
		return control.ErrorReply("add: %q is not a jail name (letters, digits, - _ . only)", name)
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if _, err := d.current().jailID(name); err == nil || d.pending[name] != nil {
		return control.ErrorReply("the jail %q already exists", name)
	}
	backend := "auto"
	if len(args) == 2 {
		backend = args[1]
	}
	if d.pending == nil {
		d.pending = map[string]*config.Jail{}
	}
	// fail2ban's server defaults for a jail made by add.
	d.pending[name] = &config.Jail{Name: name, Backend: backend, Filter: &config.Filter{Name: name},
		MaxRetry: 3, MaxMatches: 3, FindTime: 10 * time.Minute, BanTime: 10 * time.Minute, UseDNS: "warn",
		Protocol: "tcp", BlockType: "drop", Firewall: true, ChainHookInput: true}
	return control.DataReply("Added jail " + name)
}

// pendingJail is a jail made by add and not started yet, or nil.
func (d *Daemon) pendingJail(name string) *config.Jail {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	return d.pending[name]
}

// startJail is fail2ban-client "start JAIL": a jail made by add starts with what it was given;
// any other is taken from the configuration on disk, as reload JAIL takes it.
func (d *Daemon) startJail(name string) control.Reply {
	d.reloadMu.Lock()
	j := d.pending[name]
	if j == nil {
		d.reloadMu.Unlock()
		if err := d.ReloadJail(name); err != nil {
			return control.ErrorReply("%v", err)
		}
		return control.DataReply("Jail started")
	}
	defer d.reloadMu.Unlock()
	running := d.current().cfg
	cfg := *running
	cfg.Jails = append(slices.Clone(running.Jails), j)
	if err := d.swap(&cfg); err != nil {
		return control.ErrorReply("the jail %s does not start: %v", name, err)
	}
	delete(d.pending, name)
	return control.DataReply("Jail started")
}
