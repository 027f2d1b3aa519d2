package ingest

import (
	"bytes"
	"testing"
)

// FuzzSplit checks the splitter's invariants on arbitrary input and chunking: every delivered line
// is a whole input line without newline or NUL, no longer than MaxLineLen, in order.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint16(1))
	f.Add([]byte("x\x00y\nlong\r\nhalf"), uint16(3))
	f.Add(bytes.Repeat([]byte("z"), MaxLineLen+10), uint16(4096))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		if chunk == 0 {
			chunk = 1
		}
		var s Splitter
		st := &SourceStats{}
		rest := data
		var got [][]byte
		for {
			b := GetBlock()
			n, _ := s.Fill(b, func(p []byte) (int, error) {
				m := min(len(p), int(chunk), len(rest))
				copy(p, rest[:m])
				rest = rest[m:]
				return m, nil
			})
			s.Split(b, st)
			for i := range b.Lines {
				l := b.Line(i)
				if bytes.IndexByte(l, '\n') >= 0 || bytes.IndexByte(l, 0) >= 0 || len(l) > MaxLineLen {
					t.Fatalf("bad line delivered: %q", l)
				}
				got = append(got, append([]byte(nil), l...))
			}
			if len(b.Buf) > 0 && b.Buf[len(b.Buf)-1] != '\n' {
				t.Fatal("block does not end on a newline")
			}
			PutBlock(b)
			if n == 0 {
				break
			}
		}
		// Every delivered line appears, in order, as a whole line of the input.
		lines := bytes.Split(data, []byte("\n"))
		j := 0
		for _, g := range got {
			for j < len(lines) && !bytes.Equal(bytes.TrimSuffix(lines[j], []byte("\r")), g) {
				j++
			}
			if j == len(lines) {
				t.Fatalf("delivered line %q is not an input line in order", g)
			}
			j++
		}
	})
}
