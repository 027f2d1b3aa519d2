package matcher

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/dlclark/regexp2"
)

// rx is one confirming regex: Go regexp when the pattern is RE2, regexp2 when it needs Python
// features (lookaround, back-references, conditionals, atomic groups).
type rx struct {
	text  string // as written in the filter
	expr  string // tags expanded
	mode  Mode
	re    *regexp.Regexp
	re2   *regexp2.Regexp
	names []string // named groups, in pattern order
	goIdx []int    // Go: submatch index of each name
	// pc answers first when set (see usePCRE); re or re2 answer when PCRE2 reports an error
	// (a match that hit its backtracking limits).
	pc *pcre
	// endsHelper: a failregex of a multi-line jail whose every match ends its connection
	// (<F-MLFFORGET>) as a helper (<F-NOFAIL> or <F-MLFGAINED>); see jailRx.planDeferral.
	endsHelper bool
}

func compileRx(text, expr string) (rx, error) {
	r := rx{text: text, expr: expr}
	goExpr := pythonSpace(expr)
	if re, err := regexp.Compile(goExpr); err == nil {
		r.re = re
		for i, n := range re.SubexpNames() {
			if n != "" {
				r.names = append(r.names, n)
				r.goIdx = append(r.goIdx, i)
			}
		}
	} else {
		re2, err2 := regexp2.Compile(toRegexp2(goExpr), regexp2.RE2)
		if err2 != nil {
			return r, fmt.Errorf("neither Go regexp (%v) nor regexp2 (%v) can compile it", err, err2)
		}
		re2.MatchTimeout = regexp2Timeout
		r.re2 = re2
		for _, n := range re2.GetGroupNames() {
			if n != "" && (n[0] < '0' || n[0] > '9') {
				r.names = append(r.names, n)
			}
		}
	}
	if usePCRE(expr) {
		// A pattern PCRE2 refuses still works through re or re2.
		form := pcreForm(expr)
		if r.pc, _ = compilePCRE(form, r.names); r.pc != nil && form != expr {
			r.pc.written, r.pc.names = expr, r.names
		}
	}
	return r, nil
}

// pcreForm is expr as PCRE2 gets it. A regex of a jail that reads one line at a time (not a
// maxlines buffer, whose patterns start "(?m)") only ever sees text without a newline, where "."
// means any byte; with (?s) PCRE2's JIT knows that too and crosses fail2ban's
// "<F-CONTENT>.+</F-CONTENT>$" in one step instead of testing every byte for a newline (a tenth of
// regex's instructions with fail2ban's sshd.conf, callgrind). Text that holds a newline is
// matched by the pattern as written (pcre.forNewlines).
func pcreForm(expr string) string {
	if strings.HasPrefix(expr, "(?m)") {
		return expr
	}
	return "(?s)" + expr
}

// pythonSpace gives Go's regexp and regexp2 (in its RE2 mode) Python's \s, which takes the
// vertical tab too (so does PCRE2's): \s becomes [\t\n\v\f\r ] and \S its negation outside
// classes, and a class holding \s gets \v beside it. \S inside a class is left as it is (there a
// vertical tab still counts as not a space).
func pythonSpace(expr string) string {
	if !strings.Contains(expr, `\s`) && !strings.Contains(expr, `\S`) {
		return expr
	}
	return rewriteRegex(expr, func(rest string) (string, int) {
		switch {
		case strings.HasPrefix(rest, `\s`):
			return `[\t\n\v\f\r ]`, 2
		case strings.HasPrefix(rest, `\S`):
			return `[^\t\n\v\f\r ]`, 2
		}
		return "", 0
	}, func(class string) string {
		var b strings.Builder
		for j := 0; j < len(class); j++ {
			b.WriteByte(class[j])
			if class[j] == '\\' && j+1 < len(class) {
				j++
				b.WriteByte(class[j])
				if class[j] == 's' {
					b.WriteString(`\v`) // \v beside \s
				}
			}
		}
		return b.String()
	})
}

// usePCRE: PCRE2 runs patterns in byte mode, where it agrees with Go's regexp on ASCII patterns
// (\w, \d, \s and \b are ASCII in both; a negated class or . takes any byte). A pattern with other
// text, or with Python's \Z (PCRE2's \z), stays with Go's regexp or regexp2.
func usePCRE(expr string) bool {
	for i := 0; i < len(expr); i++ {
		if expr[i] >= 0x80 {
			return false
		}
	}
	return !strings.Contains(expr, `\Z`)
}

// captures holds the named groups of one match. A worker reuses it; values point into the matched
// text (Go) or into a fresh copy (regexp2) and stay valid until the next exec.
type captures struct {
	names      []string
	vals       [][]byte // nil: the group did not take part
	start, end int      // byte offsets of the whole match in the text
}

func (c *captures) get(name string) []byte {
	for i, n := range c.names {
		if n == name {
			return c.vals[i]
		}
	}
	return nil
}

// execGo matches text (search, as Python's re.search) with Go's regexp or regexp2 and fills c.
func (r *rx) execGo(text []byte, c *captures) bool {
	c.names = r.names
	c.vals = c.vals[:0]
	if r.re != nil {
		loc := r.re.FindSubmatchIndex(text)
		if loc == nil {
			return false
		}
		c.start, c.end = loc[0], loc[1]
		for _, i := range r.goIdx {
			if s, e := loc[2*i], loc[2*i+1]; s >= 0 {
				c.vals = append(c.vals, text[s:e])
			} else {
				c.vals = append(c.vals, nil)
			}
		}
		return true
	}
	str := string(text)
	m, err := find2(r.re2, str)
	if err != nil || m == nil {
		return false
	}
	c.start = runeToByte(str, m.Index)
	c.end = c.start + len(m.String())
	for _, n := range r.names {
		g := m.GroupByName(n)
		if g == nil || len(g.Captures) == 0 {
			c.vals = append(c.vals, nil)
			continue
		}
		c.vals = append(c.vals, []byte(g.String()))
	}
	return true
}

// matchesGo reports whether text matches, without captures, with Go's regexp or regexp2.
func (r *rx) matchesGo(text []byte) bool {
	if r.re != nil {
		return r.re.Match(text)
	}
	ok, err := match2(r.re2, string(text))
	return err == nil && ok
}

// runeToByte turns regexp2's rune offset into a byte offset.
func runeToByte(s string, runes int) int {
	if runes <= 0 {
		return 0
	}
	n := 0
	for i := range s {
		if n == runes {
			return i
		}
		n++
	}
	return len(s)
}

// crossCheck, set only by tests, is shown every answer PCRE2 gives (captures nil for matches).
var crossCheck func(r *rx, text []byte, matched bool, c *captures)

// exec matches r on text (search, as Python's re.search) and fills c: from the block's batch when
// the batch holds this regex on this very text, else by a match now.
func (w *Worker) exec(r *rx, text []byte, c *captures) bool {
	if r.pc == nil {
		return r.execGo(text, c)
	}
	q, ov, ok := w.pcreRun(r.pc, text)
	if !ok {
		return r.execGo(text, c)
	}
	c.names, c.vals = r.names, c.vals[:0]
	if q.rc() > 0 {
		base := q.off() // ov holds offsets into what text is a part of, from base
		c.start, c.end = int(ov[0])-base, int(ov[1])-base
		for _, g := range r.pc.named {
			if s := ov[2*g]; s >= 0 {
				c.vals = append(c.vals, text[int(s)-base:int(ov[2*g+1])-base])
			} else {
				c.vals = append(c.vals, nil)
			}
		}
	}
	if crossCheck != nil {
		crossCheck(r, text, q.rc() > 0, c)
	}
	return q.rc() > 0
}

// matches reports whether r matches text, without captures.
func (w *Worker) matches(r *rx, text []byte) bool {
	if r.pc == nil {
		return r.matchesGo(text)
	}
	q, _, ok := w.pcreRun(r.pc, text)
	if !ok {
		return r.matchesGo(text)
	}
	if crossCheck != nil {
		crossCheck(r, text, q.rc() > 0, nil)
	}
	return q.rc() > 0
}

// pcreRun answers p on text from the block's batch or by a match now. ok is false, and the error
// counted, when PCRE2 gave up (its backtracking limits): Go's regexp answers then.
func (w *Worker) pcreRun(p *pcre, text []byte) (q pxResult, ov []int32, ok bool) {
	q, ov, ok = w.batched(p, text) // a block's lines hold no newline
	if !ok {
		if p.dotAll() && bytes.IndexByte(text, '\n') >= 0 {
			if p = p.forNewlines(); p == nil {
				return pxResult{}, nil, false // Go's regexp answers
			}
		}
		q, ov = w.px.one(p, text)
	}
	if q.rc() > 0 || q.rc() == pxNoMatch {
		return q, ov, true
	}
	w.pcreErrors++
	return q, ov, false
}
