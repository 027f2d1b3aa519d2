package ingest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeJournalctl writes a journalctl stand-in that records its arguments and prints the given
// JSON lines, then waits like `journalctl -f` does.
func fakeJournalctl(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	script := filepath.Join(dir, "journalctl")
	data := filepath.Join(dir, "entries.json")
	os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+filepath.Join(dir, "args")+"\ncat "+data+"\nexec sleep 3600\n"), 0o755)
	return script
}

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	us := time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC).UnixMicro()
	cmd := fakeJournalctl(t, dir,
		`{"__CURSOR":"s=1;i=1","__REALTIME_TIMESTAMP":"`+strconv.FormatInt(us, 10)+`","_HOSTNAME":"web1","_COMM":"sshd","_PID":"42","SYSLOG_IDENTIFIER":"forged","MESSAGE":"Failed password for root from 203.0.113.9 port 22 ssh2"}`,
		`not json at all`,
		`{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"`+strconv.FormatInt(us+1, 10)+`","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"app","MESSAGE":[104,105,10,120]}`,
	)
	src := &Source{Name: "journal:sshd", Jails: NewJailSet(0), Stats: &SourceStats{}}
	j := NewJournal(JournalOptions{Command: cmd, Match: "_SYSTEMD_UNIT=ssh.service + _COMM=sshd", Source: src,
		Location: time.UTC, Since: time.Unix(1795600800, 250e6), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	out := make(chan *Block, 8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { j.Run(ctx, out); close(done) }()
	var lines []string
	deadline := time.After(10 * time.Second)
	for len(lines) < 2 {
		select {
		case b := <-out:
			for i := range b.Lines {
				lines = append(lines, string(b.Line(i)))
			}
			PutBlock(b)
		case <-deadline:
			t.Fatalf("lines %q", lines)
		}
	}
	cancel()
	<-done
	want := []string{
		"2026-11-24T10:00:00.123456Z web1 sshd[42]: Failed password for root from 203.0.113.9 port 22 ssh2",
		"2026-11-24T10:00:00.123457Z web1 app: hi x", // a binary message, its newline made a space
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines:\n%q\nwant\n%q", lines, want)
	}
	if src.Stats.Malformed.Load() != 1 {
		t.Errorf("malformed %d, want 1", src.Stats.Malformed.Load())
	}
	if j.Cursor() != "s=1;i=2" {
		t.Errorf("cursor %q", j.Cursor())
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got := strings.TrimSpace(string(args)); got != "-o json -f --no-pager --since=@1795600800.250000 _SYSTEMD_UNIT=ssh.service + _COMM=sshd" {
		t.Errorf("first run args %q", got)
	}
	// A second run resumes after the cursor.
	if got := strings.Join(j.Args(), " "); !strings.Contains(got, "--after-cursor=s=1;i=2") || strings.Contains(got, "--since") {
		t.Errorf("resume args %q", got)
	}
}
