package pipeline

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/matcher"
	"github.com/portcullis/portcullis/window"
)

// stages is one configuration's compiled stages, shared by every chain built from it: the daemon's
// workers of one generation, a replay, a regex run. Jail ids are indexes into jails.
type stages struct {
	jails    []*config.Jail
	m        *matcher.Matcher
	win      *window.Window // nil when only matching (regex)
	bans     *ban.Manager
	params   []window.JailParams
	evidence *evidence // the failures' lines for the audit log; nil without one
	fields   []bool    // per jail: its actions use <F-*> tags, so its bans carry the captures
}

type stageOptions struct {
	// Now is "now" for the matcher's year inference and, unless BanNow is set, the ban
	// manager's clock; BanNow is replay's event clock.
	Now, BanNow func() time.Time
	CacheDir    string // compiled Hyperscan databases; empty: none kept
	MaxKeys     int
	SelfAddrs   []netip.Addr
	Evidence    bool // keep each tracked address's last maxmatches lines
	MatchOnly   bool // no windows and no bans: what regex needs
}

// newStages compiles cfg's enabled jails. The matcher's warnings are in s.m.Warnings.
func newStages(cfg *config.Config, o stageOptions) (*stages, error) {
	if len(cfg.Jails) > 0xffff {
		return nil, fmt.Errorf("too many jails (%d)", len(cfg.Jails))
	}
	specs, params, pols := stageConfig(cfg)
	m, err := matcher.New(specs, matcher.Options{Now: o.Now, CacheDir: o.CacheDir})
	if err != nil {
		return nil, err
	}
	s := &stages{jails: cfg.Jails, m: m, params: params}
	if o.MatchOnly {
		return s, nil
	}
	s.win = window.New(params, window.Options{MaxKeys: o.MaxKeys})
	if o.BanNow == nil {
		o.BanNow = o.Now
	}
	s.bans = ban.New(pols, ban.Options{Now: o.BanNow, SelfAddrs: o.SelfAddrs})
	if o.Evidence {
		s.evidence = newEvidence(evidenceKeys)
		s.fields = make([]bool, len(cfg.Jails))
		for i, j := range cfg.Jails {
			s.fields[i] = j.UsesFields()
		}
	}
	return s, nil
}

// clock is what differs between live and replayed time.
type clock interface {
	// advance is called before failures evs are counted. It returns how many of them (at least
	// one) count before time moves on, and appends to dst the decisions the passing of time makes
	// first (bans whose end has come).
	advance(evs []matcher.Event, bans *ban.Manager, dst []ban.Decision) (int, []ban.Decision)
	// deciding is told the crossings about to be decided; decided follows their decisions.
	deciding(cs []window.Crossing)
	decided()
}

// wallClock is the daemon's: a block's failures count together, bans start at the wall clock,
// and the housekeeping lifts bans each second.
type wallClock struct{}

func (wallClock) advance(evs []matcher.Event, _ *ban.Manager, dst []ban.Decision) (int, []ban.Decision) {
	return len(evs), dst
}
func (wallClock) deciding([]window.Crossing) {}
func (wallClock) decided()                   {}

// eventClock is replay's: time is the latest failure's, bans whose end it passes are lifted before
// the next failure counts, and a ban starts at the time of the failure that crossed maxretry (as
// fail2ban's ban ticket does, even when lines are out of order). Its now is the ban manager's clock.
type eventClock struct{ latest, at time.Time }

func (c *eventClock) now() time.Time { return c.at }

func (c *eventClock) advance(evs []matcher.Event, bans *ban.Manager, dst []ban.Decision) (int, []ban.Decision) {
	if t := time.Unix(evs[0].Time, 0); t.After(c.latest) {
		c.latest, c.at = t, t
		dst = bans.Expire(dst)
	}
	return 1, dst
}

func (c *eventClock) deciding(cs []window.Crossing) {
	if len(cs) > 0 {
		c.at = time.Unix(cs[0].Time, 0)
	}
}

func (c *eventClock) decided() { c.at = c.latest }

// chain runs blocks through matcher → window → ban on one goroutine: the one path of the
// daemon's workers, replay and regex, which differ only in their clock, what they admit and
// where decisions go. A chain owns its matcher scratch and buffers; it keeps no block.
type chain struct {
	*stages
	mw    *matcher.Worker
	adder *window.Adder
	clock clock
	// admit, when set, sees each block's failures while the block is alive and returns those to
	// count (filtered in place).
	admit func(b *ingest.Block, evs []matcher.Event) []matcher.Event
	// emit receives decisions as they are made; the slice is the chain's, valid during the call.
	emit func([]ban.Decision)

	// fw finds the captures of a crossing's lines (fieldsOf); its own worker, made when first
	// needed, so the chain's multi-line state is never touched.
	fw        *matcher.Worker
	events    []matcher.Event
	crossings []window.Crossing
	decisions []ban.Decision
	evScratch evidenceScratch
}

// newChain takes mw (its scratch is the chain's until close).
func (s *stages) newChain(mw *matcher.Worker, c clock, emit func([]ban.Decision)) *chain {
	ch := &chain{stages: s, mw: mw, clock: c, emit: emit}
	if s.win != nil {
		ch.adder = s.win.NewAdder(s.bans)
	}
	return ch
}

func (c *chain) close() {
	c.mw.Close()
	if c.fw != nil {
		c.fw.Close()
	}
}

// fieldsOf returns the captures of the first of a crossing's lines that has any, as fail2ban's
// ticket keeps its first failure's data. A filter whose captures come from a connection's earlier
// lines (multi-line) yields only what the failure's own line holds.
func (c *chain) fieldsOf(jail uint16, lines []string, t int64) map[string]string {
	if c.fw == nil {
		w, err := c.m.NewWorker()
		if err != nil {
			return nil
		}
		c.fw = w
	}
	for _, l := range lines {
		if f := c.fw.Captures(int(jail), []byte(l), time.Unix(t, 0)); len(f) > 0 {
			return f
		}
	}
	return nil
}

// process runs b through the chain. A matching error (a panic on a hostile line included) skips
// the block's failures and is returned; the block stays the caller's.
func (c *chain) process(b *ingest.Block) error {
	var err error
	c.events, err = c.match(b, c.events[:0])
	if c.admit != nil {
		c.events = c.admit(b, c.events)
	}
	if c.adder == nil || len(c.events) == 0 {
		return err
	}
	if c.evidence != nil {
		c.evidence.add(b, c.events, c.jails, c.params, &c.evScratch)
	}
	for evs := c.events; len(evs) > 0; {
		var n int
		n, c.decisions = c.clock.advance(evs, c.bans, c.decisions[:0])
		if len(c.decisions) > 0 {
			c.emit(c.decisions)
		}
		c.crossings = c.adder.Add(evs[:n], c.crossings[:0])
		evs = evs[n:]
		if len(c.crossings) == 0 {
			continue
		}
		if c.evidence != nil {
			for i := range c.crossings {
				x := &c.crossings[i]
				x.Matches = c.evidence.take(x.Jail, x.Prefix)
				if c.fields[x.Jail] {
					x.Fields = c.fieldsOf(x.Jail, x.Matches, x.Time)
				}
			}
		}
		c.clock.deciding(c.crossings)
		c.decisions = c.countBans(c.adder, c.bans.Decide(c.crossings, c.decisions[:0]))
		c.clock.decided()
		if len(c.decisions) > 0 {
			c.emit(c.decisions)
		}
	}
	return err
}

// countBans hands the bans of ds to the recidive jails (ban.Manager.Offences, counted through a,
// the chain's or a CLI ban's adder) and appends the bans they decide.
func (s *stages) countBans(a *window.Adder, ds []ban.Decision) []ban.Decision {
	offs := s.bans.Offences(ds, nil)
	if len(offs) == 0 {
		return ds
	}
	return s.bans.Decide(a.AddOffences(offs, nil), ds)
}

// match runs the matcher, turning a panic (a parser bug reached by a hostile line) into an error
// for this block, so one bad line can never take the daemon down.
func (c *chain) match(b *ingest.Block, dst []matcher.Event) (out []matcher.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = dst[:0], fmt.Errorf("matcher panic: %v", r)
		}
	}()
	out, err = c.mw.Match(b, dst)
	if err != nil {
		out = out[:0]
	}
	return out, err
}

// stageConfig turns the enabled jails (jail id = index) into what the matcher, the windows and
// the ban manager take.
func stageConfig(cfg *config.Config) ([]matcher.JailSpec, []window.JailParams, []ban.Policy) {
	specs := make([]matcher.JailSpec, len(cfg.Jails))
	params := make([]window.JailParams, len(cfg.Jails))
	pols := make([]ban.Policy, len(cfg.Jails))
	for id, j := range cfg.Jails {
		specs[id] = matcher.JailSpec{ID: id, Name: j.Name, Filter: j.Filter, NoDNS: j.UseDNS == "no", Location: j.LogTimezone}
		params[id] = window.JailParams{MaxRetry: j.MaxRetry, FindTime: int64(j.FindTime / time.Second), Prefix4: j.BanPrefix4, Prefix6: j.BanPrefix6}
		var ic *ban.IgnoreCommand
		if j.IgnoreCommand != nil {
			ic = &ban.IgnoreCommand{Argv: j.IgnoreCommand}
		}
		pols[id] = ban.Policy{Recidive: j.Recidive, IgnoreCommand: ic, Escalate: j.Escalate, Name: j.Name, BanTime: j.BanTime, MaxRetry: j.MaxRetry,
			IgnoreIP: j.IgnoreIP, IgnoreSelf: j.IgnoreSelf, Increment: j.Increment}
	}
	return specs, params, pols
}
