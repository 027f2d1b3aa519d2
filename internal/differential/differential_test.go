package differential

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Shrink keeps what the difference needs and drops the rest: here the difference is two lines
// (both must stay, in order) among 500.
func TestShrink(t *testing.T) {
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprint("line ", i))
	}
	calls := 0
	differs := func(ls []string) bool {
		calls++
		a, b := slices.Index(ls, "line 17"), slices.Index(ls, "line 401")
		return a >= 0 && b > a
	}
	got := Shrink(lines, differs)
	if fmt.Sprint(got) != "[line 17 line 401]" {
		t.Fatalf("shrunk to %v", got)
	}
	if calls > 200 {
		t.Errorf("%d tries for 500 lines", calls)
	}
}

// FreshIDs gives a PID a new id from the line on which it names another address, and leaves
// every other line as it was.
func TestFreshIDs(t *testing.T) {
	log := strings.Join([]string{
		"Mar  1 00:00:01 h sshd[7]: Connection from 192.0.2.1 port 1 on 10.0.0.1 port 22",
		"Mar  1 00:00:02 h sshd[7]: Failed password for root from 192.0.2.1 port 1 ssh2",
		"Mar  1 00:00:03 h sshd[7]: Invalid user x from 2001:db8::5 port 2",
		"Mar  1 00:00:04 h sshd[8]: Failed password for root from ::ffff:192.0.2.9 port 3 ssh2",
		"Mar  1 00:00:05 h sshd[8]: Connection closed by authenticating user root 192.0.2.9 port 3 [preauth]",
		"Mar  1 00:00:06 h sshd[7]: Connection closed by invalid user x 2001:db8::5 port 2 [preauth]",
		"",
	}, "\n")
	out, n := FreshIDs([]byte(log))
	got := strings.Split(string(out), "\n")
	want := strings.Split(log, "\n")
	want[2] = strings.Replace(want[2], "sshd[7]", "sshd[900001]", 1)
	want[5] = strings.Replace(want[5], "sshd[7]", "sshd[900001]", 1)
	if n != 2 || !slices.Equal(got, want) {
		t.Fatalf("rewrote %d lines:\n%s", n, out)
	}
}

// The generator is deterministic per seed, and its connections reuse PIDs for other clients.
func TestSSHDGenerator(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a, b := SSHD(3, 2000, start), SSHD(3, 2000, start)
	if string(a) != string(b) || strings.Count(string(a), "\n") != 2000 {
		t.Fatal("not deterministic, or not 2000 lines")
	}
	if _, n := FreshIDs(a); n == 0 {
		t.Fatal("no PID served two clients")
	}
	if !strings.Contains(string(a), "::ffff:") || !strings.Contains(string(a), "2001:db8:") {
		t.Fatal("no IPv4-mapped or IPv6 client")
	}
}
