package fleet

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// The bounds of a ban's value: what a node shares of a ban's evidence, and what a reader takes.
const (
	maxOrigin = 253 // a host name
	maxReason = 64
	maxTimes  = 32   // the failures' times: the last maxTimes
	maxLines  = 16   // the failures' lines: the last maxLines
	maxLine   = 1024 // bytes of one line; a longer one is cut
)

// Evidence is what a ban shares of why it was made: how many failures were counted, the last of
// their times and lines (bounded: maxTimes, maxLines of maxLine bytes). Never the filter's
// captures.
type Evidence struct {
	Failures int
	Times    []uint32 // unix seconds, oldest first
	Lines    []string
}

// errValue is every malformed value's error: a value is a whole ban or skipped.
var errValue = errors.New("fleet: not a ban's value")

// appendValue appends the wire form of b's value to dst: "PB1", then start, end, count as
// uvarints, the origin and the reason, then the evidence (failures, the times, the lines; all
// counts zero without one). The jail and the prefix are the key's.
func appendValue(dst []byte, b *Ban) []byte {
	dst = append(dst, "PB1"...)
	dst = binary.AppendUvarint(dst, uint64(max(b.Start, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(b.End, 0)))
	dst = binary.AppendUvarint(dst, uint64(b.Count))
	dst = appendString(dst, cut(b.Origin, maxOrigin))
	dst = appendString(dst, cut(b.Reason, maxReason))
	var ev Evidence
	if b.Evidence != nil {
		ev = *b.Evidence
	}
	dst = binary.AppendUvarint(dst, uint64(max(ev.Failures, 0)))
	times := ev.Times[max(len(ev.Times)-maxTimes, 0):]
	dst = binary.AppendUvarint(dst, uint64(len(times)))
	for _, t := range times {
		dst = binary.AppendUvarint(dst, uint64(t))
	}
	lines := ev.Lines[max(len(ev.Lines)-maxLines, 0):]
	dst = binary.AppendUvarint(dst, uint64(len(lines)))
	for _, l := range lines {
		dst = appendString(dst, cut(l, maxLine))
	}
	return dst
}

// cut shortens s to at most n bytes, at a character's start.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// valueReader reads ban values. Its origins and reasons are interned: a joining node reads
// 100,000 values that name a few nodes. Not safe for concurrent use.
type valueReader struct {
	names map[string]string
}

// maxInterned bounds the names a valueReader keeps: hostile values naming new origins cost an
// allocation each beyond it, never memory.
const maxInterned = 1024

func (v *valueReader) intern(b []byte) string {
	if s, ok := v.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if v.names == nil {
		v.names = make(map[string]string)
	}
	if len(v.names) < maxInterned {
		v.names[s] = s
	}
	return s
}

// read decodes a value into b (whose Jail and Prefix the caller took from the key). Anything
// malformed is errValue and b is not to be used: sizes are bounded before anything is allocated.
func (v *valueReader) read(p []byte, b *Ban) error {
	if len(p) < 3 || string(p[:3]) != "PB1" {
		return errValue
	}
	r := reader{p: p[3:]}
	b.Start = int64(r.uvarint(1 << 40))
	b.End = int64(r.uvarint(1 << 40))
	b.Count = uint32(r.uvarint(1<<32 - 1))
	b.Origin = v.intern(r.bytes(r.uvarint(maxOrigin)))
	b.Reason = v.intern(r.bytes(r.uvarint(maxReason)))
	failures := r.uvarint(1 << 31)
	times := list(&r, maxTimes, func() uint32 { return uint32(r.uvarint(1<<32 - 1)) })
	lines := list(&r, maxLines, func() string { return r.str(maxLine) })
	if r.err != nil || len(r.p) != 0 || b.Origin == "" || (b.End != 0 && b.End < b.Start) {
		return errValue
	}
	b.Evidence = nil
	if failures > 0 || times != nil || lines != nil {
		b.Evidence = &Evidence{Failures: failures, Times: times, Lines: lines}
	}
	return nil
}
