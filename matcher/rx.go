package matcher

import (
	"fmt"
	"regexp"
	"time"

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
}

// regexp2Timeout bounds one backtracking match, so a hostile line cannot stall a worker.
const regexp2Timeout = 100 * time.Millisecond

func compileRx(text, expr string) (rx, error) {
	r := rx{text: text, expr: expr}
	if re, err := regexp.Compile(expr); err == nil {
		r.re = re
		for i, n := range re.SubexpNames() {
			if n != "" {
				r.names = append(r.names, n)
				r.goIdx = append(r.goIdx, i)
			}
		}
		return r, nil
	} else {
		re2, err2 := regexp2.Compile(toRegexp2(expr), regexp2.RE2)
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
	return r, nil
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

// exec matches text (search, as Python's re.search) and fills c.
func (r *rx) exec(text []byte, c *captures) bool {
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
	m, err := r.re2.FindStringMatch(str)
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

// matches reports whether text matches, without captures.
func (r *rx) matches(text []byte) bool {
	if r.re != nil {
		return r.re.Match(text)
	}
	ok, err := r.re2.MatchString(string(text))
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
