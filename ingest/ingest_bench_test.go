package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkTail: a tailer reading a 500,000-line auth log from its start (head), in blocks, to a
// consumer that counts lines and returns blocks to the pool. The file is in the page cache, so
// this is what the tailer itself costs per line: read, split, hand-off.
func BenchmarkTail(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "auth.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	const lines = 500_000
	for i := range lines {
		fmt.Fprintf(w, "Mar  1 00:00:%02d host1 sshd[%d]: Failed password for invalid user admin from 203.0.%d.%d port %d ssh2\n",
			i%60, 1000+i%30000, i/250%250, i%250, 30000+i%30000)
	}
	w.Flush()
	st, _ := f.Stat()
	f.Close()
	b.SetBytes(st.Size())
	b.ReportAllocs()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for b.Loop() {
		src := &Source{Name: "bench", Jails: NewJailSet(0), Stats: &SourceStats{}}
		tl := NewTailer(TailOptions{Pattern: path, Head: true, Source: src, Log: quiet, Poll: time.Hour})
		out := make(chan *Block, 64)
		got := make(chan int)
		go func() {
			n := 0
			for blk := range out {
				n += len(blk.Lines)
				PutBlock(blk)
			}
			got <- n
		}()
		tl.PollOnce(context.Background(), out)
		close(out)
		if n := <-got; n != lines {
			b.Fatalf("read %d lines, want %d", n, lines)
		}
		for _, tf := range tl.files {
			tf.close()
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkJSONLines: Caddy-style access log lines rewritten into filter lines (time and
// address from named fields, the whole object as the message), one block at a time.
func BenchmarkJSONLines(b *testing.B) {
	in := GetBlock()
	for i := 0; len(in.Buf) < 200*1024; i++ {
		start := len(in.Buf)
		in.Buf = fmt.Appendf(in.Buf, `{"level":"info","ts":%d.%03d,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"203.0.%d.%d","proto":"HTTP/2.0","method":"GET","host":"example.org","uri":"/wp-login.php?x=%d"},"status":%d,"size":1234,"duration":0.0012}`,
			1795600000+i, i%1000, i/250%250, i%250, i, []int{200, 401, 404}[i%3])
		in.Lines = append(in.Lines, Span{Start: uint32(start), End: uint32(len(in.Buf))})
		in.Buf = append(in.Buf, '\n')
	}
	f := &JSONFormat{Time: "ts", Host: "request.remote_ip", Loc: time.UTC}
	out := &Block{}
	st := &SourceStats{}
	b.SetBytes(int64(len(in.Buf)))
	b.ReportAllocs()
	for b.Loop() {
		f.Apply(in, out, st)
	}
	if len(out.Lines) != len(in.Lines) || st.Malformed.Load() != 0 {
		b.Fatalf("%d of %d lines out, %d malformed", len(out.Lines), len(in.Lines), st.Malformed.Load())
	}
	b.ReportMetric(float64(len(in.Lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(testing.AllocsPerRun(3, func() { f.Apply(in, out, st) }))/float64(len(in.Lines)), "allocs/line")
}
