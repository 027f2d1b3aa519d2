package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// readFail2banConf takes what portcullis shares with fail2ban's own settings when dir is an
// /etc/fail2ban layout (fail2ban.conf, then fail2ban.local): loglevel, logtarget, dbpurgeage, and
// dbfile as the database to take over. portcullis.conf, read after, wins where both set a thing.
// Settings that only mean something to fail2ban's server are noted, not used.
func readFail2banConf(dir string, out *Daemon, errs *Errors) {
	conf := filepath.Join(dir, "fail2ban.conf")
	if _, err := os.Stat(conf); err != nil {
		return
	}
	ini := NewINI()
	ini.ReadFile(conf, false, errs)
	ini.ReadFile(filepath.Join(dir, "fail2ban.local"), false, errs)
	s := ini.Section("Definition")
	if s == nil {
		s = newSection("Definition")
	}
	// Debian's fail2ban.conf sets them in [DEFAULT]; [Definition] (and .local) override.
	lookup := ini.lookup("Definition", s, ini.Section("DEFAULT"))
	for _, k := range []string{"loglevel", "logtarget", "dbpurgeage", "dbfile", "socket", "pidfile", "syslogsocket", "allowipv6", "dbmaxmatches"} {
		v, ok := lookup(k)
		if !ok {
			continue
		}
		text, ierr := Interpolate(v, lookup)
		if ierr != nil {
			*errs = append(*errs, ierr)
			continue
		}
		text = strings.TrimSpace(text)
		switch k {
		case "loglevel":
			lv, err := logLevel(text)
			if err != nil {
				errs.AddAt(v, k, err.Error())
				continue
			}
			out.LogLevel = lv
		case "logtarget":
			out.LogTarget = text
		case "dbpurgeage":
			d, err := ParseDuration(text)
			if err != nil {
				errs.AddAt(v, k, err.Error())
				continue
			}
			out.DBPurgeAge = max(d, 0)
		case "dbfile":
			if text != "" && text != ":memory:" && !strings.EqualFold(text, "none") {
				out.Fail2banDB = text
				out.Notes = append(out.Notes, fmt.Sprintf("fail2ban.conf dbfile %s: fail2ban's bans are taken over from it (import_fail2ban); portcullis keeps its own state in dbdir", text))
			}
		case "socket", "pidfile", "syslogsocket", "allowipv6", "dbmaxmatches":
			out.Notes = append(out.Notes, fmt.Sprintf("fail2ban.conf %s = %s is fail2ban's server's; portcullis does not use it (see docs/migrating-from-fail2ban.md)", k, text))
		}
	}
}

// LogLevel reads a loglevel value (for fail2ban-client set loglevel).
func LogLevel(s string) (string, error) { return logLevel(s) }

// SlogLevel is the log/slog level of a loglevel name: DEBUG and finer are debug, NOTICE is info.
func SlogLevel(name string) slog.Level {
	switch name {
	case "DEBUG", "TRACEDEBUG", "HEAVYDEBUG":
		return slog.LevelDebug
	case "WARNING":
		return slog.LevelWarn
	case "ERROR", "CRITICAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// logLevel reads fail2ban's loglevel: a name or its number (fail2ban's, from Python's logging).
func logLevel(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		switch {
		case n <= 10:
			return "DEBUG", nil
		case n <= 20:
			return "INFO", nil
		case n <= 30:
			return "WARNING", nil
		default:
			return "ERROR", nil
		}
	}
	switch s {
	case "DEBUG", "TRACEDEBUG", "HEAVYDEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL":
		return s, nil
	case "WARN":
		return "WARNING", nil
	}
	return "", fmt.Errorf("%q: CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG", s)
}
