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
// in an /etc/fail2ban layout). --debug wins over loglevel. A configuration that does not load logs
// to stderr: the start then reports its errors there.
func daemonLogger(dir string, debug bool, stderr io.Writer) (*slog.Logger, *slog.LevelVar, *daemonLog, error) {
	d, _ := config.LoadDaemon(dir)
	level := new(slog.LevelVar)
	level.Set(config.SlogLevel(d.LogLevel))
	if debug {
		level.Set(slog.LevelDebug)
	}
	out := &daemonLog{stderr: stderr}
	if err := out.SetTarget(d.LogTarget); err != nil {
		return nil, nil, nil, err
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})), level, out, nil
}

// daemonLog is where the daemon's log goes: STDERR (the default; under systemd that is the
// journal, so SYSTEMD-JOURNAL means it too), STDOUT, SYSLOG (the local syslog daemon, facility
// daemon) or a file, appended to. The target can change at run time (fail2ban-client set
// logtarget) and a file is reopened under its name after a rotation (flushlogs). Safe for
// concurrent use.
type daemonLog struct {
	stderr io.Writer
	mu     sync.Mutex
	target string
	w      io.Writer
	close  func()
}

func (l *daemonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// SetTarget opens target and sends the log there, closing what it went to before.
func (l *daemonLog) SetTarget(target string) error {
	target = strings.TrimSpace(target)
	var w io.Writer = l.stderr
	closeFn := func() {}
	switch strings.ToUpper(target) {
	case "", "STDERR", "SYSTEMD-JOURNAL":
	case "STDOUT":
		w = os.Stdout
	case "SYSLOG":
		sw, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "portcullis")
		if err != nil {
			return fmt.Errorf("logtarget SYSLOG: %w", err)
		}
		w, closeFn = sw, func() { sw.Close() }
	default:
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("logtarget: %w", err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	l.mu.Lock()
	old := l.close
	l.target, l.w, l.close = target, w, closeFn
	l.mu.Unlock()
	if old != nil {
		old()
	}
	return nil
}

// Reopen opens the target again: a file rotated away is created anew under its name.
func (l *daemonLog) Reopen() error {
	l.mu.Lock()
	t := l.target
	l.mu.Unlock()
	return l.SetTarget(t)
}

// Close closes the target (not stderr or stdout).
func (l *daemonLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.close != nil {
		l.close()
		l.close = nil
	}
}
