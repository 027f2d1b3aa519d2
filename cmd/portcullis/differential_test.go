package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/differential"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// banJails are the jail.conf variants the ban level runs: each a [DEFAULT] and jails over the log
// LOG, read as they are by fail2ban's configuration reader and by portcullis.
var banJails = []struct{ name, conf string }{
	{"plain", "[sshd]\nmaxretry = 3\nfindtime = 60\nbantime = 30\n"},
	{"increment", "[sshd]\nmaxretry = 3\nfindtime = 60\nbantime = 30\nbantime.increment = true\nbantime.factor = 2\n"},
	{"multipliers", "[sshd]\nmaxretry = 4\nfindtime = 60\nbantime = 20\nbantime.increment = true\nbantime.factor = 1.5\n" +
		"bantime.multipliers = 1 2 4 8 16\nbantime.maxtime = 300\n"},
	{"formula", "[sshd]\nmaxretry = 3\nfindtime = 45\nbantime = 25\nbantime.increment = true\nbantime.factor = 1\n" +
		"bantime.formula = ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)\nbantime.maxtime = 400\n"},
	{"overalljails", "[DEFAULT]\nbantime.increment = true\nbantime.overalljails = true\n" +
		"[sshd]\nmaxretry = 3\nfindtime = 60\nbantime = 30\n[sshd-slow]\nfilter = sshd\nmaxretry = 5\nfindtime = 120\nbantime = 40\n"},
	{"forever", "[sshd]\nmaxretry = 2\nfindtime = 30\nbantime = -1\n"},
	{"maxretry1", "[sshd]\nmaxretry = 1\nbantime = 15\n"},
	// recidive reads fail2ban's log in fail2ban, our bans here: the same bans either way.
	{"recidive", "[sshd]\nmaxretry = 3\nfindtime = 60\nbantime = 30\n" +
		"[recidive]\nfilter = recidive\nlogpath = @DIR@/fail2ban.log\nmaxretry = 3\nfindtime = 400\nbantime = 200\n"},
}

// TestDifferentialBans holds `portcullis replay --json` against fail2ban's own server code
// (differential.Fail2banBans: its Filter, FailManager, BanManager and observer with its clock at
// each line's time) on generated logs of repeat offenders at the findtime and bantime edges
// (differential.Offenders), for each jail variant: the same bans (address, start, duration, end,
// ban count), the same prolonged bans, the same unbans. portcullis's two deliberate differences at
// this level are held by the oracle's "exact" mode: failures are counted exactly within findtime
// (fail2ban estimates from the rate), and a ban is over at its end time, as the kernel's timeout
// is (fail2ban keeps it one more second). DIFF_SEEDS (make differential) sets how many seeds.
func TestDifferentialBans(t *testing.T) {
	if err := f2bcorpus.Ensure(); err != nil {
		if os.Getuid() != 0 {
			t.Skipf("fail2ban's package is not cached and cannot be fetched without root: %v", err)
		}
		t.Fatal(err)
	}
	seeds := 1 // each seed runs every variant twice (in order, shuffled) through fail2ban's server code
	from, _ := strconv.Atoi(os.Getenv("DIFF_SEED_FROM"))
	from = max(from, 0)
	if n, err := strconv.Atoi(os.Getenv("DIFF_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	now := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range banJails {
		for seed := from; seed < from+seeds; seed++ {
			for _, shuffle := range []bool{false, true} {
				dir := banConf(t, v.conf)
				counted := strings.Contains(v.conf, "bantime.increment = true")
				log := differential.Offenders(uint64(seed), 2000, start, 60, 30, shuffle)
				if d := banDiff(t, dir, counted, now, log); d != "" {
					lines := differential.Shrink(strings.Split(strings.TrimSuffix(string(log), "\n"), "\n"), func(ls []string) bool {
						return banDiff(t, dir, counted, now, []byte(strings.Join(ls, "\n")+"\n")) != ""
					})
					short := []byte(strings.Join(lines, "\n") + "\n")
					t.Fatalf("jails %s, seed %d, shuffled %v: portcullis and fail2ban differ (- portcullis only, + fail2ban only):\n%s"+
						"the shortest log found that still differs (%d lines):\n  %s\nwhere:\n%s",
						v.name, seed, shuffle, d, len(lines), strings.Join(lines, "\n  "), banDiff(t, dir, counted, now, short))
				}
			}
		}
	}
}

// banConf writes a configuration folder both engines read: fail2ban.conf and filter.d from
// fail2ban's package, and jail.conf with the variant's jails reading LOG (the folder's auth.log).
func banConf(t *testing.T, jails string) string {
	t.Helper()
	dir := t.TempDir()
	etc := filepath.Join(f2bcorpus.Root(), "etc", "fail2ban")
	data, err := os.ReadFile(filepath.Join(etc, "fail2ban.conf"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "fail2ban.conf"), data, 0o644)
	if err := os.Symlink(filepath.Join(etc, "filter.d"), filepath.Join(dir, "filter.d")); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(filepath.Join(dir, "fail2ban.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "[DEFAULT]\nbackend = polling\naction =\nenabled = true\nfilter = sshd\nlogpath = " + log + "\n" +
		strings.ReplaceAll(jails, "@DIR@", dir)
	if err := os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// banDiff runs both engines over log in dir and lists the decisions only one of them made.
// Without bantime.increment fail2ban keeps no ban history: every ban is its first (ban count 1).
// portcullis counts bans whatever the jail (status, the audit log): counted says whether the
// variant increments, so counts are compared.
func banDiff(t *testing.T, dir string, counted bool, now time.Time, log []byte) string {
	t.Helper()
	path := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(path, log, 0o644); err != nil {
		t.Fatal(err)
	}
	want, last, err := differential.Fail2banBans(f2bcorpus.Root(), dir, now, path, true)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "", "replay", "-c", dir, "--json", "--now", fmt.Sprint(now.Unix()), path)
	if code != 0 {
		t.Fatalf("portcullis replay: exit %d: %s", code, stderr)
	}
	var got []differential.Decision
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r struct {
			Op       string  `json:"op"`
			Jail     string  `json:"jail"`
			Address  string  `json:"address"`
			Time     float64 `json:"time"`
			Duration float64 `json:"duration"`
			End      int64   `json:"end"`
			Count    int     `json:"bancount"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("replay printed %q: %v", sc.Text(), err)
		}
		d := differential.Decision{Op: r.Op, Jail: r.Jail, Address: r.Address, End: r.End}
		if r.Op == "ban" {
			d.Start, d.Duration, d.Count = int64(r.Time), int64(r.Duration), r.Count
		}
		got = append(got, d)
	}
	// Unbans after the last failure: fail2ban sees their time pass on any line, replay's clock
	// is its failures' time.
	keep := func(ds []differential.Decision) []string {
		var out []string
		for _, d := range ds {
			if !counted {
				d.Count = 0
			}
			if d.Op == "unban" && d.End > last {
				continue
			}
			if a, err := netip.ParseAddr(d.Address); err == nil {
				d.Address = a.Unmap().String()
			}
			out = append(out, d.String())
		}
		slices.Sort(out)
		return out
	}
	g, w := keep(got), keep(want)
	if slices.Equal(g, w) {
		if len(w) == 0 && len(log) > 10000 {
			t.Fatalf("fail2ban banned nothing over %d bytes of log: the generator is broken", len(log))
		}
		return ""
	}
	var b strings.Builder
	for _, s := range g {
		if !slices.Contains(w, s) {
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	}
	for _, s := range w {
		if !slices.Contains(g, s) {
			fmt.Fprintf(&b, "  + %s\n", s)
		}
	}
	return b.String()
}
