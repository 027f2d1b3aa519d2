package main

import (
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
	"sync"

	"github.com/portcullis/portcullis/config"
)

// daemonLogger is the daemon's log as loglevel and logtarget say (portcullis.conf, or fail2ban.conf
// in an /etc/fail2ban layout): STDERR (the default; under systemd that is the journal, so
// SYSTEMD-JOURNAL means it too), STDOUT, SYSLOG (the local syslog daemon, facility daemon) or a
// file, appended to and reopened by reopen (fail2ban-client flushlogs, after a rotation). --debug
// wins over loglevel. A configuration that does not load logs to stderr: the start then reports
// its errors there.
func daemonLogger(dir string, debug bool, stderr io.Writer) (log *slog.Logger, level *slog.LevelVar, closeLog func(), reopen func() error, err error) {
	d, _ := config.LoadDaemon(dir)
	level = new(slog.LevelVar)
	level.Set(config.SlogLevel(d.LogLevel))
	if debug {
		level.Set(slog.LevelDebug)
	}
	var w io.Writer = stderr
	closeLog, reopen = func() {}, func() error { return nil }
	switch t := strings.TrimSpace(d.LogTarget); strings.ToUpper(t) {
	case "", "STDERR", "SYSTEMD-JOURNAL":
	case "STDOUT":
		w = os.Stdout
	case "SYSLOG":
		sw, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "portcullis")
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("logtarget SYSLOG: %w", err)
		}
		w, closeLog = sw, func() { sw.Close() }
	default:
		lf := &logFile{path: t}
		if err := lf.Reopen(); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("logtarget: %w", err)
		}
		w, closeLog, reopen = lf, lf.Close, lf.Reopen
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), level, closeLog, reopen, nil
}

// logFile is a log file that can be reopened under its name after a rotation moved it away.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path again (appending, creating it) and closes the file held before.
func (l *logFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (l *logFile) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Close()
}
