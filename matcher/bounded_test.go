package matcher

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A loaded machine holds threads off the CPU for longer than regexp2's wall-clock timeout; a
// line matched through regexp2 (lookarounds, a custom datepattern) must still match. The process
// is stopped (SIGSTOP) three times for 300 ms while it matches a pattern only regexp2 takes,
// each match about a millisecond of work, so the stops land inside matches.
func TestRegexp2IgnoresStarvation(t *testing.T) {
	r, err := compileRx("lookahead", `^(?=.*from 203\.0\.113\.9 )(?:\w+ )*?from (?P<host>\S+) port \d+$`)
	if err != nil || r.re2 == nil {
		t.Fatalf("the pattern must go through regexp2: %v", err)
	}
	line := []byte(strings.Repeat("word ", 2000) + "from 203.0.113.9 port 22")
	if !r.matchesGo(line) {
		t.Fatal("no match on an idle machine")
	}
	pid := os.Getpid()
	stopper := exec.Command("sh", "-c", fmt.Sprintf("for i in 1 2 3; do sleep 0.2; kill -STOP %d; sleep 0.3; kill -CONT %d; done", pid, pid))
	if err := stopper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stopper.Wait() }()
	reads, misses := 0, 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("stopper: %v", err)
			}
			if misses > 0 {
				t.Fatalf("%d of %d matches lost while the process was held off the CPU", misses, reads)
			}
			t.Logf("%d matches across three stops", reads)
			return
		default:
		}
		if !r.matchesGo(line) {
			misses++
		}
		reads++
	}
}
