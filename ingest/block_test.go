package ingest

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// splitAll feeds input through a Splitter in chunks of chunk bytes and returns every line it
// delivered, plus the stats.
func splitAll(input string, chunk int) ([]string, *SourceStats) {
	var s Splitter
	st := &SourceStats{}
	r := strings.NewReader(input)
	var out []string
	for {
		b := GetBlock()
		n, err := s.Fill(b, func(p []byte) (int, error) {
			if len(p) > chunk {
				p = p[:chunk]
			}
			return r.Read(p)
		})
		s.Split(b, st)
		for i := range b.Lines {
			out = append(out, string(b.Line(i)))
		}
		PutBlock(b)
		if n == 0 || err == io.EOF {
			return out, st
		}
	}
}

func TestSplitter(t *testing.T) {
	f := func(input string, chunk int, want []string, overlong, binary uint64) {
		t.Helper()
		got, st := splitAll(input, chunk)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("chunk %d: lines %q, want %q", chunk, got, want)
		}
		if st.Overlong.Load() != overlong || st.Binary.Load() != binary {
			t.Fatalf("chunk %d: overlong=%d binary=%d, want %d %d", chunk, st.Overlong.Load(), st.Binary.Load(), overlong, binary)
		}
	}
	for _, chunk := range []int{1, 3, 7, 4096, 1 << 20} {
		f("a\nbb\nccc\n", chunk, []string{"a", "bb", "ccc"}, 0, 0)
		// A half-written last line waits for its newline.
		f("a\nbb\nhalf", chunk, []string{"a", "bb"}, 0, 0)
		f("crlf\r\n\nx\n", chunk, []string{"crlf", "", "x"}, 0, 0)
		f("ok\nbin\x00ary\nok2\n", chunk, []string{"ok", "ok2"}, 0, 1)
	}
	long := strings.Repeat("x", MaxLineLen+1)
	for _, chunk := range []int{1000, 64 * 1024, 1 << 20} {
		f("a\n"+long+"\nb\n", chunk, []string{"a", "b"}, 1, 0)
		// Longer than a whole block: skipped to the next newline, counted once.
		f("a\n"+strings.Repeat(long, 5)+"\nb\n", chunk, []string{"a", "b"}, 1, 0)
	}
	exact := strings.Repeat("y", MaxLineLen)
	f(exact+"\n", 1<<20, []string{exact}, 0, 0)
}

func TestSplitterKeepsLinesAcrossFills(t *testing.T) {
	var s Splitter
	b := GetBlock()
	parts := []string{"Nov 24 10:00:00 host sshd[1]: Fai", "led password\nsecond ", "line\n"}
	var got []string
	for _, p := range parts {
		s.Fill(b, func(dst []byte) (int, error) { return copy(dst, p), nil })
		s.Split(b, nil)
		for i := range b.Lines {
			got = append(got, string(b.Line(i)))
		}
		b.Lines = b.Lines[:0]
	}
	want := []string{"Nov 24 10:00:00 host sshd[1]: Failed password", "second line"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	if !bytes.HasSuffix(b.Buf, []byte("\n")) {
		t.Fatal("block buffer must end on a newline so multi-line scanning sees whole lines")
	}
}

func BenchmarkSplit(b *testing.B) {
	line := "Nov 24 10:01:02 web1 sshd[1234]: Accepted publickey for deploy from 198.51.100.7 port 51234 ssh2: ED25519 SHA256:abc\n"
	data := []byte(strings.Repeat(line, blockSize/len(line)))
	var s Splitter
	blk := GetBlock()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	lines := 0
	for i := 0; i < b.N; i++ {
		blk.Lines = blk.Lines[:0]
		s.Fill(blk, func(dst []byte) (int, error) { return copy(dst, data), nil })
		s.Split(blk, nil)
		lines += len(blk.Lines)
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
