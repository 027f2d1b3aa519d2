package ingest

import (
	"bytes"
	"os"
)

// skipMinSize is the smallest backlog worth bisecting; a shorter one is read whole (its old
// failures are dropped after matching, as every backlog's are).
const skipMinSize = 1 << 20

// skipMargin is how far out of order a log's stamps may run (several writers, a clock step)
// without skipOld leaving out a line that could still count.
const skipMargin = 10 * 60

// skipOld finds where a backlog of size bytes in f starts to matter: a line start before which
// every line is stamped (by stamp) more than skipMargin before oldest, found by bisection on the
// stamps of the lines after probe points, without reading what it skips. It returns 0 (read
// everything) for a short backlog or when the stamps near a probe cannot be read: skipping is an
// optimisation, the time filter after matching is the rule.
func skipOld(f *os.File, size, oldest int64, stamp func([]byte) (int64, bool)) int64 {
	if size < skipMinSize {
		return 0
	}
	target := oldest - skipMargin
	buf := make([]byte, 8<<10)
	// Invariant: the first whole line after lo is older than target (or lo is 0).
	lo, hi := int64(0), size
	for hi-lo > 64<<10 {
		mid := lo + (hi-lo)/2
		t, ok := stampAfter(f, mid, buf, stamp)
		if !ok {
			break
		}
		if t < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0
	}
	// Start on the line after lo's: it is old, and so is everything before it.
	n, _ := f.ReadAt(buf, lo)
	i := bytes.IndexByte(buf[:n], '\n')
	if i < 0 {
		return 0
	}
	return lo + int64(i) + 1
}

// stampAfter reads the time of the first of the next few whole lines after offset at that has
// one.
func stampAfter(f *os.File, at int64, buf []byte, stamp func([]byte) (int64, bool)) (int64, bool) {
	n, _ := f.ReadAt(buf, at)
	b := buf[:n]
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return 0, false
	}
	b = b[i+1:]
	for range 8 {
		j := bytes.IndexByte(b, '\n')
		if j < 0 {
			return 0, false
		}
		if t, ok := stamp(b[:j]); ok {
			return t, true
		}
		b = b[j+1:]
	}
	return 0, false
}
