package matcher

import (
	"slices"
	"time"

	"github.com/portcullis/portcullis/ingest"
)

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

// Captures runs line through the jail's filter as Explain does and returns the failure's captured
// fields (nil when the line is no failure of the jail), counting nothing in the matcher's
// statistics: a ban's actions get their <F-*> values from the lines that led to it. A line with
// no date of its own (a journal message) is taken at t.
func (w *Worker) Captures(jail int, line []byte, t time.Time) map[string]string {
	w.quiet = true
	defer func() { w.quiet = false }()
	res, err := w.explain(jail, line, time.Time{})
	if err == nil && res.NoDate {
		res, err = w.explain(jail, line, t)
	}
	if err != nil || !res.Matched {
		return nil
	}
	return res.Fields
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
