package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	var code int
	if args[0] == "regex" {
		code = cmdRegex(args[1:], strings.NewReader(stdin), &out, &errb)
	} else {
		code = runMain(args, &out, &errb)
	}
	return out.String(), errb.String(), code
}

const regexLog = `Nov 23 10:00:01 web1 sshd[11]: Failed password for invalid user admin from 203.0.113.7 port 4000 ssh2
Nov 23 10:00:02 web1 CRON[12]: pam_unix(cron:session): session opened for user root
` + "\x00binary\x00junk" + `
Nov 23 10:00:03 web1 sshd[13]: Invalid user oracle from 2001:db8::7 port 4001
Nov 23 10:00:04 web1 sshd[14]: Accepted publickey for deploy from 198.51.100.2 port 4002 ssh2
Dec 31 23:59:59 web1 sshd[15]: Failed password for root from 203.0.113.8 port 4003 ssh2`

func TestRegexJSON(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, []byte(regexLog), 0o644) // no trailing newline: the last line still counts
	out, stderr, code := runCLI(t, "", "regex", "--json", "--now", "2026-01-01T00:30:00Z", "--config", "../../configs", log, "sshd")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, m)
	}
	if len(got) != 3 {
		t.Fatalf("want 3 failures, got %d:\n%s", len(got), out)
	}
	want := []struct {
		line  float64
		id    string
		regex float64
		time  float64
	}{
		// Year-less stamps in November go a year back, as --now is Jan 1 2026; local zone.
		{1, "203.0.113.7", 0, float64(time.Date(2025, 11, 23, 10, 0, 1, 0, time.Local).Unix())},
		{4, "2001:db8::7", 1, float64(time.Date(2025, 11, 23, 10, 0, 3, 0, time.Local).Unix())}, // line 3 is binary junk, counted but skipped
		{6, "203.0.113.8", 0, float64(time.Date(2025, 12, 31, 23, 59, 59, 0, time.Local).Unix())},
	}
	for i, w := range want {
		g := got[i]
		if g["line"] != w.line || g["id"] != w.id || g["regex"] != w.regex || g["time"] != w.time || g["attempts"] != float64(1) {
			t.Errorf("failure %d: got %v, want line %v id %s regex %v time %v", i, g, w.line, w.id, w.regex, w.time)
		}
	}
	if got[0]["ip4"] != "203.0.113.7" || got[1]["ip6"] != "2001:db8::7" {
		t.Errorf("captured groups missing: %v", got)
	}
}

func TestRegexSummaryRawRegexAndErrors(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, []byte(regexLog+"\n"), 0o644)
	out, stderr, code := runCLI(t, "", "regex", "--config", "../../configs", log, "sshd")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Failregex: 3 total", "Lines: 6 lines, 0 ignored, 3 matched, 3 missed", "(1 over-long or binary lines skipped)", "Date template hits:", "lines/s]"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// A single line and a raw regex, with an ignoreregex.
	out, _, code = runCLI(t, "", "regex", "Nov 24 10:00:00 h app: bad login for bob from 203.0.113.9", `^\s*\S+ app: bad login for (?P<user>\S+) from <HOST>$`)
	if code != 0 || !strings.Contains(out, "1 matched") {
		t.Fatalf("raw regex: %d\n%s", code, out)
	}
	out, _, _ = runCLI(t, "", "regex", "Nov 24 10:00:00 h app: bad login for bob from 203.0.113.9", `^\s*\S+ app: bad login for (?P<user>\S+) from <HOST>$`, "for bob ")
	if !strings.Contains(out, "1 ignored, 0 matched") {
		t.Fatalf("ignoreregex:\n%s", out)
	}
	// Standard input, a filter file by path with arguments, logtype=journal taking --now.
	fdir := filepath.Join(dir, "filter.d")
	os.MkdirAll(fdir, 0o755)
	os.WriteFile(filepath.Join(fdir, "app.conf"), []byte("[Init]\nword = bad\n[Definition]\nfailregex = ^app: <word> login from <HOST>$\n"), 0o644)
	out, stderr, code = runCLI(t, "app: worse login from 203.0.113.1\napp: bad login from 203.0.113.2\n", "regex", "--json", "--now", "1700000000", "-", filepath.Join(fdir, "app.conf")+"[logtype=journal, word=worse]")
	if code != 0 || !strings.Contains(out, `"id":"203.0.113.1"`) || !strings.Contains(out, `"time":1700000000`) || strings.Contains(out, "203.0.113.2") {
		t.Fatalf("journal lines from stdin: %d %s %s", code, out, stderr)
	}
	// Errors: an unknown filter, a regex nobody can compile.
	_, stderr, code = runCLI(t, "", "regex", "--config", "../../configs", log, "nosuch")
	if code == 0 || !strings.Contains(stderr, `no filter "nosuch"`) {
		t.Errorf("unknown filter: %d %q", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "regex", log, `^bad (<HOST>$`)
	if code == 0 || !strings.Contains(stderr, "failregex[0]") {
		t.Errorf("broken regex: %d %q", code, stderr)
	}
}

// TZ is honoured as fail2ban-regex honours it, POSIX rules included (the binary sets it up).
func TestRegexHonoursTZ(t *testing.T) {
	line := "Aug 14 11:59:59 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2"
	for tz, want := range map[string]string{
		"CET-01CEST-02,M3.5.0,M10.5.0": `"time":1124013599`, // 11:59:59 CEST
		"Europe/Berlin":                `"time":1124013599`,
		"UTC":                          `"time":1124020799`, // 11:59:59 UTC
	} {
		cmd := exec.Command(binary(t), "regex", "--json", "--now", "1124013600", "--config", "../../configs", line, "sshd")
		cmd.Env = append(os.Environ(), "TZ="+tz)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("TZ=%s: %v %s; want %s", tz, err, out, want)
		}
	}
}

// Rotated archives read like plain logs, from a file or standard input.
func TestRegexArchives(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "auth.log")
	os.WriteFile(plain, []byte(regexLog+"\n"), 0o644)
	if out, err := exec.Command("gzip", "-k", plain).CombinedOutput(); err != nil {
		t.Skipf("gzip not available: %v %s", err, out)
	}
	out, stderr, code := runCLI(t, "", "regex", "--config", "../../configs", plain+".gz", "sshd")
	if code != 0 || !strings.Contains(out, "Lines: 6 lines, 0 ignored, 3 matched") {
		t.Fatalf("gz file: %d %s %s", code, out, stderr)
	}
	gz, _ := os.ReadFile(plain + ".gz")
	out, _, code = runCLI(t, string(gz), "regex", "--config", "../../configs", "-", "sshd")
	if code != 0 || !strings.Contains(out, "3 matched") {
		t.Fatalf("gz on stdin: %d %s", code, out)
	}
}

// fail2ban-regex's line lists, held against fail2ban-regex itself (from the fetched package) on
// the same log and fail2ban's own sshd filter: the matched, missed and ignored lists asked for,
// the missed ones listed unasked when few, "too many to print" when not, and none with
// --print-no-missed. A LOG that names a file that is not there is an error, not a log line.
func TestRegexPrintLinesAsFail2banRegex(t *testing.T) {
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	dir := t.TempDir()
	var many strings.Builder
	many.WriteString(regexLog + "\n")
	for i := range 25 {
		fmt.Fprintf(&many, "Nov 23 10:01:%02d web1 CRON[%d]: pam_unix(cron:session): session closed for user root\n", i, 100+i)
	}
	few, lots := filepath.Join(dir, "few.log"), filepath.Join(dir, "lots.log")
	os.WriteFile(few, []byte(strings.ReplaceAll(regexLog, "\x00binary\x00junk\n", "")+"\n"), 0o644)
	os.WriteFile(lots, []byte(strings.ReplaceAll(many.String(), "\x00binary\x00junk\n", "")), 0o644)
	filter := filepath.Join(f2bcorpus.FilterDir(), "sshd.conf")
	lib := filepath.Join(f2bcorpus.Root(), "usr", "lib", "python3", "dist-packages")
	lists := func(out string) string {
		var keep []string
		in := false
		for _, l := range strings.Split(out, "\n") {
			switch {
			case strings.HasSuffix(l, "line(s):") && strings.HasPrefix(l, "|- "):
				in = true
			case strings.Contains(l, "too many to print"):
				keep = append(keep, l)
				continue
			}
			if in {
				keep = append(keep, l)
				if l == "`-" {
					in = false
				}
			}
		}
		return strings.Join(keep, "\n")
	}
	for _, c := range []struct {
		log   string
		flags []string
	}{
		{few, nil},
		{few, []string{"--print-all-matched"}},
		{few, []string{"--print-no-missed"}},
		{lots, nil},
		{lots, []string{"--print-all-missed"}},
		{few, []string{"--print-all-matched", "--print-all-ignored"}},
	} {
		args := append(append([]string{}, c.flags...), c.log, filter)
		if slices.Contains(c.flags, "--print-all-ignored") {
			args = append(args, "Accepted publickey|Invalid user")
		}
		cmd := exec.Command("/usr/bin/python3", append([]string{filepath.Join(f2bcorpus.Root(), "usr", "bin", "fail2ban-regex")}, args...)...)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+lib, "TZ=UTC")
		want, err := cmd.Output()
		if err != nil {
			t.Fatalf("fail2ban-regex %v: %v", args, err)
		}
		t.Setenv("TZ", "UTC")
		got, stderr, code := runCLI(t, "", append([]string{"regex"}, args...)...)
		if code != 0 {
			t.Fatalf("portcullis regex %v: %d %s", args, code, stderr)
		}
		if lists(got) != lists(string(want)) || lists(got) == "" && !slices.Contains(c.flags, "--print-no-missed") {
			t.Errorf("regex %v:\nfail2ban-regex:\n%s\nportcullis:\n%s", c.flags, lists(string(want)), lists(got))
		}
	}
	_, stderr, code := runCLI(t, "", "regex", filepath.Join(dir, "nosuch.log"), filter)
	if code == 0 || !strings.Contains(stderr, "no such file") {
		t.Errorf("a missing log: %d %q", code, stderr)
	}
}
