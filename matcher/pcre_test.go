package matcher

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// PCRE2 confirms the lines Hyperscan hits; Go's regexp (or regexp2) is the reference it must agree
// with. Every regex answer PCRE2 gives while fail2ban's corpus runs through fail2ban's filters, and
// our samples and fail2ban's through our filters, is checked against Go's: match or not, the
// whole match and every named group.
func TestPCREAgreesWithGo(t *testing.T) {
	needCorpus(t)
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	corpusLoc = loc
	answers, differ := 0, 0
	var notes []string
	crossCheck = func(r *rx, text []byte, matched bool, c *captures) {
		answers++
		if why := disagreement(r, text, matched, c); why != "" {
			differ++
			if len(notes) < 20 {
				notes = append(notes, fmt.Sprintf("%s\n    regex %s\n    text  %q", why, r.expr, text))
			}
		}
	}
	defer func() { crossCheck = nil }()

	entries, err := os.ReadDir(f2bcorpus.FilterDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".conf")
		if ok && !strings.HasSuffix(name, "common") && !strings.HasPrefix(name, "zzz-") {
			runCorpusFilter(name, f2bcorpus.FilterDir(), f2bcorpus.LogsDir(), "", loc)
		}
	}
	for _, name := range ownFilters(t) {
		runCorpusFilter(name, ownFilterDir, ownSamples, ".log", loc)
		if _, err := os.Stat(filepath.Join(f2bcorpus.LogsDir(), name)); err == nil {
			runCorpusFilter(name, ownFilterDir, f2bcorpus.LogsDir(), "", loc)
		}
	}
	t.Logf("%d PCRE2 answers checked against Go's regexp", answers)
	if answers < 1000 {
		t.Fatalf("only %d PCRE2 answers: is PCRE2 in use?", answers)
	}
	if differ > 0 {
		t.Fatalf("%d of %d answers differ:\n%s", differ, answers, strings.Join(notes, "\n"))
	}
}

// disagreement says how Go's regexp answers r on text differently from PCRE2's answer (matched,
// and the captures c when there are any), or "" when they agree.
func disagreement(r *rx, text []byte, matched bool, c *captures) string {
	var g captures
	goMatched := r.execGo(text, &g)
	switch {
	case goMatched != matched:
		return fmt.Sprintf("PCRE2 matched=%v, Go matched=%v", matched, goMatched)
	case c == nil || !matched:
		return ""
	case g.start != c.start || g.end != c.end:
		return fmt.Sprintf("whole match [%d,%d) against Go's [%d,%d)", c.start, c.end, g.start, g.end)
	}
	for i, n := range g.names {
		if a, b := c.vals[i], g.vals[i]; (a == nil) != (b == nil) || !bytes.Equal(a, b) {
			return fmt.Sprintf("group %s = %q against Go's %q", n, a, b)
		}
	}
	return ""
}

// A line that makes a pattern backtrack past PCRE2's limits gets Go's (linear) answer, and the
// fallback is counted.
func TestPCRELimitFallsBackToGo(t *testing.T) {
	r, err := compileRx("test", `^(?P<run>(?:a|aa)+)$`)
	if err != nil || r.pc == nil {
		t.Fatalf("compile: %v, PCRE2 %v", err, r.pc != nil)
	}
	defer r.pc.free()
	px, err := newPCREBatch(r.pc.pairs)
	if err != nil {
		t.Fatal(err)
	}
	defer px.free()
	w := &Worker{px: px}
	var c captures
	if !w.exec(&r, []byte("aaaa"), &c) || string(c.get("run")) != "aaaa" || w.pcreErrors != 0 {
		t.Fatalf("plain match: %q, errors %d", c.get("run"), w.pcreErrors)
	}
	hostile := []byte(strings.Repeat("a", 60) + "!")
	if w.exec(&r, hostile, &c) {
		t.Fatal("matched a line that ends in !")
	}
	if w.pcreErrors != 1 {
		t.Fatalf("PCRE2 gave an answer within its limits (%d errors): the test needs a harder line", w.pcreErrors)
	}
	if w.matches(&r, hostile) || w.pcreErrors != 2 {
		t.Fatalf("matches: errors %d", w.pcreErrors)
	}
}

// Python's \s takes the vertical tab, and so must every engine that answers for it (the fuzz target
// found Go's regexp saying no where PCRE2 and Python say yes).
func TestPythonSpace(t *testing.T) {
	for _, c := range []struct {
		expr, line string
		want       bool
	}{
		{`^a\sb$`, "a\vb", true},
		{`^a\Sb$`, "a\vb", false},
		{`^a[\s]b$`, "a\vb", true},
		{`^a[^\s]b$`, "a\vb", false},
		{`^a\\sb$`, `a\sb`, true},
		{`^a[]\s]b$`, "a]b", true},
		{`^(?=a)a\sb$`, "a\vb", true}, // regexp2
	} {
		r, err := compileRx(c.expr, c.expr)
		if err != nil {
			t.Fatal(err)
		}
		if r.pc == nil && !strings.Contains(c.expr, "(?=") {
			t.Fatalf("%s: PCRE2 did not take it", c.expr)
		}
		var w Worker
		if r.pc != nil {
			if w.px, err = newPCREBatch(r.pc.pairs); err != nil {
				t.Fatal(err)
			}
			defer w.px.free()
			defer r.pc.free()
		}
		var caps captures
		if got := w.exec(&r, []byte(c.line), &caps); got != c.want {
			t.Errorf("%s on %q: %v, want %v (Python's answer)", c.expr, c.line, got, c.want)
		}
		pc := r.pc
		r.pc = nil // Go's answer too
		defer func() { r.pc = pc }()
		if got := w.exec(&r, []byte(c.line), &caps); got != c.want {
			t.Errorf("%s on %q through Go: %v, want %v", c.expr, c.line, got, c.want)
		}
	}
}

// A one-line jail's regexes run in PCRE2 with "." taking any byte (pcreForm), which is Python's
// "." only on text without a newline: text with one is matched by the pattern as written.
func TestPCREDotAllOnlyWithoutNewlines(t *testing.T) {
	f := &config.Filter{Name: "x", FailRegex: []config.Regex{{Text: `^a.b <HOST> <F-REST>.+</F-REST>$`}}}
	m := newMatcher(t, JailSpec{ID: 0, Name: "x", Filter: f})
	r := &m.jails[0].fail[0]
	if r.pc == nil || !r.pc.dotAll() {
		t.Fatalf("PCRE2 %+v", r.pc)
	}
	if ml, err := compileRx(`x`, `(?m)^a.b$`); err != nil || ml.pc == nil || ml.pc.dotAll() {
		t.Fatalf("a maxlines pattern: %v, PCRE2 %+v", err, ml.pc)
	}
	w := newWorker(t, m)
	for _, c := range []struct {
		text string
		want bool
		rest string
	}{
		{"axb 192.0.2.1 tail", true, "tail"},
		{"a\nb 192.0.2.1 tail", false, ""},
		{"axb 192.0.2.1 tail\nmore", false, ""}, // "$" before a final newline only: "more" follows
		{"axb 192.0.2.1 tail\n", true, "tail"},
	} {
		var caps captures
		got, rest := w.exec(r, []byte(c.text), &caps), ""
		if got {
			rest = string(caps.get("rest"))
		}
		if got != c.want || rest != c.rest {
			t.Errorf("%q: matched %v rest %q, want %v %q", c.text, got, rest, c.want, c.rest)
		}
		if w.pcreErrors != 0 {
			t.Fatalf("%q counted as a PCRE2 error", c.text)
		}
	}
}
