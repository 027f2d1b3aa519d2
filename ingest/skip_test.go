package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// stampOf reads the test logs' stamps: a line starts with unix seconds.
func stampOf(line []byte) (int64, bool) {
	i := strings.IndexByte(string(line), ' ')
	if i < 0 {
		return 0, false
	}
	t, err := strconv.ParseInt(string(line[:i]), 10, 64)
	return t, err == nil
}

// writeLog writes n lines one second apart from start, each some bytes long, and returns the
// offset of every line.
func writeLog(t *testing.T, path string, start int64, n int, stamped func(i int) bool) []int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	offs := make([]int64, n)
	var off int64
	for i := range n {
		offs[i] = off
		line := fmt.Sprintf("%d host sshd[%d]: Failed password for root from 203.0.113.%d port 22 ssh2 %s\n", start+int64(i), i, i%250, strings.Repeat("x", i%40))
		if !stamped(i) {
			line = "x" + line
		}
		w.WriteString(line)
		off += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return offs
}

// skipOld starts a long backlog on a line older than oldest - skipMargin, late enough to skip
// most of what is older, and never after a line that could count; it reads everything when the
// backlog is short or its stamps cannot be read.
func TestSkipOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	const n, start = 60000, 1_700_000_000
	offs := writeLog(t, path, start, n, func(int) bool { return true })
	f, _ := os.Open(path)
	defer f.Close()
	st, _ := f.Stat()
	for _, oldest := range []int64{start - 100, start + 700, start + 20000, start + 59000, start + n + 1000} {
		at := skipOld(f, st.Size(), oldest, stampOf)
		i := 0
		for i < n && offs[i] < at {
			i++
		}
		if i < n && offs[i] != at {
			t.Fatalf("oldest %d: offset %d is not a line start", oldest, at)
		}
		if i > 0 && start+int64(i-1) >= oldest-skipMargin {
			t.Fatalf("oldest %d: skipped line %d stamped %d, within the margin", oldest, i-1, start+i-1)
		}
		if first := max(oldest-skipMargin-start, 0); first > 2000 && int64(i) < first-2000 {
			t.Fatalf("oldest %d: starts at line %d, the first that matters is %d: bisection stopped early", oldest, i, first)
		}
	}
	// Unreadable stamps: no skipping.
	writeLog(t, path, start, n, func(i int) bool { return i < 100 })
	g, _ := os.Open(path)
	defer g.Close()
	gs, _ := g.Stat()
	if at := skipOld(g, gs.Size(), start+50000, stampOf); at != 0 {
		t.Fatalf("without stamps skipped to %d", at)
	}
	// Short backlog: read whole.
	writeLog(t, path, start, 1000, func(int) bool { return true })
	h, _ := os.Open(path)
	defer h.Close()
	hs, _ := h.Stat()
	if at := skipOld(h, hs.Size(), start+900, stampOf); at != 0 {
		t.Fatalf("short backlog skipped to %d", at)
	}
}

// A file found at start-up without a saved position is read from its start, from its last
// findtime when it is long, and the lines it held are marked Backlog; lines appended later are
// not.
func TestTailReadsBacklog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	const n = 60000
	now := int64(1_700_000_000 + n)
	writeLog(t, path, now-n, n, func(int) bool { return true })
	src := &Source{Name: "test", Jails: NewJailSet(0), Stats: &SourceStats{}}
	tl := NewTailer(TailOptions{Pattern: path, Source: src, Stamp: stampOf, Oldest: func() int64 { return now - 600 },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	out := make(chan *Block, 4096)
	tl.PollOnce(context.Background(), out)
	appendTo(t, path, fmt.Sprintf("%d host sshd[1]: new\n", now+1))
	tl.PollOnce(context.Background(), out)
	close(out)
	var backlog, fresh []string
	for b := range out {
		for i := range b.Lines {
			if b.Backlog {
				backlog = append(backlog, string(b.Line(i)))
			} else {
				fresh = append(fresh, string(b.Line(i)))
			}
		}
		PutBlock(b)
	}
	if len(backlog) == 0 || len(backlog) > 600+skipMargin+20000 {
		t.Fatalf("%d backlog lines read of %d, want the last findtime and its margin, give or take a bisection step", len(backlog), n)
	}
	if last := backlog[len(backlog)-1]; !strings.HasPrefix(last, fmt.Sprint(now-1)) {
		t.Fatalf("backlog ends with %q", last)
	}
	first, _ := stampOf([]byte(backlog[0]))
	if first > now-600-skipMargin {
		t.Fatalf("backlog starts at %d, after a line that could count (%d)", first, now-600-skipMargin)
	}
	if len(fresh) != 1 || !strings.HasSuffix(fresh[0], "new") {
		t.Fatalf("lines after the start: %q", fresh)
	}
}
