package matcher

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flier/gohs/hyperscan"
	"github.com/portcullis/portcullis/config"
)

// JailSpec is one jail as the matcher sees it. ID is the jail's index in the pipeline's jail table
// and its bit in ingest.JailSet.
type JailSpec struct {
	ID     int
	Name   string
	Filter *config.Filter
	// NoDNS leaves host names out of <HOST> for this jail (usedns = no).
	NoDNS bool
	// Location is the zone of this jail's stamps without one (logtimezone); Options.Location
	// when nil.
	Location *time.Location
}

// Options tune the matcher.
type Options struct {
	// Now is the clock used for year inference; time.Now when nil.
	Now func() time.Time
	// Location is the zone of stamps without one; time.Local when nil.
	Location *time.Location
	// CacheDir keeps compiled databases for the next start (see dbcache.go); none when empty.
	CacheDir string
}

// Mode says how a regex runs. In every mode a line Hyperscan reports is decided by the confirming
// regex (PCRE2, or Go's regexp where PCRE2 cannot take it).
type Mode uint8

func (m Mode) String() string {
	return [...]string{"exact", "prefilter", "fallback"}[m]
}

type jailRx struct {
	name  string
	dates *dateDetector
	pref  *rx // prefregex: gates the line and hands its <F-CONTENT> to the failregexes
	ml    *mlState
	loc   *time.Location // zone of stamps without one
	// lastDate is the last date found in a line (unix ns), for lines without one.
	lastDate atomic.Int64
	// maxLines > 1: failregexes see a buffer of the last maxLines lines (fail2ban's maxlines).
	maxLines int
	buf      *lineBuffer
	fail     []rx
	ignore   []rx
	// slow: some regex of this jail could not go into Hyperscan; every line of the jail's blocks is
	// tried with Go regexp instead (correct, slower, warned about at load).
	slow bool
	// contentGroup: the PCRE2 group of the prefregex's <F-CONTENT>, which the failregexes read
	// (-1: none, or no PCRE2 prefregex).
	contentGroup int
	// canDefer: the connection id (<F-MLFID>) comes from the prefregex alone (PCRE2 group
	// mlfidGroup); a line whose candidates all end a connection as helpers can then wait for its
	// id before its failregexes run (Worker.planDeferred).
	canDefer   bool
	mlfidGroup int
}

// each calls f on every confirming regex of the jail: prefregex, failregexes, ignoreregexes.
func (jr *jailRx) each(f func(r *rx)) {
	if jr.pref != nil {
		f(jr.pref)
	}
	for i := range jr.fail {
		f(&jr.fail[i])
	}
	for i := range jr.ignore {
		f(&jr.ignore[i])
	}
}

type patRef struct {
	jail   uint16
	idx    uint16
	ignore bool
}

// Matcher holds the compiled database and per-jail confirm regexes. It is safe for concurrent use
// through one Worker per goroutine.
type Matcher struct {
	defaultDates *dateDetector
	db           *hxDB
	refs         []patRef
	jails        []jailRx // indexed by jail ID
	opts         Options
	Stats        []JailStats // indexed by jail ID
	// Warnings lists regexes that run prefiltered or without Hyperscan.
	Warnings []string
	// RegexLimit counts matches PCRE2 gave up on (backtracking limits), which Go's regexp or
	// regexp2 then answered.
	RegexLimit atomic.Uint64
	// pairs is the most capture groups (plus one) of any PCRE2 regex: the size of match data.
	pairs int
}

// CompileError names the filter, the regex and why it could not be compiled.
type CompileError struct {
	Jail   string
	Filter string
	File   string
	Line   int
	Kind   string // failregex or ignoreregex
	Index  int
	Reason string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("%s:%d: jail %s, filter %s: %s[%d]: %s", e.File, e.Line, e.Jail, e.Filter, e.Kind, e.Index, e.Reason)
}

// Errors lists every regex that could not be compiled.
type Errors []*CompileError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

const hsFlags = hyperscan.MultiLine

// New compiles every jail's regexes into one database.
func New(jails []JailSpec, opts Options) (*Matcher, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	maxID := -1
	for _, j := range jails {
		maxID = max(maxID, j.ID)
	}
	m := &Matcher{opts: opts, jails: make([]jailRx, maxID+1), Stats: make([]JailStats, maxID+1)}
	dd, err := newDateDetector("")
	if err != nil {
		return nil, fmt.Errorf("default date templates: %w", err)
	}
	m.defaultDates = dd
	var errs Errors
	var cands []cand
	for _, j := range jails {
		jr := &m.jails[j.ID]
		jr.name = j.Name
		jr.dates = m.defaultDates
		jr.loc = opts.Location
		if j.Location != nil {
			jr.loc = j.Location
		}
		if j.Filter == nil {
			continue
		}
		if dp := j.Filter.DatePattern; dp != "" {
			d, err := newDateDetector(dp)
			if err != nil {
				errs = append(errs, &CompileError{Jail: j.Name, Filter: j.Filter.Name, File: j.Filter.File, Kind: "datepattern", Reason: err.Error()})
			} else {
				jr.dates = d
			}
		}
		var jpats []*hyperscan.Pattern
		var jrefs []patRef
		translateAll := func(list []config.Regex) ([]translated, []error) {
			trs, errs := make([]translated, len(list)), make([]error, len(list))
			for i, r := range list {
				trs[i], errs[i] = translate(r.Text, !j.NoDNS)
			}
			return trs, errs
		}
		// The jail's failregexes, translated before any is compiled: each picks a literal the
		// others lack (their text without group syntax, failFlat).
		failTr, failErr := translateAll(j.Filter.FailRegex)
		failFlat := make([]string, len(failTr))
		for i := range failTr {
			if failErr[i] == nil {
				failFlat[i] = groupless(failTr[i].expr)
			}
		}
		add := func(kind string, list []config.Regex, trs []translated, trErrs []error, ignore bool) []rx {
			out := make([]rx, 0, len(list))
			for i, r := range list {
				fail := func(reason string) {
					errs = append(errs, &CompileError{Jail: j.Name, Filter: j.Filter.Name, File: r.File, Line: r.Line, Kind: kind, Index: i, Reason: reason})
				}
				tr, err := trs[i], trErrs[i]
				if err != nil {
					fail(err.Error())
					continue
				}
				// The id may come from the prefregex, or (multi-line) from another line by <F-MLFID>.
				if !ignore && !tr.hasHost && j.Filter.PrefRegex == nil && !strings.Contains(tr.expr, "(?P<mlfid>") && !strings.Contains(tr.expr, "(?P<nofail>") {
					fail("has no <HOST> (or <ADDR>, <IP4>, <IP6>, <DNS>, <SUBNET>, <F-ID>) to take the failure id from")
					continue
				}
				expr := tr.expr
				if j.Filter.MaxLines > 1 {
					expr = "(?m)" + expr // fail2ban compiles buffered regexes with re.MULTILINE
				}
				c, err := compileRx(r.Text, expr)
				if err != nil {
					fail(err.Error())
					continue
				}
				var others []string
				if !ignore {
					for k, o := range failTr {
						if failErr[k] == nil && o.expr != tr.expr {
							others = append(others, failFlat[k])
						}
					}
				}
				hsx := hsExpr(tr.expr, others)
				p := hyperscan.NewPattern(hsx, hsFlags)
				if _, err := p.Info(); err == nil {
					c.mode = Exact
				} else if p2 := hyperscan.NewPattern(hsx, hsFlags|hyperscan.PrefilterMode); func() bool { _, e := p2.Info(); return e == nil }() {
					// Python-only constructs (lookaround, back-references, conditionals): Hyperscan
					// finds a superset of the lines, the confirming regex decides. Normal, not a warning.
					c.mode = Prefilter
					p = p2
				} else {
					c.mode = Fallback
					jr.slow = true
					m.Warnings = append(m.Warnings, fmt.Sprintf("jail %s %s[%d]: Hyperscan cannot compile it (%v); the jail's lines all go through Go regexp", j.Name, kind, i, err))
				}
				if c.mode != Fallback {
					jpats = append(jpats, p)
					jrefs = append(jrefs, patRef{jail: uint16(j.ID), idx: uint16(len(out)), ignore: ignore})
				}
				out = append(out, c)
			}
			return out
		}
		if j.Filter.MaxLines > 1 {
			// Buffered jails are matched line by line on the joined buffer, not by Hyperscan.
			jr.maxLines, jr.slow, jr.buf = j.Filter.MaxLines, true, &lineBuffer{}
		}
		if pr := j.Filter.PrefRegex; pr != nil {
			tr, err := translate(pr.Text, !j.NoDNS)
			var c rx
			if err == nil {
				expr := tr.expr
				if jr.maxLines > 1 {
					expr = "(?m)" + expr
				}
				c, err = compileRx(pr.Text, expr)
			}
			if err != nil {
				errs = append(errs, &CompileError{Jail: j.Name, Filter: j.Filter.Name, File: pr.File, Line: pr.Line, Kind: "prefregex", Reason: err.Error()})
			} else {
				jr.pref = &c
			}
		}
		jr.fail = add("failregex", j.Filter.FailRegex, failTr, failErr, false)
		ignTr, ignErr := translateAll(j.Filter.IgnoreRegex)
		jr.ignore = add("ignoreregex", j.Filter.IgnoreRegex, ignTr, ignErr, true)
		jr.each(func(r *rx) {
			if jr.ml == nil && strings.Contains(r.expr, "(?P<mlfid>") {
				jr.ml = newMLState()
			}
			if r.pc != nil {
				m.pairs = max(m.pairs, r.pc.pairs)
			}
		})
		jr.planDeferral()
		for i, p := range jpats {
			cands = append(cands, cand{pat: p, ref: jrefs[i]})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := m.build(cands); err != nil {
		return nil, err
	}
	return m, nil
}

// Close frees the database and the compiled regexes; no worker may use the matcher after.
func (m *Matcher) Close() {
	m.db.close()
	m.db = nil
	for i := range m.jails {
		m.jails[i].each(func(r *rx) { r.pc.free() })
	}
}

// Stateful reports whether a jail keeps state from line to line (multi-line <F-MLFID> tracking or
// a maxlines buffer), so its lines must be matched in order.
func (m *Matcher) Stateful(jail int) bool {
	jr := &m.jails[jail]
	return jr.ml != nil || jr.maxLines > 1
}

// Modes returns the mode of each failregex of a jail, for status and tests.
func (m *Matcher) Modes(jail int) []Mode {
	var out []Mode
	for _, r := range m.jails[jail].fail {
		out = append(out, r.mode)
	}
	return out
}

// planDeferral decides whether the jail's lines may wait for their connection id (canDefer) and
// which failregexes only ever end a connection as helpers (rx.endsHelper).
func (jr *jailRx) planDeferral() {
	jr.contentGroup = -1
	if jr.pref != nil && jr.pref.pc != nil {
		if i := slices.Index(jr.pref.names, "content"); i >= 0 {
			jr.contentGroup = jr.pref.pc.named[i]
		}
	}
	if jr.ml == nil || jr.pref == nil || jr.pref.pc == nil || jr.maxLines > 1 || jr.contentGroup < 0 {
		return
	}
	mlfid := slices.Index(jr.pref.names, "mlfid")
	if mlfid < 0 {
		return
	}
	for i := range jr.fail {
		if slices.Contains(jr.fail[i].names, "mlfid") {
			return // the id could come from the failregex: only its match tells
		}
	}
	jr.canDefer = true
	jr.mlfidGroup = jr.pref.pc.named[mlfid]
	for i := range jr.fail {
		r := &jr.fail[i]
		if r.pc == nil || !slices.Contains(r.names, "mlfforget") {
			continue // (parsing every pattern was 4% of regex's start-up)
		}
		always := alwaysCaptured(r.expr)
		r.endsHelper = always["mlfforget"] && (always["nofail"] || always["mlfgained"])
	}
}

// alwaysCaptured returns the named groups that take part in every match of expr: those reached
// from the top through concatenations, groups and repeats of at least one (not through an
// alternation or an optional part). A pattern Go's parser does not take (lookaround, conditionals)
// gives none.
func alwaysCaptured(expr string) map[string]bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	var walk func(r *syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		switch {
		case r.Op == syntax.OpCapture:
			if r.Name != "" {
				out[r.Name] = true
			}
			walk(r.Sub[0])
		case r.Op == syntax.OpConcat:
			for _, sub := range r.Sub {
				walk(sub)
			}
		case r.Op == syntax.OpPlus, r.Op == syntax.OpRepeat && r.Min >= 1:
			walk(r.Sub[0])
		}
	}
	walk(re)
	return out
}

// cand is a pattern on its way into the database.
type cand struct {
	pat *hyperscan.Pattern
	ref patRef
}

// build compiles the database. When Hyperscan rejects one expression (some errors, such as a pattern
// that can match the empty buffer, show only at compile time), that expression is demoted — exact to
// prefilter, prefilter to Go-only for its whole jail — and the build is tried again.
func (m *Matcher) build(cands []cand) error {
	for attempt := 0; ; attempt++ {
		var pats []*hyperscan.Pattern
		m.refs = m.refs[:0]
		for _, c := range cands {
			if m.jails[c.ref.jail].slow {
				continue
			}
			c.pat.Id = len(m.refs)
			m.refs = append(m.refs, c.ref)
			pats = append(pats, c.pat)
		}
		if len(pats) == 0 {
			return nil
		}
		if db := loadCachedDB(m.opts.CacheDir, pats); db != nil {
			m.db = db
			return nil
		}
		db, err := hyperscan.NewBlockDatabase(pats...)
		if err == nil {
			data, err := db.Marshal()
			db.Close()
			if err == nil {
				m.db, err = newHXDB(data)
			}
			if err != nil {
				return fmt.Errorf("cannot build the Hyperscan database of %d patterns: %w", len(pats), err)
			}
			storeCachedDB(m.opts.CacheDir, pats, data)
			return nil
		}
		var ce *hyperscan.CompileError
		if !errors.As(err, &ce) || ce.Expression < 0 || ce.Expression >= len(pats) || attempt > 2*len(cands) {
			return fmt.Errorf("cannot build the Hyperscan database of %d patterns: %w", len(pats), err)
		}
		ref := m.refs[ce.Expression]
		jr := &m.jails[ref.jail]
		r := &jr.fail
		kind := "failregex"
		if ref.ignore {
			r, kind = &jr.ignore, "ignoreregex"
		}
		bad := pats[ce.Expression]
		if (*r)[ref.idx].mode == Exact {
			(*r)[ref.idx].mode = Prefilter
			bad.Flags |= hyperscan.PrefilterMode
			m.Warnings = append(m.Warnings, fmt.Sprintf("jail %s %s[%d]: Hyperscan prefilters it (%s)", jr.name, kind, ref.idx, ce.Message))
			continue
		}
		(*r)[ref.idx].mode = Fallback
		jr.slow = true
		m.Warnings = append(m.Warnings, fmt.Sprintf("jail %s %s[%d]: Hyperscan cannot compile it (%s); the jail's lines all go through Go regexp", jr.name, kind, ref.idx, ce.Message))
	}
}
