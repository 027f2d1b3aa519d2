package matcher

// Conformance with fail2ban: every `# failJSON:` sample of fail2ban's own test corpus, run through
// fail2ban's own filter.d on our engine, checked the way fail2ban's tests/samplestestcase.py checks
// them. fail2ban's files come from Debian's package, unpacked into a git-ignored cache at test time.
// The test prints a per-filter table and fails when the number of passing checks drops below the
// recorded ratchet (testdata/conformance.ratchet); raise the ratchet when it goes up.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin for the corpus's TZ=CET-01CEST-02,M3.5.0,M10.5.0

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// The corpus's clock: fail2ban's tests run with TZ=CET-01CEST-02,M3.5.0,M10.5.0 and now =
// 1124013600 (2005-08-14 12:00 CEST). Europe/Berlin has the same rules for these years.
const corpusNow = 1124013600

var corpusLoc *time.Location

var markerRE = regexp.MustCompile(`^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$`)

type corpusInstance struct {
	name  string
	opts  map[string]string
	m     *Matcher
	w     *Worker
	fails []config.Regex
	used  map[int]bool
	// usedText is shared by a filter's instances: as in samplestestcase.py, a failregex counts as
	// covered when any instance matched a regex of the same text.
	usedText map[string]bool
	err      error
}

// CONFORMANCE_FILTER=name runs one filter and lists every failure, for debugging.
var noteLimit = map[bool]int{true: 1000, false: 3}[os.Getenv("CONFORMANCE_FILTER") != ""]

type filterReport struct {
	name   string
	checks int
	passed int
	notes  []string
}

func (r *filterReport) check(ok bool, format string, args ...any) {
	r.checks++
	if ok {
		r.passed++
		return
	}
	if len(r.notes) < noteLimit {
		r.notes = append(r.notes, fmt.Sprintf(format, args...))
	}
}

// needCorpus fetches fail2ban's package, or skips (not root: it cannot be fetched) or fails.
func needCorpus(t testing.TB) {
	t.Helper()
	if err := f2bcorpus.Ensure(); err != nil {
		if os.Getuid() != 0 {
			t.Skipf("fail2ban's corpus is not cached and cannot be fetched without root: %v", err)
		}
		t.Fatalf("cannot fetch fail2ban's corpus: %v", err)
	}
}

func TestFail2banCorpus(t *testing.T) {
	needCorpus(t)
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	corpusLoc = loc
	entries, err := os.ReadDir(f2bcorpus.FilterDir())
	if err != nil {
		t.Fatal(err)
	}
	var reports []*filterReport
	total, passed := 0, 0
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".conf")
		// As samplestestcase.py: *common.conf files are shared parts, zzz-* are test-only filters.
		if !ok || strings.HasSuffix(name, "common") || strings.HasPrefix(name, "zzz-") {
			continue
		}
		if only := os.Getenv("CONFORMANCE_FILTER"); only != "" && only != name {
			continue
		}
		r := runCorpusFilter(name, f2bcorpus.FilterDir(), f2bcorpus.LogsDir(), "", loc)
		reports = append(reports, r)
		total += r.checks
		passed += r.passed
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].name < reports[j].name })
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %7s %7s  %s\n", "filter", "checks", "passed", "first failures")
	full := 0
	for _, r := range reports {
		if r.passed == r.checks {
			full++
		}
		sep := " | "
		if noteLimit > 3 {
			sep = "\n    "
		}
		fmt.Fprintf(&b, "%-28s %7d %7d  %s\n", r.name, r.checks, r.passed, strings.Join(r.notes, sep))
	}
	fmt.Fprintf(&b, "TOTAL: %d of %d checks pass; %d of %d filters pass every check\n", passed, total, full, len(reports))
	t.Log("\n" + b.String())
	if out := os.Getenv("CONFORMANCE_REPORT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}

	if os.Getenv("CONFORMANCE_FILTER") != "" {
		return
	}
	checkRatchet(t, "testdata/conformance.ratchet", "conformance", passed)
}

// checkRatchet fails when passed is below the floor recorded in file, and asks for the floor to be
// raised when it is above.
func checkRatchet(t *testing.T, file, what string, passed int) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	floor, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if passed < floor {
		t.Fatalf("%s dropped: %d checks pass, the ratchet is %d", what, passed, floor)
	}
	if passed > floor {
		t.Logf("%s improved: %d checks pass; raise %s from %d", what, passed, file, floor)
	}
}

// runCorpusFilter checks filter name of filterDir against the failJSON samples in
// logsDir/name+ext (and the files they add).
func runCorpusFilter(name, filterDir, logsDir, ext string, loc *time.Location) *filterReport {
	rep := &filterReport{name: name}
	instances := map[string]*corpusInstance{}
	usedText := map[string]bool{}
	getInstance := func(opts map[string]string) *corpusInstance {
		key := name + fmt.Sprint(opts)
		if in, ok := instances[key]; ok {
			return in
		}
		in := &corpusInstance{name: name, opts: opts, used: map[int]bool{}, usedText: usedText}
		instances[key] = in
		f, errs := config.LoadFilter(filterDir, name, opts)
		if errs != nil {
			in.err = errs
			return in
		}
		in.fails = f.FailRegex
		m, err := New([]JailSpec{{ID: 0, Name: name, Filter: f}}, Options{
			Now: func() time.Time { return time.Unix(corpusNow, 0) }, Location: loc})
		if err != nil {
			in.err = err
			return in
		}
		w, err := m.NewWorker()
		if err != nil {
			in.err = err
			return in
		}
		in.m, in.w = m, w
		return in
	}
	defer func() {
		for _, in := range instances {
			if in.w != nil {
				in.w.Close()
				in.m.Close()
			}
		}
	}()

	files := []string{name + ext}
	var commonOpts map[string]any
	for fi := 0; fi < len(files); fi++ {
		data, err := os.ReadFile(filepath.Join(logsDir, files[fi]))
		if err != nil {
			rep.check(false, "no sample log %s", files[fi])
			continue
		}
		var current []*corpusInstance
		var currentOpts []map[string]any
		ignoreBlock := false
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		lnnum := 0
		for sc.Scan() {
			lnnum++
			line := sc.Text()
			var fail map[string]any
			if mm := markerRE.FindStringSubmatch(line); mm != nil {
				var v any
				if err := json.Unmarshal([]byte(mm[2]), &v); err != nil {
					rep.check(false, "%s:%d: bad JSON", files[fi], lnnum)
					continue
				}
				switch mm[1] {
				case "fileOptions":
					commonOpts, _ = v.(map[string]any)
					continue
				case "filterOptions":
					current, currentOpts, ignoreBlock = nil, nil, false
					list, isList := v.([]any)
					if !isList {
						list = []any{v}
					}
					for _, o := range list {
						opts := map[string]any{}
						for k, x := range commonOpts {
							opts[k] = x
						}
						om, _ := o.(map[string]any)
						for k, x := range om {
							opts[k] = x
						}
						if cond, ok := opts["test.condition"].(string); ok {
							ignoreBlock = !evalCondition(cond, name, opts)
						}
						if !ignoreBlock {
							current = append(current, getInstance(filterArgs(opts)))
							currentOpts = append(currentOpts, opts)
						}
					}
					continue
				case "addFILE":
					if s, ok := v.(string); ok {
						files = append(files, s)
					}
					continue
				}
				fail, _ = v.(map[string]any)
				if !sc.Scan() {
					break
				}
				lnnum++
				line = sc.Text()
			} else if ignoreBlock || strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			} else {
				fail = map[string]any{}
			}
			if ignoreBlock {
				continue
			}
			if current == nil {
				current = []*corpusInstance{getInstance(nil)}
				currentOpts = []map[string]any{{}}
			}
			line = strings.TrimRight(line, "\r\n")
			for i, in := range current {
				opts := currentOpts[i]
				if c, ok := fail["constraint"].(string); ok && !evalCondition(c, name, opts) {
					continue
				}
				where := fmt.Sprintf("%s:%d", files[fi], lnnum)
				if in.err != nil {
					rep.check(false, "%s: filter does not load: %v", where, firstLine(in.err))
					continue
				}
				checkSample(rep, in, opts, fail, line, where)
			}
		}
	}
	// Every failregex of every instance must be hit by some sample.
	keys := make([]string, 0, len(instances))
	for k := range instances {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in := instances[k]
		if in.err != nil {
			continue
		}
		for i := range in.fails {
			rep.check(in.used[i] || usedText[in.fails[i].Text], "%s%v: failregex[%d] has no matching sample", name, in.opts, i)
		}
	}
	return rep
}

func checkSample(rep *filterReport, in *corpusInstance, opts, fail map[string]any, line, where string) {
	var res Result
	var err error
	if opts["logtype"] == "journal" {
		if p, ok := opts["test.prefix-line"].(string); ok {
			line = p + line
		}
		res, err = in.w.ExplainAt(0, []byte(line), time.Unix(corpusNow, 0))
	} else {
		res, err = in.w.Explain(0, []byte(line))
	}
	if err != nil {
		rep.check(false, "%s: %v", where, err)
		return
	}
	if res.Matched || res.NoFail || res.Pending {
		in.used[res.Regex] = true
		in.usedText[in.fails[res.Regex].Text] = true
	}
	want, _ := fail["match"].(bool)
	if !want {
		rep.check(!res.Matched, "%s: matched but should not (regex %d)", where, res.Regex)
		return
	}
	if !res.Matched {
		reason := "no match"
		if res.NoDate {
			reason = "no date found"
		} else if res.Ignored {
			reason = "ignored"
		}
		rep.check(false, "%s: %s", where, reason)
		return
	}
	ok := true
	var why []string
	if res.Others > 0 {
		ok = false
		why = append(why, fmt.Sprintf("%d more failregexes match", res.Others))
	}
	for k, v := range fail {
		switch k {
		case "time", "match", "desc", "constraint", "inject": // inject: our samples' injection points
			continue
		}
		got, have := res.Fields[k]
		switch {
		case k == "host" && !have:
			got = res.ID
		case k == "attempts" && !have:
			got = strconv.Itoa(res.Attempts)
		case k == "users":
			if !sameList(res.Users, v) {
				ok = false
				why = append(why, fmt.Sprintf("users=%q want %v", res.Users, v))
			}
			continue
		}
		if !sameValue(k, got, v) {
			ok = false
			why = append(why, fmt.Sprintf("%s=%q want %v", k, got, v))
		}
	}
	if ts, has := fail["time"].(string); has {
		// The corpus gives local times of its TZ (CET/CEST).
		want, err := parseCorpusTime(ts, corpusLoc)
		if err != nil || math.Abs(float64(res.Time.UnixNano()-want.UnixNano())/1e9) > 1e-6 {
			ok = false
			why = append(why, fmt.Sprintf("time %s want %s", res.Time.In(corpusLoc).Format("2006-01-02T15:04:05.999999"), ts))
		}
	}
	rep.check(ok, "%s: %s", where, strings.Join(why, ", "))
}

func parseCorpusTime(s string, loc *time.Location) (time.Time, error) {
	// Python's strptime takes unpadded fields too ("2005-03-7T02:09:33" is in the corpus).
	for _, layout := range []string{"2006-1-2T15:04:05", "2006-1-2T15:04:05.999999"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

// sameValue compares a captured field with the corpus value (a string, a number or a list).
func sameValue(k, got string, want any) bool {
	switch w := want.(type) {
	case string:
		if got == w {
			return true
		}
		a, e1 := netip.ParseAddr(got)
		b, e2 := netip.ParseAddr(w)
		return e1 == nil && e2 == nil && a == b
	case float64:
		return got == strconv.FormatFloat(w, 'f', -1, 64)
	case nil:
		return got == ""
	}
	return false
}

func sameList(got []string, want any) bool {
	w, ok := want.([]any)
	if !ok || len(w) != len(got) {
		return false
	}
	g := append([]string(nil), got...)
	ws := make([]string, len(w))
	for i, x := range w {
		ws[i] = fmt.Sprint(x)
	}
	sort.Strings(g)
	sort.Strings(ws)
	return strings.Join(g, "\x00") == strings.Join(ws, "\x00")
}

func filterArgs(opts map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range opts {
		if strings.HasPrefix(k, "test.") {
			continue
		}
		out[k] = fmt.Sprint(v)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

var condRE = regexp.MustCompile(`^\s*(name|opts\.get\('([\w.-]+)'\))\s*(==|!=)\s*'([^']*)'\s*$`)

// evalCondition evaluates the few Python expressions the corpus uses in test.condition and
// constraint: name == 'x', opts.get('k') == 'v' and their != forms.
func evalCondition(expr, name string, opts map[string]any) bool {
	m := condRE.FindStringSubmatch(expr)
	if m == nil {
		return false
	}
	left := name
	if m[1] != "name" {
		left = fmt.Sprint(opts[m[2]])
		if opts[m[2]] == nil {
			left = "None"
		}
	}
	if m[3] == "==" {
		return left == m[4]
	}
	return left != m[4]
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
