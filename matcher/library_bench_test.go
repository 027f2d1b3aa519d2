package matcher

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/bench"
	"github.com/portcullis/portcullis/ingest"
)

// BenchmarkLibraryMixed scans a realistic collector stream — 90% web access lines (1% of them from
// scanners), 10% auth and mail lines (sshd, postfix, dovecot) — once with the sshd jail alone and
// once with every filter of our library loaded as a jail into the same Hyperscan database, every
// jail reading every line. The library's goal: all jails within 2× of sshd alone.
func BenchmarkLibraryMixed(b *testing.B) { libraryBench(b, 10) }

// BenchmarkLibraryWeb is the same on a web access log alone (1% of it from scanners), with every
// jail loaded: the benchmark issue's "nginx access log, all shipped jails" workload.
func BenchmarkLibraryWeb(b *testing.B) { libraryBench(b, 0) }

// BenchmarkLibraryEach scans the mixed stream with each filter of the library alone, to find the
// filters whose Hyperscan patterns cost the most (compare with BenchmarkLibraryEach/sshd and with a
// filter whose literals never occur in the stream).
func BenchmarkLibraryEach(b *testing.B) {
	buf, specs := libraryInput(b, 10)
	blocks, lines := libraryBlocks(buf)
	for _, s := range specs {
		b.Run(s.Name, func(b *testing.B) {
			runLibrary(b, []JailSpec{{ID: 0, Name: s.Name, Filter: s.Filter}}, blocks, lines, int64(len(buf)))
		})
	}
}

// BenchmarkLibraryScan times Hyperscan's scan alone (no confirmation, no dates) of the mixed
// stream, with the sshd jail and with every jail: the floor under BenchmarkLibraryMixed.
func BenchmarkLibraryScan(b *testing.B) {
	buf, specs := libraryInput(b, 10)
	blocks, lines := libraryBlocks(buf)
	for _, set := range []struct {
		name  string
		jails []JailSpec
	}{{"sshd-only", sshdSpec(b, specs)}, {fmt.Sprintf("all-%d-jails", len(specs)), specs}} {
		b.Run(set.name, func(b *testing.B) {
			w := newWorker(b, newMatcherWith(b, Options{Location: time.UTC}, set.jails...))
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			hits := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				hits = 0
				for _, blk := range blocks {
					if err := w.scan(blk); err != nil {
						b.Fatal(err)
					}
					hits += len(w.hits)
				}
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(hits)/float64(lines), "hits/line")
		})
	}
}

// sshdSpec is the sshd jail of the library alone.
func sshdSpec(b *testing.B, specs []JailSpec) []JailSpec {
	for _, s := range specs {
		if s.Name == "sshd" {
			return []JailSpec{{ID: 0, Name: "sshd", Filter: s.Filter}}
		}
	}
	b.Fatal("no sshd filter")
	return nil
}

var libraryStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// libraryInput generates the stream (authPct% auth and mail lines, the rest web access lines) and
// the library's jails.
func libraryInput(b *testing.B, authPct int) ([]byte, []JailSpec) {
	var buf bytes.Buffer
	if err := bench.WriteWeb(&buf, bench.WebOptions{Lines: 200_000, BadPct: 1, AuthPct: authPct, Attackers: 5000, Start: libraryStart, Seed: 3}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), librarySpecs(b)
}

func libraryBench(b *testing.B, authPct int) {
	buf, specs := libraryInput(b, authPct)
	blocks, lines := libraryBlocks(buf)
	sshdOnly := sshdSpec(b, specs)
	var sshdRate float64
	b.Run("sshd-only", func(b *testing.B) { sshdRate = runLibrary(b, sshdOnly, blocks, lines, int64(len(buf))) })
	b.Run(fmt.Sprintf("all-%d-jails", len(specs)), func(b *testing.B) {
		if rate := runLibrary(b, specs, blocks, lines, int64(len(buf))); sshdRate > 0 {
			b.ReportMetric(sshdRate/rate, "x-slower-than-sshd-alone")
		}
	})
}

// libraryBlocks cuts the stream into blocks as the file reader does, once, outside the timing.
func libraryBlocks(buf []byte) (blocks []*ingest.Block, lines int) {
	src := &ingest.Source{Name: "mixed", Stats: &ingest.SourceStats{}}
	ingest.ReadAll(bytes.NewReader(buf), src, nil, func(blk *ingest.Block) error {
		blocks = append(blocks, &ingest.Block{Buf: append([]byte(nil), blk.Buf...), Lines: append([]ingest.Span(nil), blk.Lines...)})
		lines += len(blk.Lines)
		ingest.PutBlock(blk)
		return nil
	})
	return blocks, lines
}

// runLibrary matches every block with jails loaded into one database, every jail reading every
// line, and returns the lines per second.
func runLibrary(b *testing.B, jails []JailSpec, blocks []*ingest.Block, lines int, size int64) float64 {
	now := libraryStart.Add(time.Hour)
	w := newWorker(b, newMatcherWith(b, Options{Now: func() time.Time { return now }, Location: time.UTC}, jails...))
	src := &ingest.Source{Name: "mixed", Jails: jailSet(jails), Stats: &ingest.SourceStats{}}
	for _, blk := range blocks {
		blk.Source = src
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var ev []Event
	var err error
	found := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		found = 0
		for _, blk := range blocks {
			if ev, err = w.Match(blk, ev[:0]); err != nil {
				b.Fatal(err)
			}
			found += len(ev)
		}
	}
	rate := float64(lines) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "lines/s")
	b.ReportMetric(float64(found), "failures")
	return rate
}
