package matcher

// Our own filter library (configs/filter.d), held to the same conformance runner as fail2ban's
// corpus: every filter ships a sample log testdata/filters/NAME.log in fail2ban's # failJSON:
// convention and must pass every check. The lint and the injection corpus below apply to every
// one of them.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/samples"
)

var (
	ownFilterDir = filepath.Join("..", "configs", "filter.d")
	ownSamples   = filepath.Join("..", "testdata", "filters")
)

// ownFilters lists configs/filter.d's filters (shared parts such as common.conf excluded).
func ownFilters(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(ownFilterDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".conf"); ok && !strings.HasSuffix(name, "common") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// ownFilter loads one filter of the library.
func ownFilter(t testing.TB, name string) *config.Filter {
	t.Helper()
	f, errs := config.LoadFilter(ownFilterDir, name, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	return f
}

// librarySpecs is every filter of the library as a jail, but recidive (fed by the daemon's own
// bans, never by log lines).
func librarySpecs(t testing.TB) []JailSpec {
	t.Helper()
	var specs []JailSpec
	for _, name := range ownFilters(t) {
		if name != "recidive" {
			specs = append(specs, JailSpec{ID: len(specs), Name: name, Filter: ownFilter(t, name)})
		}
	}
	return specs
}

// addSamples seeds f with the log lines of the library's sample for filter name.
func addSamples(f *testing.F, name string) {
	data, err := os.ReadFile(filepath.Join(ownSamples, name+".log"))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			f.Add([]byte(line))
		}
	}
}

func TestOwnFilters(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin") // the corpus's clock: see conformance_test.go
	if err != nil {
		t.Fatal(err)
	}
	corpusLoc = loc
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %7s %7s  %s\n", "filter", "checks", "passed", "first failures")
	for _, name := range ownFilters(t) {
		if _, err := os.Stat(filepath.Join(ownSamples, name+".log")); err != nil {
			t.Errorf("filter %s has no sample log %s", name, filepath.Join(ownSamples, name+".log"))
			continue
		}
		r := runCorpusFilter(name, ownFilterDir, ownSamples, ".log", loc)
		fmt.Fprintf(&b, "%-22s %7d %7d  %s\n", name, r.checks, r.passed, strings.Join(r.notes, " | "))
		if r.passed != r.checks || r.checks == 0 {
			t.Errorf("filter %s: %d of %d checks pass: %s", name, r.passed, r.checks, strings.Join(r.notes, " | "))
		}
	}
	t.Log("\n" + b.String())
}

// TestOwnFiltersOnFail2banSamples runs each of our filters over fail2ban's sample log of the same
// name and reports the agreement. Full agreement is not a requirement (where we differ on purpose,
// the filter's header says why), but the total may not drop below testdata/ownfilters.ratchet.
func TestOwnFiltersOnFail2banSamples(t *testing.T) {
	needCorpus(t)
	loc, _ := time.LoadLocation("Europe/Berlin")
	corpusLoc = loc
	var b strings.Builder
	passed := 0
	fmt.Fprintf(&b, "%-22s %7s %7s %9s\n", "filter", "checks", "agree", "agreement")
	for _, name := range ownFilters(t) {
		if _, err := os.Stat(filepath.Join(f2bcorpus.LogsDir(), name)); err != nil {
			fmt.Fprintf(&b, "%-22s %7s %7s %9s\n", name, "-", "-", "no sample")
			continue
		}
		r := runCorpusFilter(name, ownFilterDir, f2bcorpus.LogsDir(), "", loc)
		fmt.Fprintf(&b, "%-22s %7d %7d %8.1f%%\n", name, r.checks, r.passed, 100*float64(r.passed)/float64(max(r.checks, 1)))
		passed += r.passed
	}
	t.Log("\n" + b.String())
	checkRatchet(t, "testdata/ownfilters.ratchet", "agreement of our filters with fail2ban's samples", passed)
}

var hostTagRE = regexp.MustCompile(`<(?:HOST|ADDR|IP4|IP6|SUBNET|CIDR)>`)

// Every failregex of our filters starts anchored, has no greedy catch-all before its address
// unless it is anchored at the end too, and runs in Hyperscan's exact mode (no prefilter).
func TestOwnFiltersLint(t *testing.T) {
	for _, name := range ownFilters(t) {
		f, errs := config.LoadFilter(ownFilterDir, name, nil)
		if errs != nil {
			t.Errorf("%s: %v", name, errs)
			continue
		}
		for i, r := range f.FailRegex {
			where := fmt.Sprintf("%s failregex[%d] (%s:%d)", name, i, filepath.Base(r.File), r.Line)
			if !strings.HasPrefix(r.Text, "^") {
				t.Errorf("%s is not anchored at the start: %s", where, r.Text)
			}
			if loc := hostTagRE.FindStringIndex(r.Text); loc != nil {
				before := r.Text[:loc[0]]
				if (strings.Contains(before, ".*") || strings.Contains(before, ".+")) && !strings.HasSuffix(r.Text, "$") {
					t.Errorf("%s has a catch-all before its address and no end anchor: %s", where, r.Text)
				}
			}
		}
		m, err := New([]JailSpec{{ID: 0, Name: name, Filter: f}}, Options{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for i, mode := range m.Modes(0) {
			if mode != Exact {
				t.Errorf("%s failregex[%d] runs in %s mode, want exact", name, i, mode)
			}
		}
		m.Close()
	}
}

// The injection corpus: in every sample of our filters, each attacker-written field (the
// failJSON "user", and the strings listed in its "inject": URLs, user agents, HELO names,
// reverse-DNS names) is replaced in turn by text an attacker would write to frame someone; no
// variant may make the filter report the injected address. Fields sshd or a web server writes
// itself (ports, status codes, the client address) are not the attacker's to choose.
func TestOwnFiltersInjection(t *testing.T) {
	const victim = "203.0.113.77"
	payloads := []string{
		"x from " + victim, "[client " + victim + "]", "rhost=" + victim, victim + " port 22 ssh2",
		"x from " + victim + " port 22 ssh2", "user=" + victim, "(" + victim + ")", "<" + victim + ">",
		victim, "[" + victim + "]:25", "from=<a@" + victim + ">", "client: " + victim + ",",
		"x from " + victim + " not allowed because not listed in AllowUsers", victim + " - - [14/Aug/2005:11:58:59 +0200] \"GET / HTTP/1.1\" 401 0",
		// A user name ending like sshd's own tail, up to the auth info sshd may add after it.
		"x from " + victim + " port 22 ssh2:", "x from " + victim + " port 22 ssh2: RSA SHA256:AAAA", "x from " + victim + " ssh2:",
		"x from " + victim + " port 22:", "x from " + victim + " port 22 ssh2 [preauth]", "x from " + victim + " port 22 ssh2: from",
	}
	now := time.Unix(corpusNow, 0)
	for _, name := range ownFilters(t) {
		f, errs := config.LoadFilter(ownFilterDir, name, nil)
		if errs != nil {
			t.Errorf("%s: %v", name, errs)
			continue
		}
		m, err := New([]JailSpec{{ID: 0, Name: name, Filter: f}}, Options{Now: func() time.Time { return now }, Location: corpusLocOrUTC()})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		w, err := m.NewWorker()
		if err != nil {
			t.Fatal(err)
		}
		injections, err := samples.Injections(filepath.Join(ownSamples, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		tried := 0
		for _, in := range injections {
			line := in.Line
			for _, target := range in.Targets {
				if !strings.Contains(line, target) {
					t.Errorf("%s: injection point %q is not in %q", name, target, line)
					continue
				}
				for _, p := range payloads {
					variant := strings.Replace(line, target, p, 1)
					tried++
					if r, err := w.Explain(0, []byte(variant)); err == nil && r.Matched && r.ID == victim {
						t.Errorf("%s: injected address taken from\n  %s", name, variant)
					}
				}
			}
		}
		if tried == 0 {
			t.Errorf("%s: no sample names an attacker-written field to inject into (\"user\" or \"inject\")", name)
		}
		w.Close()
		m.Close()
	}
}

func corpusLocOrUTC() *time.Location {
	if loc, err := time.LoadLocation("Europe/Berlin"); err == nil {
		return loc
	}
	return time.UTC
}
