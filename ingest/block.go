// Package ingest turns log sources into Blocks: one buffer of whole lines plus the spans of the lines
// worth matching. Readers pull from one reused buffer, keep a half-written last line until its newline
// arrives, and count and skip lines that are too long or hold binary garbage instead of failing.
package ingest

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// MaxLineLen is the longest line that is matched; longer lines are counted and skipped.
const MaxLineLen = 64 * 1024

// blockSize is the buffer a reader fills per block: several thousand typical log lines.
const blockSize = 256 * 1024

// Span is one line inside Block.Buf, without its trailing newline.
type Span struct{ Start, End uint32 }

// JailSet is a bitset of jail ids. It is built once per source and never changed afterwards, so
// blocks share it.
type JailSet []uint64

// NewJailSet returns a set holding ids.
func NewJailSet(ids ...int) JailSet {
	var s JailSet
	for _, id := range ids {
		s = s.With(id)
	}
	return s
}

// With returns a set that also holds id.
func (s JailSet) With(id int) JailSet {
	for len(s) <= id/64 {
		s = append(s, 0)
	}
	s[id/64] |= 1 << (id % 64)
	return s
}

// Has reports whether id is in the set.
func (s JailSet) Has(id int) bool {
	w := id / 64
	return w < len(s) && s[w]&(1<<(id%64)) != 0
}

// Source describes where blocks come from and which jails read them.
type Source struct {
	Name  string
	Jails JailSet
	Stats *SourceStats
}

// SourceStats counts what a source read. Counters are updated once per block.
type SourceStats struct {
	Lines     atomic.Uint64 // complete lines read, including skipped ones
	Bytes     atomic.Uint64
	Overlong  atomic.Uint64 // lines longer than MaxLineLen, skipped
	Binary    atomic.Uint64 // lines holding NUL bytes, skipped
	Malformed atomic.Uint64 // records that do not parse (a journal line that is not JSON), skipped
	Rotated   atomic.Uint64
}

// Block is a batch of whole lines from one source. Buf holds every line read, each ending in '\n';
// Lines lists the spans worth matching (skipped lines stay in Buf but have no span). Blocks are pooled:
// whoever receives one owns it until it calls PutBlock, and no stage may keep Buf or Lines after that.
type Block struct {
	Buf    []byte
	Lines  []Span
	Source *Source
	// Arrived is when the source handed the block over, for the arrival-to-decision lag.
	Arrived time.Time
	// Seq numbers blocks in the order they were handed over, across every source. Workers may
	// finish blocks out of order; a stage keeping lines across blocks (the audit log's matches)
	// orders them by Seq and the line's index.
	Seq uint64
	// Backlog marks lines a file held when it was opened (a first start, a restart): fail2ban's
	// initialisation phase, where failures older than findtime do not count.
	Backlog bool
}

// Line returns the bytes of line i; valid until the block is returned to the pool.
func (b *Block) Line(i int) []byte {
	s := b.Lines[i]
	return b.Buf[s.Start:s.End]
}

func (b *Block) reset() {
	b.Buf = b.Buf[:0]
	b.Lines = b.Lines[:0]
	b.Source = nil
	b.Arrived = time.Time{}
	b.Seq = 0
	b.Backlog = false
}

var blockSeq atomic.Uint64

// stamp marks b as handed over now.
func (b *Block) stamp() {
	b.Arrived = time.Now()
	b.Seq = blockSeq.Add(1)
}

// handOver stamps b's arrival and sends it to out; when ctx ends first, b goes back to the pool
// and the result is false.
func handOver(ctx context.Context, out chan<- *Block, b *Block) bool {
	b.stamp()
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		PutBlock(b)
		return false
	}
}

var blockPool sync.Pool

// GetBlock returns an empty block from the pool.
func GetBlock() *Block {
	if v := blockPool.Get(); v != nil {
		return v.(*Block)
	}
	return &Block{Buf: make([]byte, 0, blockSize), Lines: make([]Span, 0, 2048)}
}

// PutBlock returns b to the pool. Oversized buffers are dropped rather than kept.
func PutBlock(b *Block) {
	if cap(b.Buf) > 4*blockSize || cap(b.Lines) > 64*1024 {
		return
	}
	b.reset()
	blockPool.Put(b)
}

// Splitter cuts a byte stream into blocks of whole lines. It keeps the unfinished last line between
// calls and skips over-long lines, so a writer appending in chunks is never matched half-way.
type Splitter struct {
	tail     []byte
	skipping bool // inside an over-long line, dropping bytes until the next newline
}

// Fill appends the carried partial line to b.Buf and then reads from read into the free capacity of
// b.Buf once. It returns the number of bytes read and read's error.
func (s *Splitter) Fill(b *Block, read func([]byte) (int, error)) (int, error) {
	if cap(b.Buf) < blockSize {
		b.Buf = make([]byte, 0, blockSize)
	}
	b.Buf = append(b.Buf[:0], s.tail...)
	s.tail = s.tail[:0]
	n, err := read(b.Buf[len(b.Buf):cap(b.Buf)])
	b.Buf = b.Buf[:len(b.Buf)+n]
	return n, err
}

// Split finds the whole lines in b.Buf, records their spans, and keeps everything after the last
// newline for the next Fill. Over-long and binary lines are counted in st and get no span.
func (s *Splitter) Split(b *Block, st *SourceStats) {
	buf := b.Buf
	start := 0
	var lines, overlong, binary uint64
	if s.skipping {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			b.Buf = buf[:0]
			return
		}
		start = i + 1
		s.skipping = false
	}
	for start < len(buf) {
		i := bytes.IndexByte(buf[start:], '\n')
		if i < 0 {
			break
		}
		end := start + i
		lines++
		switch {
		case i > MaxLineLen:
			overlong++
		case bytes.IndexByte(buf[start:end], 0) >= 0:
			binary++
		default:
			e := end
			if e > start && buf[e-1] == '\r' {
				e--
			}
			b.Lines = append(b.Lines, Span{Start: uint32(start), End: uint32(e)})
		}
		start = end + 1
	}
	rest := buf[start:]
	if len(rest) > MaxLineLen {
		// No newline within the limit: drop what we have and skip to the next newline.
		overlong++
		lines++
		s.skipping = true
		rest = rest[:0]
	}
	s.tail = append(s.tail[:0], rest...)
	b.Buf = buf[:start]
	if st != nil {
		st.Lines.Add(lines)
		st.Bytes.Add(uint64(start))
		if overlong > 0 {
			st.Overlong.Add(overlong)
		}
		if binary > 0 {
			st.Binary.Add(binary)
		}
	}
}

// Pending reports how many bytes of an unfinished line are carried.
func (s *Splitter) Pending() int { return len(s.tail) }

// Reset forgets the carried partial line (the file it belonged to is gone or was truncated).
func (s *Splitter) Reset() {
	s.tail = s.tail[:0]
	s.skipping = false
}
