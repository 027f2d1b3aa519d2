package main

import (
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"

	"github.com/portcullis/portcullis/config"
)

// daemonLogger is the daemon's log as loglevel and logtarget say (portcullis.conf, or fail2ban.conf
// in an /etc/fail2ban layout): STDERR (the default; under systemd that is the journal, so
// SYSTEMD-JOURNAL means it too), STDOUT, SYSLOG (the local syslog daemon, facility daemon) or a
// file, appended to. --debug wins over loglevel. A configuration that does not load logs to stderr:
// the start then reports its errors there.
func daemonLogger(dir string, debug bool, stderr io.Writer) (*slog.Logger, func(), error) {
	d, _ := config.LoadDaemon(dir)
	level := slog.LevelInfo
	switch d.LogLevel {
	case "DEBUG", "TRACEDEBUG", "HEAVYDEBUG":
		level = slog.LevelDebug
	case "WARNING":
		level = slog.LevelWarn
	case "ERROR", "CRITICAL":
		level = slog.LevelError
	}
	if debug {
		level = slog.LevelDebug
	}
	var w io.Writer = stderr
	closeLog := func() {}
	switch t := strings.TrimSpace(d.LogTarget); strings.ToUpper(t) {
	case "", "STDERR", "SYSTEMD-JOURNAL":
	case "STDOUT":
		w = os.Stdout
	case "SYSLOG":
		sw, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "portcullis")
		if err != nil {
			return nil, nil, fmt.Errorf("logtarget SYSLOG: %w", err)
		}
		w, closeLog = sw, func() { sw.Close() }
	default:
		f, err := os.OpenFile(t, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("logtarget: %w", err)
		}
		w, closeLog = f, func() { f.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closeLog, nil
}
