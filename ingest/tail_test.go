package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

type tailHarness struct {
	t   *testing.T
	tl  *Tailer
	out chan *Block
	src *Source
}

// newTail follows pattern from the start of its files with head (archives backfilled), else from
// their end (logpath option tail).
func newTail(t *testing.T, pattern string, head bool) *tailHarness {
	src := &Source{Name: "test", Jails: NewJailSet(0), Stats: &SourceStats{}}
	h := &tailHarness{t: t, out: make(chan *Block, 1024), src: src}
	h.tl = NewTailer(TailOptions{Pattern: pattern, Head: head, Tail: !head, Source: src, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return h
}

// tailEmptyLog tails a new, empty auth.log from its end and checks the first poll finds nothing.
func tailEmptyLog(t *testing.T) (*tailHarness, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.log")
	appendTo(t, p, "")
	h := newTail(t, p, false)
	h.expect()
	return h, p
}

// poll runs one poll and returns the lines delivered.
func (h *tailHarness) poll() []string {
	h.t.Helper()
	h.tl.PollOnce(context.Background(), h.out)
	var got []string
	for {
		select {
		case b := <-h.out:
			if b.Source != h.src {
				h.t.Fatal("block without its source")
			}
			for i := range b.Lines {
				got = append(got, string(b.Line(i)))
			}
			PutBlock(b)
		default:
			return got
		}
	}
}

func (h *tailHarness) expect(want ...string) {
	h.t.Helper()
	got := h.poll()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		h.t.Fatalf("lines %q, want %q", got, want)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestTailStartsAtEndAndFollowsAppends(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.log")
	appendTo(t, p, "old line\n")
	h := newTail(t, p, false)
	h.expect() // with tail, existing content is history: reading starts at the end
	appendTo(t, p, "one\ntw")
	h.expect("one")
	appendTo(t, p, "o\nthree\n")
	h.expect("two", "three")
	h.expect()
}

func TestTailHeadReadsExistingContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.log")
	appendTo(t, p, "old line\n")
	h := newTail(t, p, true)
	h.expect("old line")
}

func TestTailRenameRotationDrainsOldFile(t *testing.T) {
	h, p := tailEmptyLog(t)
	appendTo(t, p, "before\n")
	h.expect("before")
	// logrotate: rename, the writer still has the old file open and writes one more line, then a
	// new file is created and written.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, p+".1", "late write to the old file\n")
	h.expect("late write to the old file")
	appendTo(t, p+".1", "later still\n")
	appendTo(t, p, "new file line\n")
	h.expect("later still", "new file line")
	if h.src.Stats.Rotated.Load() != 1 {
		t.Fatalf("rotations %d, want 1", h.src.Stats.Rotated.Load())
	}
	appendTo(t, p, "more\n")
	h.expect("more")
}

func TestTailCopyTruncate(t *testing.T) {
	h, p := tailEmptyLog(t)
	appendTo(t, p, "a fairly long first line\nand a second one\n")
	h.expect("a fairly long first line", "and a second one")
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, p, "after\n")
	h.expect("after")
}

// Truncated and rewritten past the old offset between two polls: the size never looks smaller,
// only the first bytes changing show it. Every rewritten line is read, from the start.
func TestTailTruncateAndRewrite(t *testing.T) {
	h, p := tailEmptyLog(t)
	appendTo(t, p, "first generation 1\nfirst generation 2\n")
	h.expect("first generation 1", "first generation 2")
	if err := os.WriteFile(p, []byte("second generation, a longer line 1\nsecond generation 2\n"), 0o644); err != nil {
		t.Fatal(err) // O_TRUNC, same inode
	}
	h.expect("second generation, a longer line 1", "second generation 2")
	// The fingerprint grew with the file: a rewrite that keeps the first line but changes what
	// follows within the first KiB is caught too.
	appendTo(t, p, "third\n")
	h.expect("third")
	if err := os.WriteFile(p, []byte("second generation, a longer line 1\nSECOND generation 2 rewritten\nand more\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.expect("second generation, a longer line 1", "SECOND generation 2 rewritten", "and more")
	if n := h.src.Stats.Rotated.Load(); n != 2 {
		t.Fatalf("rotations %d, want 2", n)
	}
}

func TestTailSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	a, b, link := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "current.log")
	appendTo(t, a, "")
	appendTo(t, b, "b existed before\n")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	h := newTail(t, link, false)
	h.expect()
	appendTo(t, a, "in a\n")
	h.expect("in a")
	tmp := link + ".tmp"
	if err := os.Symlink(b, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	// The new target is read from its start: everything in it is new to this link.
	h.expect("b existed before")
}

func TestTailMissingFileAppearsAndGlob(t *testing.T) {
	dir := t.TempDir()
	h := newTail(t, filepath.Join(dir, "*.log"), false)
	h.expect()
	// A file that appears after start-up is read from its beginning.
	appendTo(t, filepath.Join(dir, "x.log"), "first\n")
	h.expect("first")
	appendTo(t, filepath.Join(dir, "y.log"), "second\n")
	appendTo(t, filepath.Join(dir, "x.txt"), "not matched\n")
	h.expect("second")
}

func TestTailCountsBadLines(t *testing.T) {
	h, p := tailEmptyLog(t)
	appendTo(t, p, "good\n"+strings.Repeat("z", 70*1024)+"\n\x00\x01\x02garbage\ngood again\n")
	h.expect("good", "good again")
	if h.src.Stats.Overlong.Load() != 1 || h.src.Stats.Binary.Load() != 1 || h.src.Stats.Lines.Load() != 4 {
		t.Fatalf("overlong=%d binary=%d lines=%d", h.src.Stats.Overlong.Load(), h.src.Stats.Binary.Load(), h.src.Stats.Lines.Load())
	}
}

// Lines appended after Prime (the daemon's start-up) are read even if the first poll comes later.
func TestTailPrimeFixesTheStart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.log")
	appendTo(t, p, "history\n")
	h := newTail(t, p, false)
	h.tl.Prime()
	appendTo(t, p, "new after start\n")
	h.expect("new after start")
}

func positionOf(t *testing.T, h *tailHarness, path string) Position {
	t.Helper()
	for _, p := range h.tl.Positions() {
		if p.Path == path {
			return p
		}
	}
	t.Fatalf("no position for %s in %+v", path, h.tl.Positions())
	return Position{}
}

// A restart continues where the last run stopped: lines written while portcullis was down are
// read, lines read before are not read again; a file replaced meanwhile is read from its start.
func TestTailResume(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.log")
	appendTo(t, p, strings.Repeat("old history line\n", 100))
	h := newTail(t, p, false)
	h.tl.Prime()
	appendTo(t, p, "one\ntwo\nhalf")
	h.expect("one", "two")
	pos := positionOf(t, h, p)
	if st, _ := os.Stat(p); pos.Offset != st.Size()-int64(len("half")) {
		t.Fatalf("offset %d counts the unfinished line (size %d)", pos.Offset, st.Size())
	}
	// Down: more lines arrive, the half line is finished.
	appendTo(t, p, "-done\nthree\n")
	h2 := newTail(t, p, false)
	h2.tl.opts.Resume = map[string]Position{p: pos}
	h2.tl.Prime()
	h2.expect("half-done", "three")

	// Same inode, rewritten from scratch (fingerprint differs): read from the start.
	pos2 := positionOf(t, h2, p)
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	f.WriteString("NEW first\nNEW second\n")
	f.Close()
	h3 := newTail(t, p, false)
	h3.tl.opts.Resume = map[string]Position{p: pos2}
	h3.tl.Prime()
	h3.expect("NEW first", "NEW second")

	// Replaced by another file (rotation while down): read from the start.
	pos3 := positionOf(t, h3, p)
	os.Rename(p, p+".1")
	appendTo(t, p, "rotated in\n")
	h4 := newTail(t, p, false)
	h4.tl.opts.Resume = map[string]Position{p: pos3}
	h4.tl.Prime()
	h4.expect("rotated in")
}

// With inotify, appended lines arrive without waiting for a poll: the poll interval here is an
// hour, so only the inotify wake-up can deliver them.
func TestTailInotifyWakes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.log")
	appendTo(t, p, "")
	src := &Source{Name: "test", Jails: NewJailSet(0), Stats: &SourceStats{}}
	tl := NewTailer(TailOptions{Pattern: p, Source: src, Poll: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tl.Prime()
	out := make(chan *Block, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tl.Run(ctx, out); close(done) }()
	defer func() { cancel(); <-done }()
	appendTo(t, p, "woken by inotify\n")
	select {
	case b := <-out:
		if string(b.Line(0)) != "woken by inotify" {
			t.Fatalf("got %q", b.Line(0))
		}
		PutBlock(b)
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up from inotify (the poll interval is an hour)")
	}
}

// Compressed rotated logs matched by a glob are never tailed as text; with "head" they are
// backfilled once, decompressed.
func TestTailArchives(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("from the archive\nlast line without newline"))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "auth.log.2.gz"), gz.Bytes(), 0o644)
	appendTo(t, filepath.Join(dir, "auth.log"), "current\n")
	h := newTail(t, filepath.Join(dir, "auth.log*"), false)
	h.expect() // tail mode: the archive is history, the plain file starts at its end
	if h.src.Stats.Binary.Load() != 0 {
		t.Fatal("the archive was read as text")
	}
	hh := newTail(t, filepath.Join(dir, "auth.log*"), true)
	got := hh.poll()
	if strings.Join(got, "|") != "current|from the archive|last line without newline" {
		t.Fatalf("head: %q", got)
	}
	if again := hh.poll(); len(again) != 0 {
		t.Fatalf("the archive was read twice: %q", again)
	}
}

// A tailer stopped while the pipeline is full loses nothing: the position it reports (saved at
// shutdown) is the end of the last line it handed over, however often it is polled after the
// stop, and a tailer resuming from it reads exactly the lines that were not delivered.
func TestTailStopUnderBacklogLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		queue int // blocks the pipeline takes before it is full
		lines int
		poll  func(tl *Tailer, ctx context.Context, out chan *Block)
	}{
		{"poll after stop, queue full", 0, 1000, func(tl *Tailer, ctx context.Context, out chan *Block) { tl.PollOnce(ctx, out) }},
		{"poll after stop, queue of two", 2, 12000, func(tl *Tailer, ctx context.Context, out chan *Block) { tl.PollOnce(ctx, out) }},
		// drain directly: a read that fails to hand over must leave the file where a later read
		// starts from the first line not handed over.
		{"read after stop, queue full", 0, 1000, func(tl *Tailer, ctx context.Context, out chan *Block) {
			for _, tf := range tl.files {
				tl.drain(ctx, tf, out)
			}
			tl.snapshot()
		}},
		{"read after stop, queue of two", 2, 12000, func(tl *Tailer, ctx context.Context, out chan *Block) {
			for _, tf := range tl.files {
				tl.drain(ctx, tf, out)
			}
			tl.snapshot()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 20; round++ {
				p := filepath.Join(t.TempDir(), "auth.log")
				var all []string
				var sb strings.Builder
				for i := range tc.lines {
					l := fmt.Sprintf("line %05d %s", i, strings.Repeat("x", 80))
					all = append(all, l)
					sb.WriteString(l + "\n")
				}
				appendTo(t, p, sb.String())
				src := &Source{Name: "test", Jails: NewJailSet(0), Stats: &SourceStats{}}
				tl := NewTailer(TailOptions{Pattern: p, Head: true, Source: src, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
				tl.Prime()
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				out := make(chan *Block, tc.queue)
				tc.poll(tl, ctx, out)
				tc.poll(tl, ctx, out)
				tc.poll(tl, ctx, out)
				close(out)
				var got []string
				for b := range out {
					for i := range b.Lines {
						got = append(got, string(b.Line(i)))
					}
					PutBlock(b)
				}
				pos := tl.Positions()
				if len(pos) != 1 {
					t.Fatalf("positions %+v", pos)
				}
				h := newTail(t, p, false)
				h.tl.opts.Resume = map[string]Position{p: pos[0]}
				h.tl.Prime()
				got = append(got, h.poll()...)
				if len(got) != len(all) {
					t.Fatalf("round %d: %d lines delivered before and after the restart, want %d (offset saved %d)", round, len(got), len(all), pos[0].Offset)
				}
				for i := range all {
					if got[i] != all[i] {
						t.Fatalf("round %d: line %d is %q, want %q", round, i, got[i], all[i])
					}
				}
			}
		})
	}
}
