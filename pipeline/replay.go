package pipeline

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/matcher"
	"github.com/portcullis/portcullis/window"
)

// ReplayOptions configure a replay: the configured jails run over logs by event time, with no
// firewall and no store — what the daemon would have decided.
type ReplayOptions struct {
	ConfigDir string
	Logs      []string  // files (gzip/zstd archives too); "-" reads Stdin
	Stdin     io.Reader // for "-"
	From, To  time.Time // only events within [From, To) count; zero: no bound
	Now       func() time.Time
	// Progress, when set, is called every few seconds with the lines read so far.
	Progress func(lines uint64)
	// Warn, when set, receives the configuration's warnings.
	Warn func(string)
}

// ReplayDecision is one ban or unban the daemon would have made.
type ReplayDecision struct {
	Time     time.Time
	Op       string // "ban", "unban" or "prolong" (a ban in force ends later: End)
	Jail     string
	Prefix   netip.Prefix
	Failures int           // failures that crossed maxretry (bans)
	Duration time.Duration // ban length; negative: forever
	End      time.Time     // when the ban ends (bans, prolongs) or ended (unbans); zero: never
	Count    uint32        // bans of the prefix so far, this one included: in the jail, or in every jail with bantime.overalljails
}

// ReplayStats sums up a replay.
type ReplayStats struct {
	Lines    uint64
	Failures map[string]uint64
	Bans     map[string]uint64
	Elapsed  time.Duration
}

// Replay runs every enabled jail over the logs, in order, and reports each decision to emit as it
// is made. Bans start at the event time of the failure that crossed maxretry and are lifted when
// the replayed time passes their end.
func Replay(opts ReplayOptions, emit func(ReplayDecision) error) (ReplayStats, error) {
	start := time.Now()
	st := ReplayStats{Failures: map[string]uint64{}, Bans: map[string]uint64{}}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := config.Load(opts.ConfigDir, config.Options{})
	if err != nil {
		return st, err
	}
	if opts.Warn != nil {
		for _, w := range cfg.Warnings {
			opts.Warn(w)
		}
	}
	specs, params, pols := stageConfig(cfg)
	var all ingest.JailSet
	for id := range cfg.Jails {
		all = all.With(id)
	}
	m, err := matcher.New(specs, matcher.Options{Now: opts.Now, CacheDir: UserCacheDir()})
	if err != nil {
		return st, err
	}
	defer m.Close()
	w, err := m.NewWorker()
	if err != nil {
		return st, err
	}
	defer w.Close()
	win := window.New(params, window.Options{MaxKeys: 10_000_000})
	// clock is the replayed time: the latest event seen, when bans expire. A ban starts at the
	// time of the failure that crossed maxretry (decideAt), as fail2ban's ban ticket does.
	var clock, decideAt time.Time
	bans := ban.New(pols, ban.Options{Now: func() time.Time { return decideAt }})
	adder := win.NewAdder(bans)

	recidive := recidiveJails(cfg)
	var events []matcher.Event
	var crossings []window.Crossing
	var decisions []ban.Decision
	failures := 0
	report := func(ds []ban.Decision, t time.Time) error {
		for _, d := range ds {
			rd := ReplayDecision{Time: t, Op: d.Op.String(), Jail: cfg.Jails[d.Jail].Name, Prefix: d.Prefix, Count: d.JailCount}
			if cfg.Jails[d.Jail].Increment.OverallJails {
				rd.Count = d.Count // fail2ban's ban count is then the address's in every jail
			}
			if d.End != 0 {
				rd.End = time.Unix(d.End, 0)
			}
			switch {
			case d.Reason == ban.Prolonged && d.Op == ban.OpUnban:
				continue // the prolong that follows says it
			case d.Reason == ban.Prolonged:
				rd.Op = "prolong"
			case d.Op == ban.OpBan:
				rd.Time = time.Unix(d.Start, 0)
				st.Bans[rd.Jail]++
				rd.Failures = failures
				rd.Duration = -1
				if d.End != 0 {
					rd.Duration = time.Duration(d.End-d.Start) * time.Second
				}
			default:
				rd.Time = time.Unix(d.End, 0)
			}
			if err := emit(rd); err != nil {
				return err
			}
		}
		return nil
	}
	src := &ingest.Source{Name: "replay", Jails: all, Stats: &ingest.SourceStats{}}
	lastProgress := time.Now()
	for _, path := range opts.Logs {
		var r io.ReadCloser
		if path == "-" {
			r, err = ingest.Decompress(opts.Stdin)
		} else {
			r, err = ingest.OpenLog(path)
		}
		if err != nil {
			return st, fmt.Errorf("cannot read %s: %w", path, err)
		}
		var stopErr error // from reporting, as opposed to reading
		err = ingest.ReadAll(r, src, nil, func(b *ingest.Block) error {
			events, stopErr = w.Match(b, events[:0])
			ingest.PutBlock(b)
			if stopErr != nil {
				return stopErr
			}
			// Keep the events inside the window of interest, in the order of the log, as the
			// daemon counts them.
			kept := events[:0]
			for _, ev := range events {
				t := time.Unix(ev.Time, 0)
				if (!opts.From.IsZero() && t.Before(opts.From)) || (!opts.To.IsZero() && !t.Before(opts.To)) {
					continue
				}
				kept = append(kept, ev)
			}
			for i := range kept {
				ev := kept[i : i+1]
				if t := time.Unix(ev[0].Time, 0); t.After(clock) {
					clock, decideAt = t, t
					// Lift the bans whose time is up before counting the next failure.
					if stopErr = report(bans.Expire(decisions[:0]), clock); stopErr != nil {
						return stopErr
					}
				}
				st.Failures[cfg.Jails[ev[0].Jail].Name]++
				crossings = adder.Add(ev, crossings[:0])
				if len(crossings) > 0 {
					decideAt = time.Unix(crossings[0].Time, 0)
				}
				decisions = escalate(recidive, adder, bans, bans.Decide(crossings, decisions[:0]))
				decideAt = clock
				if len(decisions) > 0 {
					failures = crossings[0].Count
					if stopErr = report(decisions, clock); stopErr != nil {
						return stopErr
					}
				}
			}
			if opts.Progress != nil && time.Since(lastProgress) > 5*time.Second {
				opts.Progress(src.Stats.Lines.Load())
				lastProgress = time.Now()
			}
			return nil
		})
		r.Close()
		if stopErr != nil {
			return st, stopErr
		}
		if err != nil {
			return st, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	st.Lines = src.Stats.Lines.Load()
	st.Elapsed = time.Since(start)
	return st, nil
}
