// Package matcher finds authentication failures in blocks of log lines. Every jail's failregex and
// ignoreregex goes into ONE Hyperscan database, scanned once per block in multi-line mode; only the
// lines Hyperscan hit are confirmed with Go regexp, dated, and have their address extracted.
// Hyperscan is the recall stage (its patterns are unanchored supersets of the jail's), Go regexp the
// precision stage, so a prefiltered or approximate Hyperscan pattern never changes the result.
package matcher

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/ingest"
)

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

const (
	// Exact: Hyperscan compiled the pattern's scan form (hsExpr: its rarest literal, or the
	// pattern from its first strong literal on) as it is.
	Exact Mode = iota
	// Prefilter: Hyperscan compiled an approximation of the scan form (HS_FLAG_PREFILTER).
	Prefilter
	// Fallback: Hyperscan could not take it; its jail's lines all go through Go regexp.
	Fallback
)

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
	// CollectIgnored adds to Details the lines a failregex matched that are no failure: those an
	// ignoreregex dropped (Ignored) and helper lines (NoFail), which fail2ban-regex counts as
	// ignored.
	CollectIgnored bool
	Details        []Result
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
	quiet      bool // in Captures: nothing is counted in the matcher's statistics
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
	if w.quiet {
		clear(w.stats)
		w.pcreErrors = 0
		return
	}
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
// line before, so the stamp (month, digits, year inference in the jail's zone) is read once per
// second of log, not once per line.
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
