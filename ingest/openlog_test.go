package ingest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingHandler counts warnings.
type countingHandler struct{ warns atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// pollBounded runs polls of a tailer on path and fails if they do not return: a FIFO that blocks
// the open, or a device that never ends, wedged the daemon (reload and SIGTERM hung). The bound
// only keeps a broken tailer from hanging the suite.
func pollBounded(t *testing.T, path string, polls int) (lines int, warns int64) {
	t.Helper()
	h := &countingHandler{}
	src := &Source{Name: "test", Jails: NewJailSet(0), Stats: &SourceStats{}}
	tl := NewTailer(TailOptions{Pattern: path, Head: true, Source: src, Log: slog.New(h)})
	out := make(chan *Block, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tl.Prime()
		for range polls {
			tl.PollOnce(context.Background(), out)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("polling %s did not return", path)
	}
	close(out)
	for b := range out {
		lines += len(b.Lines)
		PutBlock(b)
	}
	return lines, h.warns.Load()
}

// A log path that is a FIFO, a symlink to a device, or a directory is refused with one warning,
// however many polls see it, and never blocks or spins.
func TestTailRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.log")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir.log")
	os.Mkdir(sub, 0o755)
	for _, p := range []string{fifo, zero, sub} {
		lines, warns := pollBounded(t, p, 200)
		if lines != 0 || warns != 1 {
			t.Errorf("%s: %d lines, %d warnings; want 0 lines and exactly one warning", filepath.Base(p), lines, warns)
		}
	}
	// Once the path is a regular file again, it is read.
	os.Remove(fifo)
	os.WriteFile(fifo, []byte("now a file\n"), 0o644)
	if lines, _ := pollBounded(t, fifo, 2); lines != 1 {
		t.Errorf("the path that became a regular file gave %d lines, want 1", lines)
	}
}

// A symlinked log path is followed only when the link is owned by root or by its target's owner:
// a user who can write the log folder cannot make the daemon (root) read /etc/shadow.
func TestTailSymlinkOwnership(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create files owned by another user")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	secret := filepath.Join(dir, "shadow")
	os.WriteFile(secret, []byte("root:$y$secret:19000:0:99999:7:::\n"), 0o600)
	userFile := filepath.Join(dir, "app.real.log")
	os.WriteFile(userFile, []byte("Failed password for root from 192.0.2.1\n"), 0o644)
	os.Chown(userFile, 1000, 1000)
	link := func(name, target string, uid int) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if lines, warns := pollBounded(t, link("user-to-secret.log", secret, 1000), 50); lines != 0 || warns != 1 {
		t.Errorf("a user's symlink to root's file: %d lines, %d warnings; want it refused once", lines, warns)
	}
	if lines, _ := pollBounded(t, link("user-to-own.log", userFile, 1000), 2); lines != 1 {
		t.Errorf("a user's symlink to the user's own file: %d lines, want 1", lines)
	}
	if lines, _ := pollBounded(t, link("root-to-secret.log", secret, 0), 2); lines != 1 {
		t.Errorf("root's own symlink: %d lines, want 1 (the admin chose it)", lines)
	}
	// Globs apply the same rule.
	if lines, _ := pollBounded(t, filepath.Join(dir, "user-to-*.log"), 2); lines != 1 {
		t.Errorf("glob over both user links: %d lines, want only the user's own file", lines)
	}
	if _, _, err := openRegular(filepath.Join(dir, "user-to-secret.log")); err == nil || !strings.Contains(err.Error(), "owned by neither") {
		t.Errorf("error %v", err)
	}
}

// A path that was not a regular file when the daemon started, and is one by the next poll, is a
// new file: everything in it is read, including lines written before that poll.
func TestTailRegularFileReplacingAFIFOIsReadWhole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "auth.log")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newTail(t, p, false)
	h.tl.Prime()
	h.expect()
	os.Remove(p)
	appendTo(t, p, "written before the poll\n")
	h.expect("written before the poll")
}
