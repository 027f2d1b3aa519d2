package sink

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// Audit writes one JSON line per ban and unban to W (portcullis.conf's auditlog), a batch in one
// write: who was banned, why, for how long, and the failures' lines (the last maxmatches).
type Audit struct{ W io.Writer }

func (Audit) Name() string { return "auditlog" }

// auditRecord is one line of the audit log.
type auditRecord struct {
	Time     string   `json:"time"`
	Op       string   `json:"op"`
	Jail     string   `json:"jail"`
	Prefix   string   `json:"prefix"`
	Reason   string   `json:"reason"`
	Start    int64    `json:"start"`
	End      int64    `json:"end"`                // 0: forever
	Duration int64    `json:"duration"`           // seconds; -1: forever
	Count    uint32   `json:"count"`              // bans of this prefix so far
	Failures int      `json:"failures,omitempty"` // bans from failures: how many were counted
	Times    []uint32 `json:"failure_times,omitempty"`
	Matches  []string `json:"matches,omitempty"` // the failures' lines, the last maxmatches
}

func (a Audit) Apply(batch []Change, now int64) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, c := range batch {
		r := auditRecord{Time: time.Unix(now, 0).UTC().Format(time.RFC3339), Op: "ban", Jail: c.Ban.Jail, Prefix: PrefixString(c.Ban.Prefix),
			Reason: c.Reason, Start: c.Ban.Start, End: c.Ban.End, Duration: -1, Count: c.Ban.Count}
		if c.Unban {
			r.Op = "unban"
		}
		if c.Ban.End != 0 {
			r.Duration = c.Ban.End - c.Ban.Start
		}
		if ev := c.Evidence; ev != nil && !c.Unban {
			r.Failures, r.Times, r.Matches = ev.Failures, ev.Times, ev.Matches
		}
		_ = enc.Encode(r)
	}
	_, err := a.W.Write(buf.Bytes())
	return err
}

// Log reports every ban and lifted ban to the daemon's log, as fail2ban's "Ban"/"Unban" lines.
// Log writes each ban and unban to the daemon's log; DryRun says "would ban" and "would unban"
// (portcullis run --dry-run, where nothing reaches the kernel).
type Log struct {
	L      *slog.Logger
	DryRun bool
}

func (Log) Name() string { return "log" }

func (l Log) Apply(batch []Change, _ int64) error {
	banMsg, unbanMsg := "ban", "unban"
	if l.DryRun {
		banMsg, unbanMsg = "would ban", "would unban"
	}
	for _, c := range batch {
		if c.Bulk {
			continue
		}
		if c.Unban {
			l.L.Info(unbanMsg, "jail", c.Ban.Jail, "prefix", c.Ban.Prefix, "reason", c.Reason)
			continue
		}
		until := "forever"
		if c.Ban.End != 0 {
			until = time.Unix(c.Ban.End, 0).UTC().Format(time.RFC3339)
		}
		l.L.Info(banMsg, "jail", c.Ban.Jail, "prefix", c.Ban.Prefix, "until", until, "count", c.Ban.Count, "reason", c.Reason)
	}
	return nil
}

// PrefixString shows single addresses without their /32 or /128.
func PrefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
