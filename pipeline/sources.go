package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/matcher"
)

// source is one reader and the jails listening to it. The reader's own type is looked at only
// for the state it keeps across runs (setResume, positions, setCursors, cursors).
type source struct {
	pattern string // a logpath, or "journal:<jail>"
	src     *ingest.Source
	reader  ingest.Reader
}

// startSyslog opens the network syslog listeners when a jail reads them.
func (e *engine) startSyslog(opts *Options) error {
	d := e.cfg.Daemon
	var routes []ingest.SyslogRoute
	ordered := false
	for id, j := range e.jails {
		if j.Syslog {
			routes = append(routes, ingest.SyslogRoute{Jail: id, Programs: j.SyslogPrograms, Senders: j.SyslogSenders, Identities: j.SyslogIdentities})
			ordered = ordered || e.m.Stateful(id)
		}
	}
	if len(routes) == 0 || (d.SyslogUDP == "" && d.SyslogTCP == "" && d.SyslogTLS == "") {
		return nil
	}
	out := e.blocks
	if ordered {
		out = e.ordered[0] // multi-line jails see the messages in arrival order
	}
	s, err := ingest.StartSyslog(ingest.SyslogOptions{UDP: d.SyslogUDP, TCP: d.SyslogTCP, TLS: d.SyslogTLS,
		TLSCert: d.SyslogTLSCert, TLSKey: d.SyslogTLSKey, TLSClientCA: d.SyslogTLSClientCA, Allow: d.SyslogAllow,
		MaxMessage: d.SyslogMaxMessage, MaxConns: d.SyslogMaxConns, MaxConnsPerSender: d.SyslogMaxConnsPerSender,
		IdleTimeout: d.SyslogIdleTimeout, Routes: routes, Now: opts.Now, Log: opts.Log}, out)
	if err != nil {
		return err
	}
	e.syslog = s
	opts.Log.Info("syslog input", "udp", d.SyslogUDP, "tcp", d.SyslogTCP, "tls", d.SyslogTLS, "jails", len(routes))
	return nil
}

// withLogs returns cfg without the jails that would watch nothing — file jails none of whose
// logpaths matches a file, with no journal to read instead — when they set skip_if_nologs, and
// an error naming them when they do not (fail2ban refuses to start such a jail too).
func withLogs(cfg *config.Config, log *slog.Logger) (*config.Config, error) {
	var keep []*config.Jail
	var missing []string
	for _, j := range cfg.Jails {
		if len(j.LogPaths) == 0 || j.Journal || j.Syslog || anyLogExists(j) || journalFallback(j, cfg.Daemon.Journalctl) {
			keep = append(keep, j)
			continue
		}
		var pats []string
		for _, lp := range j.LogPaths {
			pats = append(pats, lp.Pattern)
		}
		if j.SkipIfNoLogs {
			log.Warn("no log file for the jail and no journal to read instead; the jail is skipped (skip_if_nologs)", "jail", j.Name, "logpath", pats)
			continue
		}
		missing = append(missing, fmt.Sprintf("jail %s: no log file matches %s, and there is no journal to read instead (set skip_if_nologs = true to skip the jail)", j.Name, strings.Join(pats, " ")))
	}
	if len(missing) > 0 {
		return nil, errors.New(strings.Join(missing, "; "))
	}
	if len(keep) == len(cfg.Jails) {
		return cfg, nil
	}
	out := *cfg
	out.Jails = keep
	return &out, nil
}

// anyLogExists reports whether one of j's logpaths matches a file now.
func anyLogExists(j *config.Jail) bool {
	for _, lp := range j.LogPaths {
		if m, _ := filepath.Glob(lp.Pattern); len(m) > 0 {
			return true
		}
	}
	return false
}

// journalFallback reports whether a file jail should read the journal: backend auto, no logpath
// matches an existing file, the filter has a journalmatch and journalctl is installed.
func journalFallback(j *config.Jail, journalctl string) bool {
	if j.Backend != "auto" || j.Syslog || len(j.LogPaths) == 0 || j.Filter == nil || j.Filter.JournalMatch == "" || anyLogExists(j) {
		return false
	}
	return ingest.JournalAvailable(journalctl)
}

// setResume gives every file reader the positions of an earlier run or generation.
func (e *engine) setResume(m map[string]ingest.Position) {
	for _, s := range e.sources {
		if t, ok := s.reader.(*ingest.Tailer); ok {
			t.SetResume(m)
		}
	}
}

// setCursors gives journal sources the cursors of an earlier run.
func (e *engine) setCursors(m map[string]string) {
	for _, s := range e.sources {
		if j, ok := s.reader.(*ingest.Journal); ok && m[s.pattern] != "" {
			j.SetCursor(m[s.pattern])
		}
	}
}

// cursors collects every journal source's cursor.
func (e *engine) cursors() map[string]string {
	out := map[string]string{}
	for _, s := range e.sources {
		if j, ok := s.reader.(*ingest.Journal); ok {
			if c := j.Cursor(); c != "" {
				out[s.pattern] = c
			}
		}
	}
	return out
}

// positions collects how far every file has been read.
func (e *engine) positions() []ingest.Position {
	var out []ingest.Position
	for _, s := range e.sources {
		if t, ok := s.reader.(*ingest.Tailer); ok {
			out = append(out, t.Positions()...)
		}
	}
	return out
}

// files is what jail id reads, for status's File list: the files its patterns match now (a
// pattern that matches none is shown as written), the journal, the syslog input.
func (e *engine) files(id int) []string {
	var out []string
	for _, s := range e.sources {
		if s.src.Jails.Has(id) {
			out = append(out, s.reader.Reading()...)
		}
	}
	if e.jails[id].Syslog {
		out = append(out, "syslog")
	}
	return out
}

// needsOrder reports whether a jail reading s keeps state across lines.
func (e *engine) needsOrder(s *source) bool {
	for id := range e.jails {
		if s.src.Jails.Has(id) && e.m.Stateful(id) {
			return true
		}
	}
	return false
}

// buildSources makes one reader per distinct logpath (jails sharing a file share its reader) and
// one journalctl per journal jail.
func (e *engine) buildSources(opts *Options) {
	cfg := e.cfg
	// A backend = auto jail whose log files do not exist, on a machine with journalctl (Debian 12
	// has no auth.log without rsyslog), reads the journal instead when its filter says how to
	// match it — instead, not as well: were the file to appear later, the same events would come
	// from both and count twice. Installing rsyslog then takes a reload.
	fallback := make(map[int]bool)
	for id, j := range cfg.Jails {
		if !j.Journal && journalFallback(j, cfg.Daemon.Journalctl) {
			fallback[id] = true
		}
	}
	// One reader per distinct logpath; jails sharing a file share its reader.
	byPattern := make(map[string]*source)
	for id, j := range cfg.Jails {
		if fallback[id] {
			continue
		}
		for _, lp := range j.LogPaths {
			s, ok := byPattern[lp.Pattern]
			if !ok {
				s = &source{pattern: lp.Pattern, src: &ingest.Source{Name: lp.Pattern, Stats: &ingest.SourceStats{}}}
				byPattern[lp.Pattern] = s
				e.sources = append(e.sources, s)
			}
			s.src.Jails = s.src.Jails.With(id)
		}
	}
	for _, s := range e.sources {
		// A backlog starts at the end only when every jail reading the file says tail; failures
		// in it count back to the longest findtime of those jails.
		head, tail, longest := false, true, time.Duration(0)
		for id, j := range cfg.Jails {
			if !s.src.Jails.Has(id) {
				continue
			}
			longest = max(longest, j.FindTime)
			for _, lp := range j.LogPaths {
				if lp.Pattern == s.pattern {
					head = head || lp.Head
					tail = tail && lp.Tail
				}
			}
		}
		now := e.now
		stamp := func(line []byte) (int64, bool) { return matcher.LineTime(line, now(), time.Local) }
		oldest := func() int64 { return now().Add(-longest).Unix() }
		var format *ingest.JSONFormat
		for id, j := range cfg.Jails {
			if s.src.Jails.Has(id) && j.JSON {
				format = &ingest.JSONFormat{Time: j.JSONTime, Host: j.JSONHost, Message: j.JSONMessage, Now: opts.Now}
				break
			}
		}
		s.reader = ingest.NewTailer(ingest.TailOptions{Pattern: s.pattern, Head: head, Tail: tail, Stamp: stamp, Oldest: oldest,
			Source: s.src, Poll: opts.Poll, Log: opts.Log, Format: format})
	}
	// One journalctl per journal jail: each has its own matches.
	for id, j := range cfg.Jails {
		if !j.Journal && !fallback[id] {
			continue
		}
		if fallback[id] {
			opts.Log.Warn("no log file for the jail; reading the systemd journal instead (reload once the file exists)", "jail", j.Name, "logpath", j.LogPaths[0].Pattern, "journalmatch", j.Filter.JournalMatch)
			j.JournalMatch = j.Filter.JournalMatch
		}
		name := "journal:" + j.Name
		src := &ingest.Source{Name: name, Jails: ingest.NewJailSet(id), Stats: &ingest.SourceStats{}}
		e.sources = append(e.sources, &source{pattern: name, src: src, reader: ingest.NewJournal(ingest.JournalOptions{
			Command: cfg.Daemon.Journalctl, Match: j.JournalMatch, Source: src, Log: opts.Log,
			Since: e.now().Add(-j.FindTime)})})
	}
}
