package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testconf"
)

// onTerminal runs the binary with args on a pseudo-terminal (script(1)) and returns everything
// the terminal received.
func onTerminal(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) (util-linux) is not installed")
	}
	quoted := []string{binary(t)}
	for _, a := range args {
		quoted = append(quoted, "'"+a+"'")
	}
	ts := filepath.Join(t.TempDir(), "typescript")
	cmd := exec.Command("script", "-qec", strings.Join(quoted, " "), ts)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(ts)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// bar is the bar's text: a percentage, bytes/s, lines and lines/s.
var bar = regexp.MustCompile(`\d+% \|[^|]*\| \([\d.]+ [kMG]?B/s\) \[[^\]]*\] \d+ lines, \d+ lines/s`)

// regex and replay over a big file draw a progress bar on a terminal — bytes, rate, time, lines
// and lines/s — and none when stderr is not a terminal or the output is JSON; the results are
// the same either way.
func TestProgressOnTerminal(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for i := range n {
			fmt.Fprintf(w, "2026-03-01T10:00:00+00:00 host sshd[%d]: Failed password for root from 10.%d.%d.%d port 22 ssh2\n", i%30000, i>>16&255, i>>8&255, i&255)
		}
		w.Flush()
		f.Close()
		return path
	}
	big, small := write("big.log", 1_500_000), write("small.log", 1000)
	cfg := filepath.Join(dir, "etc")
	testconf.Write(t, cfg, "[sshd]\nenabled = true\nlogpath = /nonexistent.log\nmaxretry = 5\n")
	filter, err := filepath.Abs("../../configs/filter.d/sshd.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"regex", "LOG", filter}, {"replay", "-c", cfg, "LOG"}} {
		with := func(log string, flags ...string) []string {
			out := append(append([]string{args[0]}, flags...), args[1:]...)
			for i, a := range out {
				if a == "LOG" {
					out[i] = log
				}
			}
			return out
		}
		if out := onTerminal(t, with(big)...); !bar.MatchString(out) {
			t.Errorf("%s on a terminal: no progress bar in\n%.600q", args[0], out)
		}
		plain, stderr, code := runCLI(t, "", with(big)...)
		if code != 0 || bar.MatchString(stderr) || strings.Contains(stderr, "% |") {
			t.Errorf("%s without a terminal: exit %d, stderr %q", args[0], code, stderr)
		}
		if args[0] == "regex" && !strings.Contains(plain, "Failregex: 1500000 total") {
			t.Errorf("regex's results: %.300q", plain)
		}
		if out := onTerminal(t, with(small, "--json")...); strings.Contains(out, "% |") {
			t.Errorf("%s --json on a terminal drew a bar: %.300q", args[0], out)
		}
		if out := onTerminal(t, with(small)...); !strings.Contains(out, "% |") {
			t.Errorf("%s on a terminal, a small file: no bar at all: %.300q", args[0], out)
		}
	}
}
