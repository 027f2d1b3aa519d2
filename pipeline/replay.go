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
)

// ReplayOptions configure a replay: the configured jails run over logs by event time, with no
// firewall and no store — what the daemon would have decided.
type ReplayOptions struct {
	ConfigDir string
	Logs      []string  // files (gzip/zstd archives too); "-" reads Stdin
	Stdin     io.Reader // for "-"
	From, To  time.Time // only events within [From, To) count; zero: no bound
	Now       func() time.Time
	// Progress, when set, is called after every block with the bytes of the files read so far
	// (archives as stored) and the lines.
	Progress func(bytes, lines uint64)
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
	var all ingest.JailSet
	for id := range cfg.Jails {
		all = all.With(id)
	}
	clk := &eventClock{}
	stg, err := newStages(cfg, stageOptions{Now: opts.Now, BanNow: clk.now, CacheDir: UserCacheDir(), MaxKeys: 10_000_000})
	if err != nil {
		return st, err
	}
	defer stg.m.Close()
	w, err := stg.m.NewWorker()
	if err != nil {
		return st, err
	}
	var emitErr error // from reporting, as opposed to reading
	report := func(ds []ban.Decision) {
		for _, d := range ds {
			if emitErr != nil {
				return
			}
			rd := ReplayDecision{Time: clk.latest, Op: d.Op.String(), Jail: cfg.Jails[d.Jail].Name, Prefix: d.Prefix, Count: d.JailCount}
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
				if d.Evidence != nil {
					rd.Failures = d.Evidence.Failures
				}
				rd.Duration = -1
				if d.End != 0 {
					rd.Duration = time.Duration(d.End-d.Start) * time.Second
				}
			default:
				rd.Time = time.Unix(d.End, 0)
			}
			emitErr = emit(rd)
		}
	}
	c := stg.newChain(w, clk, report)
	defer c.close()
	// Only events within [From, To) count, in the order of the log, as the daemon counts them.
	c.admit = func(_ *ingest.Block, events []matcher.Event) []matcher.Event {
		kept := events[:0]
		for _, ev := range events {
			t := time.Unix(ev.Time, 0)
			if (!opts.From.IsZero() && t.Before(opts.From)) || (!opts.To.IsZero() && !t.Before(opts.To)) {
				continue
			}
			st.Failures[cfg.Jails[ev.Jail].Name]++
			kept = append(kept, ev)
		}
		return kept
	}
	src := &ingest.Source{Name: "replay", Jails: all, Stats: &ingest.SourceStats{}}
	var read uint64
	for _, path := range opts.Logs {
		var r io.ReadCloser
		if path == "-" {
			r, err = ingest.Decompress(opts.Stdin)
		} else {
			r, err = ingest.OpenLogCounted(path, func(n int) { read += uint64(n) })
		}
		if err != nil {
			return st, fmt.Errorf("cannot read %s: %w", path, err)
		}
		var stopErr error
		err = ingest.ReadAll(r, src, nil, func(b *ingest.Block) error {
			stopErr = c.process(b)
			ingest.PutBlock(b)
			if stopErr == nil {
				stopErr = emitErr
			}
			if stopErr != nil {
				return stopErr
			}
			if opts.Progress != nil {
				opts.Progress(read, src.Stats.Lines.Load())
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
