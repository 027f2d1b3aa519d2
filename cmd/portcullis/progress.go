package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is the bar regex and replay draw on a terminal while they read: bytes of the total,
// throughput, lines and lines/s, and the time left. It draws nothing (every method does nothing)
// when stderr is not a terminal or the output is JSON. Methods run on the reading goroutine.
type progress struct {
	bar         *progressbar.ProgressBar
	start, last time.Time
}

// newProgress starts a bar for total bytes (the files' sizes; archives count their compressed
// bytes, as read). w is where it draws: only a terminal gets one.
func newProgress(w io.Writer, total int64, quiet bool) *progress {
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{start: time.Now(), bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w), progressbar.OptionShowBytes(true), progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSetDescription("0 lines"), progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))}
}

// update says how far reading is: bytes of the total, lines so far.
func (p *progress) update(bytes, lines uint64) {
	if p == nil {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		rate := float64(lines) / now.Sub(p.start).Seconds()
		p.bar.Describe(fmt.Sprintf("%d lines, %.0f lines/s", lines, rate))
	}
	_ = p.bar.Set64(int64(bytes))
}

// clear takes the bar off the screen until the next update, for a line of output.
func (p *progress) clear() {
	if p != nil {
		_ = p.bar.Clear()
	}
}

// done clears the bar before the results are printed.
func (p *progress) done() {
	if p != nil {
		_ = p.bar.Finish()
	}
}

// totalSize is the size of the files among paths ("-" and what cannot be read count nothing).
func totalSize(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			n += st.Size()
		}
	}
	return n
}
