package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testconf"
)

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	testconf.Write(t, dir, "[sshd]\nenabled = true\nlogpath = /nonexistent.log\nmaxretry = 2\nfindtime = 10m\nbantime = 60\nignoreip = 192.0.2.0/24\n")
	fail := func(ts, ip string) string {
		return "2026-03-01T" + ts + "+00:00 h sshd[1]: Failed password for root from " + ip + " port 22 ssh2"
	}
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, []byte(strings.Join([]string{
		fail("10:00:00", "203.0.113.1"),
		fail("10:00:01", "203.0.113.1"), // second failure: ban at 10:00:01 for 60 s
		fail("10:00:02", "192.0.2.5"),
		fail("10:00:03", "192.0.2.5"),   // ignoreip: never banned
		fail("10:05:00", "203.0.113.2"), // the clock passes 10:01:01: 203.0.113.1 is unbanned first
		fail("10:05:01", "203.0.113.2"),
	}, "\n")+"\n"), 0o644)
	out, stderr, code := runCLI(t, "", "replay", "-c", dir, "--json", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	type dec struct {
		Time     float64 `json:"time"`
		Op       string  `json:"op"`
		Address  string  `json:"address"`
		Failures int     `json:"failures"`
		Duration float64 `json:"duration"`
	}
	var got []dec
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var d dec
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, d)
	}
	t0 := 1772359200.0 // 2026-03-01T10:00:00Z
	want := []dec{
		{t0 + 1, "ban", "203.0.113.1", 2, 60},
		{t0 + 61, "unban", "203.0.113.1", 0, 0},
		{t0 + 301, "ban", "203.0.113.2", 2, 60},
	}
	if len(got) != len(want) {
		t.Fatalf("decisions %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("decision %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if !strings.Contains(stderr, "sshd: 6 failures, 2 bans") {
		t.Errorf("summary: %s", stderr)
	}
	// --from leaves out what came before.
	out, _, _ = runCLI(t, "", "replay", "-c", dir, "--from", "2026-03-01T10:01:00Z", log)
	if strings.Contains(out, "203.0.113.1") || !strings.Contains(out, "ban   sshd 203.0.113.2 after 2 failures, for 1m0s") {
		t.Errorf("--from: %s", out)
	}
}

// bantime.increment in a replay: each new ban of the same address lasts twice as long.
func TestReplayIncrement(t *testing.T) {
	dir := t.TempDir()
	testconf.Write(t, dir, "[sshd]\nenabled = true\nlogpath = /nonexistent.log\nmaxretry = 1\nbantime = 60\nbantime.increment = true\n")
	var lines []string
	for _, ts := range []string{"10:00:00", "10:05:00", "10:10:00", "10:20:00"} {
		lines = append(lines, "2026-03-01T"+ts+"+00:00 h sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2")
	}
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out, stderr, code := runCLI(t, "", "replay", "-c", dir, log)
	if code != 0 {
		t.Fatalf("%d %s", code, stderr)
	}
	for _, want := range []string{"for 1m0s", "for 2m0s", "for 4m0s", "for 8m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks a ban %s:\n%s", want, out)
		}
	}
}

// recidive: an address banned three times by sshd within findtime is banned for a week by the
// recidive jail, which reads no log: it is fed the bans themselves.
func TestReplayRecidive(t *testing.T) {
	dir := t.TempDir()
	testconf.Write(t, dir, "[sshd]\nenabled = true\nlogpath = /nonexistent.log\nmaxretry = 1\nbantime = 60\n"+
		"[recidive]\nenabled = true\nlogpath = /var/log/fail2ban.log\nmaxretry = 3\nfindtime = 1d\nbantime = 1w\n")
	var lines []string
	for _, ts := range []string{"10:00:00", "10:02:00", "10:04:00"} {
		lines = append(lines, "2026-03-01T"+ts+"+00:00 h sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2")
	}
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out, stderr, code := runCLI(t, "", "replay", "-c", dir, "--json", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var d struct {
			Time     float64 `json:"time"`
			Op, Jail string
			Duration float64 `json:"duration"`
		}
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, fmt.Sprintf("%s %s +%.0f %.0f", d.Op, d.Jail, d.Time-1772359200, d.Duration))
	}
	want := []string{"ban sshd +0 60", "unban sshd +60 0", "ban sshd +120 60", "unban sshd +180 0", "ban sshd +240 60", "ban recidive +240 604800"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("decisions\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(stderr, "its logpath (/var/log/fail2ban.log) is not read") {
		t.Errorf("no warning that the recidive logpath is not read:\n%s", stderr)
	}
}
