package matcher

import (
	"os"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// allFail2banFilters loads every filter fail2ban ships (one jail each), as a user pointing us at
// /etc/fail2ban with every jail enabled would have.
func allFail2banFilters(tb testing.TB) []JailSpec {
	tb.Helper()
	if err := f2bcorpus.Ensure(); err != nil {
		tb.Skipf("fail2ban's package is not available: %v", err)
	}
	entries, err := os.ReadDir(f2bcorpus.FilterDir())
	if err != nil {
		tb.Fatal(err)
	}
	var jails []JailSpec
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".conf")
		if !ok || strings.HasSuffix(name, "common") || strings.HasPrefix(name, "zzz-") {
			continue
		}
		f, errs := config.LoadFilter(f2bcorpus.FilterDir(), name, nil)
		if errs != nil {
			tb.Logf("%s does not load: %v", name, errs)
			continue
		}
		// Filters needing what the matcher does not do yet (multi-line <SKIPLINES>) are left out
		// and named; the conformance table counts them as failing.
		if m, err := New([]JailSpec{{ID: 0, Name: name, Filter: f}}, Options{}); err != nil {
			tb.Logf("%s left out: %v", name, firstLine(err))
			continue
		} else {
			m.Close()
		}
		jails = append(jails, JailSpec{ID: len(jails), Name: name, Filter: f})
	}
	return jails
}

// BenchmarkCompileAllFail2banFilters builds one database from every fail2ban filter.
func BenchmarkCompileAllFail2banFilters(b *testing.B) {
	jails := allFail2banFilters(b)
	patterns := 0
	for _, j := range jails {
		patterns += len(j.Filter.FailRegex) + len(j.Filter.IgnoreRegex)
	}
	b.ReportAllocs()
	var modes [3]int // failregexes by mode, from the last build
	for i := 0; i < b.N; i++ {
		m, err := New(jails, Options{})
		if err != nil {
			b.Fatal(err)
		}
		modes = [3]int{}
		for _, j := range jails {
			for _, md := range m.Modes(j.ID) {
				modes[md]++
			}
		}
		m.Close()
	}
	b.ReportMetric(float64(len(jails)), "filters")
	b.ReportMetric(float64(patterns), "regexes")
	for md, n := range modes {
		b.ReportMetric(float64(n), Mode(md).String()+"-failregexes")
	}
}

// Every filter fail2ban ships that loads must also compile, together, into one database.
func TestAllFail2banFiltersCompileTogether(t *testing.T) {
	jails := allFail2banFilters(t)
	if len(jails) < 80 {
		t.Fatalf("only %d of fail2ban's filters load", len(jails))
	}
	m, err := New(jails, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exact, pre, slow := 0, 0, 0
	for _, j := range jails {
		for _, md := range m.Modes(j.ID) {
			switch md {
			case Exact:
				exact++
			case Prefilter:
				pre++
			default:
				slow++
			}
		}
	}
	t.Logf("%d filters: %d failregexes exact in Hyperscan, %d prefiltered, %d Go-only", len(jails), exact, pre, slow)
}
