package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TailOptions configure a Tailer.
type TailOptions struct {
	// Pattern is a path or a glob; it is evaluated again on every poll, so new files are picked up.
	Pattern string
	// Tail starts a file found at start-up that has no saved position at its end (fail2ban's
	// logpath option "tail"); otherwise it is read from its start, skipping by time (Stamp,
	// Oldest) what is too old to count. Head backfills the rotated archives the glob matches.
	Tail bool
	Head bool
	// Stamp reads a line's time (unix seconds); Oldest is the oldest time a failure can count at
	// (now - the longest findtime of the jails reading the pattern). With both, a long backlog
	// starts near its first line of that age (skipOld); either nil: it starts at its beginning.
	Stamp  func(line []byte) (int64, bool)
	Oldest func() int64
	// Source is attached to every block.
	Source *Source
	// Poll is the interval between checks for appended data; 250 ms when zero.
	Poll time.Duration
	Log  *slog.Logger
	// Format rewrites JSON lines into text lines before they are sent (logformat = json).
	Format *JSONFormat
	// Resume holds positions saved by an earlier run, by path. A file found at start-up that is
	// still the same file (device, inode, and a fingerprint of its first bytes) continues where
	// that run stopped; a file that was replaced meanwhile is read from its start.
	Resume map[string]Position
}

// Position is how far a file was read: Offset counts whole lines only.
type Position struct {
	Path        string
	Dev, Ino    uint64
	Fingerprint uint64 // FNV-1a of the first FPLen bytes
	FPLen       int
	Offset      int64
}

// fingerprintLen is how much of a file's start identifies it.
const fingerprintLen = 1024

func fingerprint(f *os.File, n int) (uint64, int) {
	var buf [fingerprintLen]byte
	m, _ := f.ReadAt(buf[:min(n, fingerprintLen)], 0)
	h := uint64(14695981039346656037)
	for _, c := range buf[:m] {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h, m
}

// Tailer follows every file matching a pattern (woken by inotify on the pattern's folder, with
// polling as the fallback): appends, rename-and-create and copy-truncate rotation,
// and symlinks swapped to a new target. Lines still written to a renamed file are drained before the
// file is let go. Files present at start-up are read from their saved position, or from their start
// (from their last findtime when their stamps allow, skipOld), or from their end with Tail; files
// that appear later are read from their beginning, since everything in them is new.
type Tailer struct {
	opts  TailOptions
	files map[string]*tailFile
	// retired holds files rotated away or gone from the glob. They are still read on every poll,
	// since a writer may not have reopened its log yet, and let go after retireIdle quiet polls.
	retired []*tailFile
	first   bool
	// warned remembers that a missing file was reported, so the warning is not repeated every poll.
	warned bool
	// refused holds, by path, why a file could not be opened, as last reported: the warning is
	// repeated only when the reason changes, so a log path that is a directory holding the
	// daemon's own log cannot feed a warning loop.
	refused map[string]string

	mu        sync.Mutex
	positions []Position // as of the last poll, for Positions
	w         *watcher   // inotify on the pattern's folder; nil without
}

type tailFile struct {
	archive  bool // a gzip/zstd file: backfilled once with head, never tailed
	backfill bool // an archive found with head: decompress and send it at the next poll
	path     string
	f        *os.File
	dev      uint64
	ino      uint64
	off      int64
	split    Splitter
	fresh    bool  // discovered after start-up: read from the beginning
	backlog  int64 // the file's size when opened: lines before it are Block.Backlog
	idle     int   // polls without new data since the file was retired
	fp       uint64
	fpLen    int
	sent     int64 // position after the last whole line handed to the pipeline
}

// retireIdle is how many polls without new data a rotated-away file is kept (5 s at 250 ms).
const retireIdle = 20

// NewTailer returns a tailer; call Run to start it.
func NewTailer(opts TailOptions) *Tailer {
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	resume := make(map[string]Position, len(opts.Resume))
	for k, v := range opts.Resume {
		resume[k] = v
	}
	opts.Resume = resume
	return &Tailer{opts: opts, files: make(map[string]*tailFile), first: true, refused: make(map[string]string)}
}

// Run polls until ctx is done, sending blocks of new lines to out. It blocks when out is full: a file
// source never drops lines, it falls behind and catches up.
func (t *Tailer) Run(ctx context.Context, out chan<- *Block) {
	defer func() {
		for _, tf := range t.files {
			tf.close()
		}
		for _, tf := range t.retired {
			tf.close()
		}
	}()
	if t.w == nil {
		t.w = newWatcher(t.opts.Pattern)
	}
	w := t.w
	defer w.close()
	tick := time.NewTicker(t.opts.Poll)
	defer tick.Stop()
	for {
		t.PollOnce(ctx, out)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-w.channel():
		}
	}
}

// PollOnce checks every matching file once and sends what was appended. After ctx ends it does
// nothing: a stopping tailer's positions stay those of the lines it handed over.
func (t *Tailer) PollOnce(ctx context.Context, out chan<- *Block) {
	if ctx.Err() != nil {
		return
	}
	paths := t.expand()
	if len(paths) == 0 && !t.warned {
		t.opts.Log.Warn("log file not found; the jail waits for it", "logpath", t.opts.Pattern)
		t.warned = true
	}
	// Retired files first: their lines are older than anything in the files that replaced them.
	kept := t.retired[:0]
	for _, tf := range t.retired {
		if t.drain(ctx, tf, out) > 0 {
			tf.idle = 0
		} else {
			tf.idle++
		}
		if tf.idle > retireIdle {
			tf.close()
			continue
		}
		kept = append(kept, tf)
	}
	t.retired = kept
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		seen[p] = true
		tf, ok := t.files[p]
		if !ok {
			tf = &tailFile{path: p, fresh: !t.first}
			t.files[p] = tf
			if t.warned {
				t.opts.Log.Info("log file appeared", "path", p)
				t.warned = false
			}
		}
		t.poll(ctx, tf, out)
	}
	// Files that vanished from the glob (or a plain path that is gone): keep reading them until
	// they have been quiet for a while.
	for p, tf := range t.files {
		if !seen[p] {
			delete(t.files, p)
			if old := t.retire(tf); old != nil {
				t.opts.Source.Stats.Rotated.Add(1)
				t.opts.Log.Info("log file moved away or deleted; reading what is left in it", "path", p)
				t.drain(ctx, old, out)
			}
		}
	}
	t.first = false
	t.snapshot()
}

// retire moves tf's open file to the retired list and returns it (nil when none was open).
func (t *Tailer) retire(tf *tailFile) *tailFile {
	if tf.f == nil {
		return nil
	}
	old := *tf
	old.idle = 0
	tf.f = nil
	t.retired = append(t.retired, &old)
	return &old
}

func (t *Tailer) expand() []string {
	if !strings.ContainsAny(t.opts.Pattern, "*?[") {
		if _, err := os.Stat(t.opts.Pattern); err != nil {
			return nil
		}
		return []string{t.opts.Pattern}
	}
	m, _ := filepath.Glob(t.opts.Pattern)
	out := m[:0]
	for _, p := range m {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func fileID(st os.FileInfo) (dev, ino uint64) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Dev), s.Ino
	}
	return 0, 0
}

func (t *Tailer) poll(ctx context.Context, tf *tailFile, out chan<- *Block) {
	if tf.archive {
		// Read once (or skipped); archives are never tailed.
		if tf.backfill {
			tf.backfill = false
			t.backfillArchive(ctx, tf, out)
		}
		return
	}
	st, err := os.Stat(tf.path)
	if err != nil {
		return
	}
	dev, ino := fileID(st)
	if tf.f != nil && (dev != tf.dev || ino != tf.ino) {
		// Rotated: what reached the old file is read first; it stays retired (still read) for a
		// while, and the new file starts at its beginning.
		if old := t.retire(tf); old != nil {
			t.drain(ctx, old, out)
		}
		tf.split = Splitter{}
		tf.fresh = true
		t.opts.Source.Stats.Rotated.Add(1)
		t.opts.Log.Info("log file rotated", "path", tf.path)
	}
	if tf.f == nil {
		// Just opened: the offset was taken from the open file, st may already be stale.
		if t.open(tf) {
			t.drain(ctx, tf, out)
		} else if tf.backfill {
			tf.backfill = false
			t.backfillArchive(ctx, tf, out)
		}
		return
	}
	// Truncated in place (copytruncate), or truncated and rewritten past our offset between two
	// polls, which only the first bytes changing can show: start over.
	rewritten := false
	if tf.fpLen > 0 {
		fp, n := fingerprint(tf.f, tf.fpLen)
		rewritten = n < tf.fpLen || fp != tf.fp
	}
	if st.Size() < tf.off || rewritten {
		t.opts.Log.Info("log file truncated or rewritten; reading it from the start", "path", tf.path)
		t.opts.Source.Stats.Rotated.Add(1)
		tf.off, tf.sent, tf.fpLen = 0, 0, 0
		tf.split.Reset()
		if _, err := tf.f.Seek(0, io.SeekStart); err != nil {
			tf.close()
			return
		}
	}
	if tf.fpLen < fingerprintLen && st.Size() > int64(tf.fpLen) {
		// The file has grown past the bytes that identify it: identify it by more of them (its
		// first fpLen bytes were just checked unchanged).
		tf.fp, tf.fpLen = fingerprint(tf.f, fingerprintLen)
	}
	t.drain(ctx, tf, out)
}

// open opens tf's path where reading starts (see Tailer): a saved position, the start, the last
// findtime of a backlog, or the end with Tail.
// A rotated, compressed log matched by the glob (auth.log.2.gz) is history: with Head it is
// backfilled once, decompressed, at the next poll; it is never tailed. open reports whether tf
// now has a plain file to read.
func (t *Tailer) open(tf *tailFile) bool {
	f, fst, err := openRegular(tf.path)
	if err != nil {
		if errors.Is(err, ErrNotRegular) {
			// The regular file that takes this path's place later is a new file: read it whole.
			tf.fresh = true
		}
		if t.refused[tf.path] != err.Error() {
			t.refused[tf.path] = err.Error()
			t.opts.Log.Warn("cannot open log file; the jail skips it until that changes", "path", tf.path, "err", err)
		}
		return false
	}
	delete(t.refused, tf.path)
	if isArchive(f) {
		f.Close()
		tf.archive, tf.backfill = true, t.opts.Head
		return false
	}
	tf.f = f
	tf.dev, tf.ino = fileID(fst)
	tf.off, tf.sent = 0, 0
	tf.split.Reset()
	tf.fp, tf.fpLen = fingerprint(f, fingerprintLen)
	if pos, ok := t.opts.Resume[tf.path]; ok && !tf.fresh {
		delete(t.opts.Resume, tf.path) // only the first opening resumes
		tf.backlog = fst.Size()
		if pos.Dev == tf.dev && pos.Ino == tf.ino && pos.Offset <= fst.Size() {
			if fp, _ := fingerprint(f, pos.FPLen); fp == pos.Fingerprint {
				tf.off, _ = f.Seek(pos.Offset, io.SeekStart)
				tf.sent = tf.off
				tf.fresh = false
				t.opts.Log.Info("resuming log file", "path", tf.path, "offset", pos.Offset)
				return true
			}
		}
		// Rotated or rewritten while we were away: everything in it is unread.
		t.opts.Log.Info("log file changed while portcullis was stopped; reading it from the start", "path", tf.path)
		tf.fresh = false
		return true
	}
	switch {
	case tf.fresh: // everything in it is new
	case t.opts.Tail:
		tf.off, _ = f.Seek(0, io.SeekEnd)
		tf.sent = tf.off
	default:
		tf.backlog = fst.Size()
		if t.opts.Stamp != nil && t.opts.Oldest != nil {
			if at := skipOld(f, fst.Size(), t.opts.Oldest(), t.opts.Stamp); at > 0 {
				tf.off, _ = f.Seek(at, io.SeekStart)
				tf.sent = tf.off
				t.opts.Log.Info("log file read from its last findtime", "path", tf.path, "skipped_bytes", at)
			}
		}
	}
	tf.fresh = false
	return true
}

// SetResume replaces the positions to resume from; call it before Prime.
func (t *Tailer) SetResume(m map[string]Position) {
	t.opts.Resume = make(map[string]Position, len(m))
	for k, v := range m {
		t.opts.Resume[k] = v
	}
}

// Positions returns how far each open file has been read, as of the last poll. Safe to call
// from any goroutine.
func (t *Tailer) Positions() []Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Position(nil), t.positions...)
}

func (t *Tailer) snapshot() {
	ps := make([]Position, 0, len(t.files))
	for _, tf := range t.files {
		if tf.f == nil {
			continue
		}
		ps = append(ps, Position{Path: tf.path, Dev: tf.dev, Ino: tf.ino, Fingerprint: tf.fp, FPLen: tf.fpLen,
			Offset: tf.sent})
	}
	t.mu.Lock()
	t.positions = ps
	t.mu.Unlock()
}

// Prime fixes the starting position of every file present now, before Run starts: what is
// appended after Prime returns is read, what was there before is history (fail2ban's "tail").
// Without it, lines written between start-up and the first poll would be taken for history.
func (t *Tailer) Prime() {
	if !t.first {
		return
	}
	// Watch before looking, so no change between the two goes unnoticed.
	t.w = newWatcher(t.opts.Pattern)
	for _, p := range t.expand() {
		tf := &tailFile{path: p}
		t.files[p] = tf
		t.open(tf)
	}
	t.first = false
	t.snapshot()
}

// isArchive reports whether f starts with gzip or zstd magic.
func isArchive(f *os.File) bool {
	var head [4]byte
	n, _ := f.ReadAt(head[:], 0)
	return n >= 2 && bytes.HasPrefix(head[:n], gzipMagic) || n == 4 && bytes.Equal(head[:], zstdMagic)
}

// backfillArchive sends the decompressed lines of an archive once.
func (t *Tailer) backfillArchive(ctx context.Context, tf *tailFile, out chan<- *Block) {
	f, _, err := openRegular(tf.path)
	if err != nil {
		t.opts.Log.Warn("cannot read archive", "path", tf.path, "err", err)
		return
	}
	defer f.Close()
	r, err := Decompress(f)
	if err != nil {
		t.opts.Log.Warn("cannot read archive", "path", tf.path, "err", err)
		return
	}
	defer r.Close()
	t.opts.Log.Info("backfilling archive", "path", tf.path)
	err = ReadAll(r, t.opts.Source, t.opts.Format, func(b *Block) error {
		if len(b.Lines) == 0 {
			PutBlock(b)
			return nil
		}
		return t.send(ctx, out, b)
	})
	if err != nil && ctx.Err() == nil {
		t.opts.Log.Warn("cannot read archive", "path", tf.path, "err", err)
	}
}

// send hands a block to the pipeline, or returns it to the pool when ctx ends first.
func (t *Tailer) send(ctx context.Context, out chan<- *Block, b *Block) error {
	if !handOver(ctx, out, b) {
		return ctx.Err()
	}
	return nil
}

// drain reads tf to its current end, sends whole lines and returns how many bytes it read.
func (t *Tailer) drain(ctx context.Context, tf *tailFile, out chan<- *Block) int64 {
	var total int64
	for {
		if ctx.Err() != nil {
			// Stopping: what was read past the last hand-over is read again by whoever resumes.
			tf.rewind()
			return total
		}
		b := GetBlock()
		b.Backlog = tf.off < tf.backlog
		n, err := tf.split.Fill(b, tf.f.Read)
		tf.off += int64(n)
		total += int64(n)
		tf.split.Split(b, t.opts.Source.Stats)
		// Everything up to the last whole line is consumed once this block is handed over.
		end := tf.off - int64(tf.split.Pending())
		b = t.opts.Format.apply(b, t.opts.Source.Stats)
		if len(b.Lines) > 0 {
			b.Source = t.opts.Source
			if t.send(ctx, out, b) != nil {
				// Not handed over: go back to the last line that was, so the saved position and
				// any later read agree that these lines are still unread.
				tf.rewind()
				return total
			}
		} else {
			PutBlock(b)
		}
		tf.sent = end
		if n == 0 || err != nil {
			if err != nil && !errors.Is(err, io.EOF) {
				t.opts.Log.Warn("cannot read log file", "path", tf.path, "err", err)
			}
			return total
		}
	}
}

// rewind moves the read position back to the end of the last line handed over and forgets
// what the splitter held; a file that cannot seek is closed and opened again by the next poll.
func (tf *tailFile) rewind() {
	tf.split.Reset()
	if _, err := tf.f.Seek(tf.sent, io.SeekStart); err != nil {
		tf.close()
		return
	}
	tf.off = tf.sent
}

func (tf *tailFile) close() {
	if tf.f != nil {
		tf.f.Close()
		tf.f = nil
	}
}
