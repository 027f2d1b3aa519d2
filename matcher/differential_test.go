package matcher

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/internal/differential"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// TestDifferentialSSHD holds portcullis's engine against fail2ban's own, failure by failure, with
// fail2ban's sshd.conf in every mode over generated auth logs (differential.SSHD: reused PIDs,
// IPv6 forms, interleaved connections): the same lines report failures, for the same address at
// the same time. The one deliberate difference, a reused connection id, is held as
// differential.FreshIDs. DIFF_SEEDS (make differential) sets how many seeds; two by default.
func TestDifferentialSSHD(t *testing.T) {
	needCorpus(t)
	seeds := diffSeeds()
	start := time.Date(fixedNow.Year(), 3, 1, 0, 0, 0, 0, time.UTC)
	for _, mode := range []string{"normal", "ddos", "extra", "aggressive"} {
		f, errs := config.LoadFilter(f2bcorpus.FilterDir(), "sshd", map[string]string{"mode": mode})
		if errs != nil {
			t.Fatal(errs)
		}
		explained := 0
		for seed := range seeds {
			// A matcher per log: its multi-line cache would carry one log's connections into the next.
			m := newMatcherWith(t, Options{Now: func() time.Time { return fixedNow }, Location: time.UTC}, JailSpec{ID: 0, Name: "sshd", Filter: f})
			log := differential.SSHD(uint64(seed), 3000, start)
			fresh, _ := differential.FreshIDs(log)
			path := filepath.Join(t.TempDir(), "auth.log")
			os.WriteFile(path, fresh, 0o644)
			want, err := differential.Fail2ban(f2bcorpus.Root(), "sshd[mode="+mode+"]", path)
			if err != nil {
				t.Fatal(err)
			}
			got := portcullisFailures(t, m, log)
			if d := diffFailures(log, got, want); d != "" {
				t.Fatalf("mode %s, seed %d: portcullis and fail2ban differ (portcullis | fail2ban):\n%s%s", mode, seed, d,
					shrunk(t, log, f, "sshd", "sshd[mode="+mode+"]", true))
			}
			os.WriteFile(path, log, 0o644)
			asIs, err := differential.Fail2ban(f2bcorpus.Root(), "sshd[mode="+mode+"]", path)
			if err != nil {
				t.Fatal(err)
			}
			if diffFailures(log, got, asIs) != "" {
				explained++
			}
		}
		t.Logf("mode %s: %d seeds agree; on %d of them fail2ban, given the reused PIDs as they are, merges a new client into an earlier one", mode, seeds, explained)
	}
}

// shrunk is a minimal reproduction of a divergence: the fewest lines of log (differential.Shrink)
// on which the engines still differ, with both engines' failures on them.
func shrunk(t *testing.T, log []byte, f *config.Filter, name, spec string, freshIDs bool) string {
	dir := t.TempDir()
	run := func(lines []string) string {
		text := []byte(strings.Join(lines, "\n") + "\n")
		m, err := New([]JailSpec{{ID: 0, Name: name, Filter: f}}, Options{Now: func() time.Time { return fixedNow }, Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		got := portcullisFailures(t, m, text)
		if freshIDs {
			text, _ = differential.FreshIDs(text)
		}
		path := filepath.Join(dir, "log")
		os.WriteFile(path, text, 0o644)
		want, err := differential.Fail2ban(f2bcorpus.Root(), spec, path)
		if err != nil {
			t.Fatal(err)
		}
		return diffFailures([]byte(strings.Join(lines, "\n")), got, want)
	}
	lines := differential.Shrink(strings.Split(strings.TrimSuffix(string(log), "\n"), "\n"), func(ls []string) bool { return run(ls) != "" })
	return fmt.Sprintf("the shortest log found that still differs (%d lines):\n  %s\nwhere:\n%s", len(lines), strings.Join(lines, "\n  "), run(lines))
}

// diffSeeds is how many seeds each differential test runs: DIFF_SEEDS (make differential), else 2.
func diffSeeds() int {
	if n, err := strconv.Atoi(os.Getenv("DIFF_SEEDS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// portcullisFailures runs log through m in blocks of 500 lines, as a file source would.
func portcullisFailures(t *testing.T, m *Matcher, log []byte) []differential.Failure {
	w, err := m.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
	var out []differential.Failure
	for at := 0; at < len(lines); at += 500 {
		part := lines[at:min(at+500, len(lines))]
		evs, err := w.Match(block(ingest.NewJailSet(0), part...), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			out = append(out, differential.Failure{Line: at + int(ev.Line) + 1, ID: ev.Addr.Unmap().String(), Time: ev.Time})
		}
	}
	return out
}

// diffFailures lists the lines whose failures differ, with the line, at most 20 of them.
func diffFailures(log []byte, got, want []differential.Failure) string {
	key := func(f differential.Failure) string {
		if a, err := netip.ParseAddr(f.ID); err == nil {
			f.ID = a.Unmap().String()
		}
		return fmt.Sprintf("%s@%d", f.ID, f.Time)
	}
	by := func(fs []differential.Failure) map[int][]string {
		m := map[int][]string{}
		for _, f := range fs {
			m[f.Line] = append(m[f.Line], key(f))
		}
		for _, v := range m {
			slices.Sort(v)
		}
		return m
	}
	g, w := by(got), by(want)
	lines := bytes.Split(log, []byte("\n"))
	var b strings.Builder
	n := 0
	for i := 1; i <= len(lines); i++ {
		if slices.Equal(g[i], w[i]) {
			continue
		}
		if n++; n <= 20 {
			fmt.Fprintf(&b, "  %d: %s\n      %v | %v\n", i, lines[i-1], g[i], w[i])
		}
	}
	if n > 20 {
		fmt.Fprintf(&b, "  … %d lines in all\n", n)
	}
	return b.String()
}

// TestDifferentialNginxHTTPAuth: fail2ban's nginx-http-auth.conf in each mode, over generated error
// logs with hostile user names and requests (differential.NginxHTTPAuth), on both engines.
func TestDifferentialNginxHTTPAuth(t *testing.T) {
	needCorpus(t)
	seeds := diffSeeds()
	start := time.Date(fixedNow.Year(), 3, 1, 0, 0, 0, 0, time.UTC)
	for _, mode := range []string{"normal", "fallback", "aggressive"} {
		f, errs := config.LoadFilter(f2bcorpus.FilterDir(), "nginx-http-auth", map[string]string{"mode": mode})
		if errs != nil {
			t.Fatal(errs)
		}
		for seed := range seeds {
			m := newMatcherWith(t, Options{Now: func() time.Time { return fixedNow }, Location: time.UTC}, JailSpec{ID: 0, Name: "nginx-http-auth", Filter: f})
			log := differential.NginxHTTPAuth(uint64(seed), 3000, start)
			path := filepath.Join(t.TempDir(), "error.log")
			os.WriteFile(path, log, 0o644)
			want, err := differential.Fail2ban(f2bcorpus.Root(), "nginx-http-auth[mode="+mode+"]", path)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("mode %s, seed %d: fail2ban found no failure: the generator is broken", mode, seed)
			}
			if d := diffFailures(log, portcullisFailures(t, m, log), want); d != "" {
				t.Fatalf("mode %s, seed %d: portcullis and fail2ban differ (portcullis | fail2ban):\n%s%s", mode, seed, d,
					shrunk(t, log, f, "nginx-http-auth", "nginx-http-auth[mode="+mode+"]", false))
			}
		}
	}
}
