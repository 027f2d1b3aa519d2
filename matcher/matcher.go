// Package matcher finds authentication failures in blocks of log lines. Every jail's failregex and
// ignoreregex goes into ONE Hyperscan database, scanned once per block in multi-line mode; only the
// lines Hyperscan hit are confirmed with Go regexp, dated, and have their address extracted.
// Hyperscan is the recall stage (its patterns are unanchored supersets of the jail's), Go regexp the
// precision stage, so a prefiltered or approximate Hyperscan pattern never changes the result.
package matcher

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/flier/gohs/hyperscan"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
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

// Event is one confirmed failure. Line indexes the block's Lines and is valid only while the block is.
type Event struct {
	Jail  uint16
	Regex uint16
	Line  uint32
	Time  int64 // unix seconds, from the log line
	Addr  netip.Addr
}

// JailStats counts per-jail matching outcomes; updated once per block.
type JailStats struct {
	Matched atomic.Uint64 // lines confirmed by a failregex with a valid address
	Ignored atomic.Uint64 // lines an ignoreregex dropped
	NoDate  atomic.Uint64 // matching lines without a recognisable timestamp, skipped
	BadAddr atomic.Uint64 // failures whose id is not an IP address (a host name, an F-ID), not bannable
	// Stale counts failures of a file's backlog older than findtime, not counted (set by the
	// pipeline, which knows the backlog).
	Stale atomic.Uint64
}

// Mode says how a regex runs. In every mode a line Hyperscan reports is decided by the confirming
// regex (PCRE2, or Go's regexp where PCRE2 cannot take it).
type Mode uint8

const (
	// Exact: Hyperscan compiled the pattern's scan form (hsExpr: its rarest literal, or the
	// pattern from its first strong literal on) as it is.
	Exact Mode = iota
	// Prefilter: Hyperscan compiled an approximation of the scan form (HS_FLAG_PREFILTER).
	Prefilter
	// Fallback: Hyperscan could not take it; its jail's lines all go through Go regexp.
	Fallback
)

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

// Worker holds one goroutine's Hyperscan scratch and reusable buffers. It is not safe for
// concurrent use.
type Worker struct {
	m       *Matcher
	hx      *hxScanner
	hits    []hit // the last scan's matches, in the scanner's C memory
	cand    []uint32
	stats   []jailCounts
	textBuf []byte   // a line with its date cut out of the middle
	caps    captures // failregex captures
	pcaps   captures // prefregex captures
	one     ingest.Block
	oneSrc  ingest.Source
	fixed   time.Time // when set, lines carry no date: this is their time (journal messages)

	// Collect makes Match describe every counted failure in Details (including failures whose
	// id is a host name or an F-ID, which produce no Event). For `portcullis regex`.
	Collect bool
	Details []Result
	// noFields leaves captured fields out of collected Details (counting only).
	noFields bool
	// the last failregex match in a maxlines buffer, for removing its lines
	matched              bool
	matchStart, matchEnd int

	// PCRE2: the block's confirming matches run in one cgo call between collecting the lines
	// Hyperscan hit (jobs) and deciding them; pre is the current job's range of requests.
	px         *pcreBatch
	jobs       []job
	jobCands   []uint32
	pre        [2]int
	pre2       [2]int // the current job's requests queued after the batch's first run
	deferred   int    // jobs of the block waiting for their connection id
	blockIDs   keySet // blockKey of the connections the block's lines name
	pcreErrors uint64
	mlCur      fieldList // one line's groups for the multi-line merge, reused
	stamp      stampCache
	explaining bool // in Explain: every outcome is described, no shortcut taken
}

// job is one (line, jail) whose candidates wait for the batch.
type job struct {
	t    time.Time
	li   uint32
	jail uint16
	cand [2]int32 // w.jobCands[cand[0]:cand[1]]
	text [2]int32 // w.px.buf[text[0]:text[1]]
	reqs [2]int32 // w.px.reqs[reqs[0]:reqs[1]]
	more [2]int32 // w.px.reqs[more[0]:more[1]]: its failregexes, when deferred and needed
	// deferred: only the prefregex was queued (every candidate ends a connection as a helper);
	// skip: its connection is unknown, so whatever matches changes nothing.
	deferred, skip bool
}

// keySet is a set of integers for one block, open-addressed: reset sizes it for the
// block's jobs (at most half full) and forgets the last block's keys by a generation count, so it
// costs neither a map's hashing and growth nor a clear per block.
type keySet struct {
	keys []uint64
	gens []uint32
	gen  uint32
	mask uint64
}

func (s *keySet) reset(most int) {
	size := 1024
	for size < 2*most {
		size *= 2
	}
	if len(s.keys) < size {
		s.keys, s.gens, s.gen = make([]uint64, size), make([]uint32, size), 0
	}
	s.mask = uint64(len(s.keys) - 1)
	if s.gen++; s.gen == 0 { // wrapped: old stamps could read as current
		clear(s.gens)
		s.gen = 1
	}
}

// slot is where k is, or the empty slot where it would go.
func (s *keySet) slot(k uint64) uint64 {
	i := (k * 0x9e3779b97f4a7c15) >> 32 & s.mask
	for s.gens[i] == s.gen && s.keys[i] != k {
		i = (i + 1) & s.mask
	}
	return i
}

func (s *keySet) has(k uint64) bool { return s.gens[s.slot(k)] == s.gen }

func (s *keySet) add(k uint64) {
	i := s.slot(k)
	s.keys[i], s.gens[i] = k, s.gen
}

// blockKey is a connection's key (its hash in the jail's cache) mixed with its jail. Two
// connections of a block that share one only make a line less likely to be skipped.
func blockKey(jail uint16, hash uint64) uint64 { return hash ^ uint64(jail)*0x9e3779b97f4a7c15 }

// CollectCounts makes collected Details carry no captured fields, which is cheaper when only
// the failures are counted.
func (w *Worker) CollectCounts() { w.Collect, w.noFields = true, true }

// SetFixedTime makes Match treat every line as dateless with time t (journal messages, logtype =
// journal); the zero time restores date detection.
func (w *Worker) SetFixedTime(t time.Time) { w.fixed = t }

type jailCounts struct{ matched, ignored, noDate, badAddr uint64 }

// NewWorker allocates a worker with its own scratch space.
func (m *Matcher) NewWorker() (*Worker, error) {
	w := &Worker{m: m, stats: make([]jailCounts, len(m.jails))}
	if m.db != nil {
		s, err := m.db.newScanner()
		if err != nil {
			return nil, err
		}
		w.hx = s
	}
	px, err := newPCREBatch(m.pairs)
	if err != nil {
		w.Close()
		return nil, err
	}
	w.px = px
	return w, nil
}

// Close frees the worker's scratch.
func (w *Worker) Close() {
	w.hx.free()
	w.hx = nil
	w.hits = nil
	w.px.free()
}

// Result is the detailed outcome of one line for one jail, for `portcullis regex` and tests.
type Result struct {
	Matched bool              // a failregex confirmed (and no ignoreregex)
	Ignored bool              // an ignoreregex matched
	NoFail  bool              // matched a helper regex marked <F-NOFAIL>: not a failure
	NoDate  bool              // a regex matched but the line has no recognisable timestamp
	Regex   int               // index of the failregex that matched
	ID      string            // failure id: ip4, ip6, dns or fid, as fail2ban picks it
	Addr    netip.Addr        // the id as an address, when it is one
	Time    time.Time         // from the line
	Fields  map[string]string // every named group that took part (prefregex groups included)
	Users   []string          // every user of the failure (multi-line: of the whole connection)
	// Attempts is how many lines make up the failure (1, or more for multi-line failures).
	Attempts int
	// Pending: a multi-line helper matched but the connection has no failure id yet.
	Pending bool
	// Line is the line's index in its block (when collected by Match).
	Line uint32
	// Others counts the other failregexes that would also report this line as a failure
	// (fail2ban's samples require none). Explain only.
	Others int
}

// otherMatches counts failregexes besides skip that match text (after the prefregex) as a
// failure: with an id and without <F-NOFAIL>. It changes no multi-line state.
func (w *Worker) otherMatches(jr *jailRx, text []byte, skip int) int {
	content := text
	var pc captures
	if jr.pref != nil {
		if !w.exec(jr.pref, text, &pc) {
			return 0
		}
		if c := pc.get("content"); c != nil {
			content = c
		}
	}
	n := 0
	var c captures
	for i := range jr.fail {
		if i == skip || !w.exec(&jr.fail[i], content, &c) {
			continue
		}
		if c.get("nofail") != nil || pc.get("nofail") != nil || c.get("mlfid") != nil || pc.get("mlfid") != nil {
			continue // helpers and multi-line parts are judged by the merge, not here
		}
		if id, _ := failureID(&c, &pc); id != nil {
			n++
		}
	}
	return n
}

// Match scans b once and appends an Event to dst for every line that a jail listening to b's source
// counts as a failure. The cgo boundary is crossed once per block.
func (w *Worker) Match(b *ingest.Block, dst []Event) ([]Event, error) {
	m := w.m
	jails := b.Source.Jails
	if err := w.scan(b); err != nil {
		return dst, err
	}
	li := 0
	var now time.Time
	for i := 0; i < len(w.hits); {
		to := w.hits[i].to
		for li < len(b.Lines) && b.Lines[li].End < to {
			li++
		}
		if li == len(b.Lines) {
			break
		}
		span := b.Lines[li]
		// Gather every pattern that hit this line.
		w.cand = w.cand[:0]
		for ; i < len(w.hits) && w.hits[i].to <= span.End; i++ {
			if w.hits[i].to <= span.Start {
				continue // ended in a skipped line or on a newline before this line
			}
			id := w.hits[i].id
			if !slices.Contains(w.cand, id) {
				w.cand = append(w.cand, id)
			}
		}
		if len(w.cand) == 0 {
			continue
		}
		if now.IsZero() {
			now = m.opts.Now()
		}
		slices.Sort(w.cand) // ids are laid out jail by jail, failregex before ignoreregex
		w.queueLine(b.Line(li), uint32(li), jails, now, w.fixed)
	}
	dst = w.decideJobs(dst)
	dst = w.slowJails(b, jails, dst)
	w.flushStats()
	return dst, nil
}

func (w *Worker) scan(b *ingest.Block) error {
	w.hits = nil
	if w.m.db == nil || len(b.Lines) == 0 {
		return nil
	}
	hits, err := w.hx.scan(w.m.db, b.Buf)
	if err != nil {
		return err
	}
	w.hits = hits
	if !slices.IsSortedFunc(w.hits, func(a, b hit) int { return int(a.to) - int(b.to) }) {
		slices.SortFunc(w.hits, func(a, b hit) int { return int(a.to) - int(b.to) })
	}
	return nil
}

func (w *Worker) flushStats() {
	for id := range w.stats {
		c := &w.stats[id]
		if *c == (jailCounts{}) {
			continue
		}
		s := &w.m.Stats[id]
		s.Matched.Add(c.matched)
		s.Ignored.Add(c.ignored)
		s.NoDate.Add(c.noDate)
		s.BadAddr.Add(c.badAddr)
		*c = jailCounts{}
	}
	if w.pcreErrors > 0 {
		w.m.RegexLimit.Add(w.pcreErrors)
		w.pcreErrors = 0
	}
}

// Explain runs one line through the full path (Hyperscan, then confirmation) for one jail and
// describes the outcome. It allocates; it is for `portcullis regex` and tests, not the hot path.
func (w *Worker) Explain(jail int, line []byte) (Result, error) {
	return w.explain(jail, line, time.Time{})
}

// ExplainAt is Explain for a line whose time is known from elsewhere (a journal entry): no date is
// looked for and the whole line is the text the regexes see.
func (w *Worker) ExplainAt(jail int, line []byte, t time.Time) (Result, error) {
	return w.explain(jail, line, t)
}

func (w *Worker) explain(jail int, line []byte, fixed time.Time) (res Result, err error) {
	w.explaining = true
	defer func() { w.explaining = false }()
	m := w.m
	jr := &m.jails[jail]
	now := m.opts.Now()
	t, text := fixed, line
	if fixed.IsZero() {
		var ok bool
		t, text, ok = w.dateOf(jr, line, now)
		if !ok {
			// fail2ban says "no date" only for a line a failregex matches.
			text, t = line, now
			defer func() {
				if res.Matched {
					res.Matched, res.NoDate = false, true
				}
			}()
		}
	}
	// Hyperscan sees the line as Match gives it: whole, date included (the regexes then run on the
	// text without its date), so tests and `regex` see exactly what the daemon sees.
	b := &w.one
	b.Buf = append(append(b.Buf[:0], line...), '\n')
	b.Lines = append(b.Lines[:0], ingest.Span{Start: 0, End: uint32(len(line))})
	w.oneSrc.Jails = ingest.NewJailSet(jail)
	b.Source = &w.oneSrc
	if err = w.scan(b); err != nil {
		return res, err
	}
	w.cand = w.cand[:0]
	for _, h := range w.hits {
		if h.to > 0 && h.to <= uint32(len(line)) && int(m.refs[h.id].jail) == jail && !slices.Contains(w.cand, h.id) {
			w.cand = append(w.cand, h.id)
		}
	}
	slices.Sort(w.cand)
	defer func() {
		if res.Matched && jr.maxLines <= 1 {
			res.Others = w.otherMatches(jr, text, res.Regex)
		}
	}()
	if jr.maxLines > 1 {
		w.bufferedLine(uint16(jail), jr, text, 0, t, nil, &res)
	} else if jr.slow {
		w.confirm(uint16(jail), nil, text, 0, t, &res)
	} else if len(w.cand) > 0 {
		w.confirm(uint16(jail), w.cand, text, 0, t, &res)
	}
	w.flushStats()
	return res, nil
}

// dateOf finds a line's date with the jail's templates and returns the time and the line with the
// date cut out (fail2ban's "prefix + suffix"). The text is valid until the next call.
//
// As fail2ban, a line without a date of its own (no template matched, or one matched an empty
// date) takes the jail's last date when that is no older than a minute before now.
func (w *Worker) dateOf(jr *jailRx, line []byte, now time.Time) (time.Time, []byte, bool) {
	var t time.Time
	var start, end int
	var ok bool
	if c := &w.stamp; c.same(jr, line, now) {
		jr.dates.fastHits.Add(1)
		t, start, end, ok = c.t, 0, len(c.text), true
	} else {
		var fast bool
		t, start, end, ok, fast = jr.dates.find(line, now, jr.loc)
		if fast && start == 0 && end == len(c.text) && plainStamp(line) {
			*c = stampCache{d: jr.dates, loc: jr.loc, now: now, t: t}
			copy(c.text[:], line)
		}
	}
	if ok && !t.IsZero() {
		jr.lastDate.Store(t.UnixNano())
	} else {
		last := jr.lastDate.Load()
		recent := last != 0 && last > now.Add(-time.Minute).UnixNano()
		switch {
		case ok && recent:
			t = time.Unix(0, last).In(jr.loc)
		case ok:
			t = now
		case recent:
			return time.Unix(0, last).In(jr.loc), line, true
		default:
			return t, nil, false
		}
	}
	if start == 0 {
		return t, line[end:], true
	}
	w.textBuf = append(append(w.textBuf[:0], line[:start]...), line[end:]...)
	return t, w.textBuf, true
}

// stampCache is the last syslog stamp ("Mar  1 00:00:00") the default templates' fast path read
// at the start of a line, and its time: the lines of a log mostly share their second with the
// line before, and reading the stamp again (month, digits, year inference in the jail's zone) was
// 7% of `regex` with fail2ban's sshd.conf.
type stampCache struct {
	text [15]byte
	d    *dateDetector
	loc  *time.Location
	now  time.Time
	t    time.Time
}

// plainStamp reports whether the line's first 15 bytes can be nothing but its stamp: a blank
// after them (not a fraction) and no year after that.
func plainStamp(line []byte) bool {
	return len(line) > 16 && line[0] != ' ' && line[0] != '\t' && (line[0] < '0' || line[0] > '9') &&
		line[15] == ' ' && (line[16] < '0' || line[16] > '9')
}

// same reports whether line starts with the cached stamp, read by the same templates, in the
// same zone, at the same "now" (year inference).
func (c *stampCache) same(jr *jailRx, line []byte, now time.Time) bool {
	return c.d != nil && c.d == jr.dates && c.loc == jr.loc && plainStamp(line) &&
		string(line[:len(c.text)]) == string(c.text[:]) && c.now.Equal(now)
}

// queueLine queues the candidate patterns of one line for the block's batch, jail by jail, with
// the date each jail's templates find (lines without one are counted and dropped). A non-zero
// fixed time skips date detection (journal entries).
func (w *Worker) queueLine(line []byte, li uint32, jails ingest.JailSet, now, fixed time.Time) {
	m := w.m
	var lastDates *dateDetector
	t := fixed
	var text []byte
	if !fixed.IsZero() {
		text = line
	}
	for k := 0; k < len(w.cand); {
		jail := m.refs[w.cand[k]].jail
		end := k
		for end < len(w.cand) && m.refs[w.cand[end]].jail == jail {
			end++
		}
		group := w.cand[k:end]
		k = end
		if !jails.Has(int(jail)) {
			continue
		}
		if jd := m.jails[jail].dates; fixed.IsZero() && jd != lastDates {
			lastDates = jd
			var ok bool
			if t, text, ok = w.dateOf(&m.jails[jail], line, now); !ok {
				text = nil
			}
		}
		if text == nil {
			w.stats[jail].noDate++
			continue
		}
		w.queue(jail, group, text, li, t)
	}
}

// queue copies a (line, jail) and its candidate regexes into the block's batch: the prefregex on
// the text, each failregex on the prefregex's <F-CONTENT> (or the text), each ignoreregex Hyperscan
// hit on both.
func (w *Worker) queue(jail uint16, group []uint32, text []byte, li uint32, t time.Time) {
	x, m := w.px, w.m
	jr := &m.jails[jail]
	j := job{t: t, li: li, jail: jail}
	j.cand[0] = int32(len(w.jobCands))
	w.jobCands = append(w.jobCands, group...)
	j.cand[1] = int32(len(w.jobCands))
	j.text[0] = int32(len(x.buf))
	x.buf = append(x.buf, text...)
	j.text[1] = int32(len(x.buf))
	j.reqs[0] = int32(len(x.reqs))
	off, n := int(j.text[0]), len(text)
	dep, grp := -1, 0
	if jr.pref != nil && jr.pref.pc != nil {
		p := x.add(jr.pref.pc, off, n, -1, 0)
		if jr.contentGroup >= 0 {
			dep, grp = p, jr.contentGroup
		}
	}
	if jr.canDefer && w.allEndHelpers(jr, group) {
		j.deferred = true
		w.deferred++
	} else if jr.pref == nil || jr.pref.pc != nil {
		w.queueCands(jr, group, off, n, dep, grp)
	}
	j.reqs[1] = int32(len(x.reqs))
	w.jobs = append(w.jobs, j)
}

// queueCands queues a line's candidate regexes: each failregex on the prefregex's <F-CONTENT>
// (request dep's group grp) or, with no dep, on buf[off:off+n]; each ignoreregex on both.
func (w *Worker) queueCands(jr *jailRx, group []uint32, off, n, dep, grp int) {
	x := w.px
	for _, id := range group {
		ref := w.m.refs[id]
		switch {
		case !ref.ignore && jr.fail[ref.idx].pc != nil:
			x.add(jr.fail[ref.idx].pc, off, n, dep, grp)
		case ref.ignore && jr.ignore[ref.idx].pc != nil:
			x.add(jr.ignore[ref.idx].pc, off, n, -1, 0)
			if dep >= 0 {
				x.add(jr.ignore[ref.idx].pc, off, n, dep, grp)
			}
		}
	}
}

// allEndHelpers reports whether every candidate of a line is a failregex that ends a connection
// as a helper (no ignoreregex among them).
func (w *Worker) allEndHelpers(jr *jailRx, group []uint32) bool {
	for _, id := range group {
		ref := w.m.refs[id]
		if ref.ignore || !jr.fail[ref.idx].endsHelper {
			return false
		}
	}
	return len(group) > 0
}

// decideJobs runs the block's batch (one cgo call, two when lines were deferred) and confirms
// the queued lines in order.
func (w *Worker) decideJobs(dst []Event) []Event {
	if len(w.jobs) == 0 {
		return dst
	}
	x := w.px
	x.run(0)
	if w.deferred > 0 {
		from := len(x.reqs)
		w.planDeferred()
		x.run(from)
	}
	for _, j := range w.jobs {
		if j.skip {
			continue
		}
		w.pre = [2]int{int(j.reqs[0]), int(j.reqs[1])}
		w.pre2 = [2]int{int(j.more[0]), int(j.more[1])}
		text := x.buf[j.text[0]:j.text[1]]
		if ev, ok := w.confirm(j.jail, w.jobCands[j.cand[0]:j.cand[1]], text, j.li, j.t, nil); ok {
			dst = append(dst, ev)
		}
	}
	w.pre, w.pre2, w.deferred = [2]int{}, [2]int{}, 0
	w.jobs, w.jobCands = w.jobs[:0], w.jobCands[:0]
	x.reset()
	return dst
}

// planDeferred settles the deferred jobs once the batch has run their prefregexes. Most noise
// that fail2ban's sshd.conf matches is a helper that ends a connection it never saw (a
// disconnect, a preauth close, an accepted login): whatever its failregex says, fail2ban's merge
// leaves nothing behind and counts nothing. Such a job waited with only its prefregex queued;
// now its connection id is known, and it is skipped when that connection is neither cached (even
// expired: its decision drops it) nor named by an earlier line of this block (which its decision,
// in order, could find cached).
// The others get their failregexes queued, for the batch's second run.
func (w *Worker) planDeferred() {
	m, x := w.m, w.px
	w.blockIDs.reset(len(w.jobs))
	unsure := false // a prefregex PCRE2 gave up on: its line's id is not known here
	for i := range w.jobs {
		j := &w.jobs[i]
		jr := &m.jails[j.jail]
		if !jr.canDefer {
			continue
		}
		p := &x.reqs[j.reqs[0]] // the prefregex comes first
		if p.rc <= 0 {
			// No prefregex match: the line is nothing to this jail. An error leaves the answer
			// to Go's regexp, later, and the id it may find to nobody here.
			if int32(p.rc) != pxNoMatch {
				unsure = true
			} else if j.deferred {
				j.skip = true
			}
			continue
		}
		s, e := x.ovec[int(p.ov)+2*jr.mlfidGroup], x.ovec[int(p.ov)+2*jr.mlfidGroup+1]
		if s < 0 {
			if j.deferred {
				w.queueFail(j, jr) // no id: the line is read as a plain one
			}
			continue
		}
		id := unsafe.String(&x.buf[s], int(e-s))
		hash := jr.ml.hash(id)
		key := blockKey(j.jail, hash)
		if j.deferred && !unsure && !w.blockIDs.has(key) && !jr.ml.cached(hash, id) {
			j.skip = true
			continue
		}
		w.blockIDs.add(key)
		if j.deferred {
			w.queueFail(j, jr)
		}
	}
}

// queueFail queues a deferred job's failregexes on its prefregex's <F-CONTENT>.
func (w *Worker) queueFail(j *job, jr *jailRx) {
	j.more[0] = int32(len(w.px.reqs))
	w.queueCands(jr, w.jobCands[j.cand[0]:j.cand[1]], 0, 0, int(j.reqs[0]), jr.contentGroup)
	j.more[1] = int32(len(w.px.reqs))
}

// batched is the batch's result of p on text for the job being decided, if it was queued.
func (w *Worker) batched(p *pcre, text []byte) (pxResult, []int32, bool) {
	if w.pre[1] == 0 {
		return pxResult{}, nil, false
	}
	if q, ov, ok := w.px.find(w.pre[0], w.pre[1], p, text); ok || w.pre2[1] == 0 {
		return q, ov, ok
	}
	return w.px.find(w.pre2[0], w.pre2[1], p, text)
}

// confirm applies a jail's prefregex, ignoreregexes and the failregexes Hyperscan reported (all of
// them when group is nil), in fail2ban's order.
func (w *Worker) confirm(jail uint16, group []uint32, text []byte, li uint32, t time.Time, detail *Result) (Event, bool) {
	m := w.m
	if detail == nil && w.Collect {
		var d Result
		detail = &d
		defer func() {
			if d.Matched {
				d.Line = li
				w.Details = append(w.Details, d)
			}
		}()
	}
	jr := &m.jails[jail]
	content := text
	w.pcaps.names, w.pcaps.vals = nil, w.pcaps.vals[:0]
	if jr.pref != nil {
		if !w.exec(jr.pref, text, &w.pcaps) {
			return Event{}, false
		}
		if c := w.pcaps.get("content"); c != nil {
			content = c
		}
	}
	ignored := func() bool {
		for i := range jr.ignore {
			r := &jr.ignore[i]
			if group != nil && !hitIgnore(m, group, i) {
				continue
			}
			if w.matches(r, text) || (jr.pref != nil && w.matches(r, content)) {
				return true
			}
		}
		return false
	}
	try := func(idx int) (Event, bool) {
		r := &jr.fail[idx]
		if !w.exec(r, content, &w.caps) {
			return Event{}, false
		}
		if ignored() {
			w.stats[jail].ignored++
			if detail != nil {
				detail.Ignored = true
			}
			return Event{}, false
		}
		if jr.maxLines > 1 {
			w.matched, w.matchStart, w.matchEnd = true, w.caps.start, w.caps.end
			if jr.pref != nil && len(content) != len(text) {
				// The failregex ran on the prefregex content: shift to buffer offsets.
				// Go's captures point into text; regexp2's are copies, and a prefregex content
				// runs to the end of the text (…<F-CONTENT>.+</F-CONTENT>$).
				off := len(text) - len(content)
				base, cp := uintptr(unsafe.Pointer(unsafe.SliceData(text))), uintptr(unsafe.Pointer(unsafe.SliceData(content)))
				if cp >= base && cp <= base+uintptr(len(text)) {
					off = int(cp - base)
				}
				w.matchStart, w.matchEnd = w.matchStart+off, w.matchEnd+off
			}
		}
		if jr.ml != nil {
			if mlfid := firstCapture("mlfid", &w.caps, &w.pcaps); mlfid != nil {
				return w.multiLine(jail, jr, idx, mlfid, li, t, detail)
			}
		}
		nofail := w.caps.get("nofail") != nil || w.pcaps.get("nofail") != nil
		id, addr := failureID(&w.caps, &w.pcaps)
		if detail != nil {
			fillDetail(detail, idx, string(id), addr, t, nofail, w.noFields, &w.pcaps, &w.caps)
		}
		if nofail {
			return Event{}, false
		}
		return w.emit(jail, idx, li, t, addr)
	}
	if group == nil {
		for i := range jr.fail {
			if ev, ok := try(i); ok {
				return ev, true
			}
		}
		return Event{}, false
	}
	for _, id := range group {
		ref := m.refs[id]
		if ref.ignore {
			continue
		}
		if ev, ok := try(int(ref.idx)); ok {
			return ev, true
		}
	}
	return Event{}, false
}

func firstCapture(name string, cs ...*captures) []byte {
	for _, c := range cs {
		if v := c.get(name); v != nil {
			return v
		}
	}
	return nil
}

// multiLine merges a match that carries an <F-MLFID> into its connection's state and reports the
// merged failure, if it is one.
func (w *Worker) multiLine(jail uint16, jr *jailRx, idx int, mlfid []byte, li uint32, t time.Time, detail *Result) (Event, bool) {
	id := unsafe.String(unsafe.SliceData(mlfid), len(mlfid)) // a view: the cache copies what it keeps
	if !w.explaining && endsUnknown(&w.caps, &w.pcaps) && !jr.ml.known(id, t.Unix()) {
		// A helper line (<F-NOFAIL> or <F-MLFGAINED>) that ends a connection never seen, or seen
		// too long ago: fail2ban's merge leaves nothing behind and counts nothing. Most of the
		// noise fail2ban's sshd.conf matches is this (disconnects, preauth closes, accepted
		// logins of connections whose earlier lines it does not track).
		return Event{}, false
	}
	// The groups are views of the line, valid for this call: merge copies what it keeps.
	cur := w.mlCur[:0]
	alt := false
	for _, c := range [2]*captures{&w.pcaps, &w.caps} { // failregex groups override prefregex ones
		for i, n := range c.names {
			if i < len(c.vals) && c.vals[i] != nil {
				v := unsafe.String(unsafe.SliceData(c.vals[i]), len(c.vals[i]))
				if j := cur.index(n); j >= 0 {
					cur[j].val = v
				} else {
					cur = append(cur, field{n, v})
				}
				alt = alt || strings.HasPrefix(n, "alt_")
			}
		}
	}
	if alt {
		cur = mergeAltList(cur) // fail2ban merges alternates before the multi-line merge
	}
	w.mlCur = cur
	r := jr.ml.merge(id, &w.mlCur, t.Unix(), detail != nil && !w.noFields)
	var addr netip.Addr
	if r.id != "" && r.fields["dns"] != r.id {
		if a, err := netip.ParseAddr(r.id); err == nil {
			addr = a.Unmap().WithZone("")
		}
	}
	if detail != nil && r.id != "" {
		if r.idView {
			r.id = strings.Clone(r.id)
		}
		detail.Matched, detail.NoFail, detail.Regex, detail.ID, detail.Addr = !r.nofail, r.nofail, idx, r.id, addr
		detail.Time = t.Truncate(time.Second)
		detail.Fields, detail.Users, detail.Attempts = r.fields, r.users, r.attempts
		mergeAlt(detail.Fields)
	} else if detail != nil {
		detail.Pending, detail.Regex = true, idx
	}
	if r.id == "" || r.nofail {
		return Event{}, false
	}
	return w.emit(jail, idx, li, t, addr)
}

// endsUnknown reports whether a match ends its connection (<F-MLFFORGET>) as a helper (<F-NOFAIL>
// or <F-MLFGAINED>): for a connection not in the cache, merging it has no effect.
func endsUnknown(cs ...*captures) bool {
	return firstCapture("mlfforget", cs...) != nil &&
		(firstCapture("nofail", cs...) != nil || firstCapture("mlfgained", cs...) != nil)
}

// emit turns a counted failure into an Event when its id is an address; ids that are host names
// or F-IDs are counted and cannot be banned.
func (w *Worker) emit(jail uint16, idx int, li uint32, t time.Time, addr netip.Addr) (Event, bool) {
	if !addr.IsValid() {
		w.stats[jail].badAddr++
		return Event{}, false
	}
	w.stats[jail].matched++
	return Event{Jail: jail, Regex: uint16(idx), Line: li, Time: t.Unix(), Addr: addr}, true
}

func hitIgnore(m *Matcher, group []uint32, idx int) bool {
	for _, id := range group {
		if r := m.refs[id]; r.ignore && int(r.idx) == idx {
			return true
		}
	}
	return false
}

var idGroups = [...]string{"ip4", "ip6", "dns", "fid"}

// failureID picks the failure id as fail2ban does: ip4, else ip6, else dns, else fid, the failregex
// groups before the prefregex ones. It returns the id's text (valid until the next match) and the
// address when the id is one. It does not allocate.
func failureID(fail, pref *captures) ([]byte, netip.Addr) {
	for _, name := range idGroups {
		for _, c := range [2]*captures{fail, pref} {
			v := c.get(name)
			if v == nil {
				continue
			}
			if name == "dns" {
				return v, netip.Addr{}
			}
			a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(v), len(v)))
			if err != nil {
				return v, netip.Addr{}
			}
			return v, a.Unmap().WithZone("")
		}
	}
	return nil, netip.Addr{}
}

func fillDetail(d *Result, idx int, id string, addr netip.Addr, t time.Time, nofail, noFields bool, cs ...*captures) {
	// fail2ban keeps whole seconds of a log line's stamp.
	d.Matched, d.NoFail, d.Regex, d.ID, d.Addr, d.Time = !nofail && id != "", nofail, idx, id, addr, t.Truncate(time.Second)
	d.Attempts = 1
	if noFields {
		return
	}
	d.Fields = map[string]string{}
	for _, c := range cs {
		for i, n := range c.names {
			if i < len(c.vals) && c.vals[i] != nil {
				d.Fields[n] = string(c.vals[i])
			}
		}
	}
	d.Attempts = 1
	if u := d.Fields["user"]; u != "" {
		d.Users = []string{u}
	}
	mergeAlt(d.Fields)
}

// mergeAlt is mergeAltList on a map of groups (Details).
func mergeAlt(fields map[string]string) {
	var f fieldList
	for n, v := range fields {
		f = append(f, field{n, v})
	}
	for _, x := range mergeAltList(f) {
		fields[x.name] = x.val
	}
}

// mergeAltList applies fail2ban's alternates to a line's groups, in place: alt_user, alt_user_2 …
// (in name order) fill user when it is empty.
func mergeAltList(f fieldList) fieldList {
	var alts [8]int
	names := alts[:0]
	for i := range f {
		if strings.HasPrefix(f[i].name, "alt_") {
			names = append(names, i)
		}
	}
	slices.SortFunc(names, func(a, b int) int { return strings.Compare(f[a].name, f[b].name) })
	for _, i := range names {
		base := altBase(f[i].name)
		if f[i].val == "" || f.val(base) != "" {
			continue
		}
		if j := f.index(base); j >= 0 {
			f[j].val = f[i].val
		} else {
			f = append(f, field{base, f[i].val})
		}
	}
	return f
}

// altBase is the group an alternate fills: alt_user, alt_user_2 → user (fail2ban's
// ^alt_(.*?)(?:_\d+)?$).
func altBase(name string) string {
	base := strings.TrimPrefix(name, "alt_")
	if i := strings.LastIndexByte(base, '_'); i >= 0 && i+1 < len(base) && strings.Trim(base[i+1:], "0123456789") == "" {
		base = base[:i]
	}
	return base
}

// slowJails handles jails whose regexes could not all go into Hyperscan: every line is tried.
func (w *Worker) slowJails(b *ingest.Block, jails ingest.JailSet, dst []Event) []Event {
	m := w.m
	var now time.Time
	for id := range m.jails {
		if !m.jails[id].slow || !jails.Has(id) {
			continue
		}
		if now.IsZero() {
			now = m.opts.Now()
		}
		for li := range b.Lines {
			dst = w.slowLine(id, b.Line(li), uint32(li), now, w.fixed, dst, nil)
		}
	}
	return dst
}

func (w *Worker) slowLine(jail int, line []byte, li uint32, now, fixed time.Time, dst []Event, detail *Result) []Event {
	jr := &w.m.jails[jail]
	t, text, ok := fixed, line, true
	if fixed.IsZero() {
		t, text, ok = w.dateOf(jr, line, now)
	}
	if !ok {
		if detail != nil {
			detail.NoDate = true
		}
		return dst
	}
	if jr.maxLines > 1 {
		return w.bufferedLine(uint16(jail), jr, text, li, t, dst, detail)
	}
	if ev, ok := w.confirm(uint16(jail), nil, text, li, t, detail); ok {
		dst = append(dst, ev)
	}
	return dst
}

// lineBuffer is a jail's maxlines buffer: the last lines, without their dates.
type lineBuffer struct {
	mu    sync.Mutex
	lines [][]byte
	// joined is lines joined by newlines and ended by one, as fail2ban's buffer text.
	joined []byte
}

// bufferedLine adds a line to the jail's buffer and runs the regexes on the whole buffer; the
// lines a failregex match covers (but not its <SKIPLINES>) leave the buffer, as in fail2ban.
func (w *Worker) bufferedLine(jail uint16, jr *jailRx, text []byte, li uint32, t time.Time, dst []Event, detail *Result) []Event {
	b := jr.buf
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, append([]byte(nil), text...))
	if len(b.lines) > jr.maxLines {
		b.lines = b.lines[len(b.lines)-jr.maxLines:]
	}
	b.joined = b.joined[:0]
	for i, l := range b.lines {
		if i > 0 {
			b.joined = append(b.joined, '\n')
		}
		b.joined = append(b.joined, l...)
	}
	b.joined = append(b.joined, '\n')
	w.matched = false
	ev, ok := w.confirm(jail, nil, b.joined, li, t, detail)
	if ok {
		dst = append(dst, ev)
	}
	if !w.matched {
		return dst
	}
	// Which lines did the match cover, and which of them were skipped lines?
	var skipped [][]byte
	for i, n := range w.caps.names {
		if strings.HasPrefix(n, "skiplines") && w.caps.vals[i] != nil {
			skipped = append(skipped, bytes.Split(bytes.TrimSuffix(w.caps.vals[i], []byte{'\n'}), []byte{'\n'})...)
		}
	}
	first := bytes.Count(b.joined[:w.matchStart], []byte{'\n'})
	endPos := max(w.matchEnd-1, w.matchStart)
	last := bytes.Count(b.joined[:min(endPos, len(b.joined))], []byte{'\n'})
	// fail2ban's order (Regex.search): the lines before the match, then each skipped line in
	// the order skipped (taken from the matched ones at or after the previous one taken, so of
	// two equal lines the first goes), then the lines after it. The order decides which line
	// maxlines drops first.
	last = min(last, len(b.lines)-1)
	matched := append([][]byte(nil), b.lines[first:last+1]...)
	kept := append(b.lines[:0:0], b.lines[:first]...)
	n := 0
	for _, s := range skipped {
		for m := n; m < len(matched); m++ {
			if bytes.Equal(matched[m], s) {
				kept = append(kept, matched[m])
				matched = append(matched[:m], matched[m+1:]...)
				n = m
				break
			}
		}
	}
	b.lines = append(kept, b.lines[last+1:]...)
	return dst
}
