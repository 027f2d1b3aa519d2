package ingest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// writer appends numbered lines to a log at about 20,000 lines/s (bursts of 100 every 5 ms) and
// reopens its file when asked, as a logging daemon does after logrotate's postrotate signal.
type writer struct {
	path   atomic.Value // string: where the next reopen goes
	n      atomic.Int64 // numbers handed out
	wrote  atomic.Int64 // lines whose write has returned
	reopen chan struct{}
	do     chan func(f *os.File) // run between bursts, with the writer's open file
	stop   chan struct{}
	done   chan struct{}
}

func startWriter(t *testing.T, path string) *writer {
	w := &writer{reopen: make(chan struct{}), do: make(chan func(*os.File)), stop: make(chan struct{}), done: make(chan struct{})}
	w.path.Store(path)
	go func() {
		defer close(w.done)
		open := func() *os.File {
			f, err := os.OpenFile(w.path.Load().(string), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Error(err)
			}
			return f
		}
		f := open()
		defer func() { f.Close() }()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var buf []byte
		for {
			select {
			case <-w.stop:
				return
			case <-w.reopen:
				f.Close()
				f = open()
				w.reopen <- struct{}{}
			case fn := <-w.do:
				fn(f)
				w.do <- nil
			case <-tick.C:
				buf = buf[:0]
				for i := 0; i < 100; i++ {
					buf = strconv.AppendInt(buf, w.n.Add(1), 10)
					buf = append(buf, " Nov 24 10:00:00 host sshd[1]: a line\n"...)
				}
				if _, err := f.Write(buf); err != nil {
					t.Error(err)
					return
				}
				w.wrote.Add(100)
			}
		}
	}()
	return w
}

// paused runs fn while the writer waits; fn may write through f.
func (w *writer) paused(fn func(f *os.File)) {
	w.do <- fn
	<-w.do
}

// lines writes n numbered lines to f in one write.
func (w *writer) lines(t *testing.T, f *os.File, n int) {
	var buf []byte
	for range n {
		buf = strconv.AppendInt(buf, w.n.Add(1), 10)
		buf = append(buf, " Nov 24 10:00:00 host sshd[1]: a rewritten line\n"...)
	}
	if _, err := f.Write(buf); err != nil {
		t.Error(err)
	}
	w.wrote.Add(int64(n))
}

func (w *writer) reopenNow() {
	w.reopen <- struct{}{}
	<-w.reopen
}

func (w *writer) finish() int64 {
	close(w.stop)
	<-w.done
	return w.n.Load()
}

func TestRotationUnderLoad(t *testing.T) {
	// Each mode rotates once, mid-stream, and returns how many lines it loses by design. delivered
	// is how many lines the tailer has handed over so far.
	modes := map[string]func(t *testing.T, w *writer, dir, p string, delivered func() int64) (lossBound int64){
		"rename+create": func(t *testing.T, w *writer, dir, p string, _ func() int64) int64 {
			os.Rename(p, p+".1")
			time.Sleep(20 * time.Millisecond) // the daemon keeps writing to the old file for a while
			w.reopenNow()
			return 0
		},
		"delete+recreate": func(t *testing.T, w *writer, dir, p string, _ func() int64) int64 {
			os.Remove(p)
			time.Sleep(20 * time.Millisecond)
			w.reopenNow()
			return 0
		},
		"symlink swap": func(t *testing.T, w *writer, dir, p string, _ func() int64) int64 {
			// p is a symlink to a.log; the writer moves to b.log and the link is swapped.
			next := filepath.Join(dir, "b.log")
			w.path.Store(next)
			os.Symlink(next, p+".tmp")
			w.reopenNow()
			os.Rename(p+".tmp", p)
			return 0
		},
		"delayed compression": func(t *testing.T, w *writer, dir, p string, _ func() int64) int64 {
			// logrotate's delaycompress: rename and reopen now, and the rotated file is
			// compressed away (and deleted) a little later, while late lines may still be in it.
			os.Rename(p, p+".1")
			time.Sleep(20 * time.Millisecond)
			w.reopenNow()
			time.Sleep(20 * time.Millisecond)
			data, err := os.ReadFile(p + ".1")
			if err != nil {
				t.Fatal(err)
			}
			zf, _ := os.Create(p + ".1.gz")
			zw := gzip.NewWriter(zf)
			zw.Write(data)
			zw.Close()
			zf.Close()
			os.Remove(p + ".1")
			return 0
		},
		"truncate-and-rewrite": func(t *testing.T, w *writer, dir, p string, delivered func() int64) int64 {
			// The file is truncated in place and at once rewritten with more than it held, so
			// its size never looks smaller. What the tailer had not read at the truncation is gone
			// by design; it is counted with the writer paused, so the bound is exact.
			var bound int64
			w.paused(func(f *os.File) {
				time.Sleep(50 * time.Millisecond) // let the tailer catch up a little
				bound = w.wrote.Load() - delivered()
				if err := f.Truncate(0); err != nil {
					t.Error(err)
				}
				w.lines(t, f, 20000) // O_APPEND: from offset 0 now, past the old size
			})
			return bound
		},
		"copytruncate": func(t *testing.T, w *writer, dir, p string, _ func() int64) int64 {
			before := w.wrote.Load()
			data, _ := os.ReadFile(p)
			os.WriteFile(p+".1", data, 0o644)
			os.Truncate(p, 0)
			// Lines written between the copy and the truncate are lost by design of copytruncate:
			// those whose write returned in between, plus one burst that may have been under way.
			return w.wrote.Load() - before + 100
		},
	}
	for name, rotate := range modes {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "auth.log")
			target := p
			if name == "symlink swap" {
				target = filepath.Join(dir, "a.log")
				os.WriteFile(target, nil, 0o644)
				os.Symlink(target, p)
			} else {
				os.WriteFile(p, nil, 0o644)
			}
			src := &Source{Name: "test", Jails: NewJailSet(0), Stats: &SourceStats{}}
			tl := NewTailer(TailOptions{Pattern: p, Source: src, Poll: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			tl.Prime()
			out := make(chan *Block, 64)
			ctx, cancel := context.WithCancel(context.Background())
			var got []int64
			var mu sync.Mutex
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); tl.Run(ctx, out) }()
			collected := make(chan struct{})
			go func() {
				defer wg.Done()
				for {
					select {
					case b := <-out:
						mu.Lock()
						for i := range b.Lines {
							f := strings.Fields(string(b.Line(i)))
							n, _ := strconv.ParseInt(f[0], 10, 64)
							got = append(got, n)
						}
						mu.Unlock()
						PutBlock(b)
					case <-collected:
						return
					}
				}
			}()
			w := startWriter(t, target)
			time.Sleep(400 * time.Millisecond)
			bound := rotate(t, w, dir, p, func() int64 { mu.Lock(); defer mu.Unlock(); return int64(len(got)) })
			time.Sleep(400 * time.Millisecond)
			written := w.finish()
			// Wait (bounded) until everything written has arrived or nothing more comes.
			deadline := time.Now().Add(10 * time.Second)
			last := -1
			for time.Now().Before(deadline) {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if int64(n) >= written || (n == last && time.Now().After(deadline.Add(-8*time.Second))) {
					break
				}
				last = n
				time.Sleep(100 * time.Millisecond)
			}
			cancel()
			close(collected)
			wg.Wait()
			seen := make(map[int64]bool, len(got))
			dups := 0
			for _, n := range got {
				if seen[n] {
					dups++
				}
				seen[n] = true
			}
			missing := int64(0)
			for i := int64(1); i <= written; i++ {
				if !seen[i] {
					missing++
				}
			}
			t.Logf("%s: %d lines written at ~20k/s, %d missed (bound %d), %d duplicated", name, written, missing, bound, dups)
			if dups != 0 {
				t.Fatalf("%d lines counted twice", dups)
			}
			if missing > bound {
				t.Fatalf("%d lines missed, more than the %d the rotation mode loses by design", missing, bound)
			}
			if written < 10000 {
				t.Fatalf("the writer managed only %d lines; the test needs a loaded log", written)
			}
		})
	}
}
