package matcher

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/bench"
	"github.com/portcullis/portcullis/config"
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

func libraryBench(b *testing.B, authPct int) {
	var buf bytes.Buffer
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := bench.WriteWeb(&buf, bench.WebOptions{Lines: 200_000, BadPct: 1, AuthPct: authPct, Attackers: 5000, Start: start, Seed: 3}); err != nil {
		b.Fatal(err)
	}
	var specs []JailSpec
	for _, name := range ownFilters(b) {
		if name == "recidive" {
			continue // fed by the daemon's own bans, never by log lines
		}
		f, errs := config.LoadFilter(ownFilterDir, name, nil)
		if errs != nil {
			b.Fatal(errs)
		}
		specs = append(specs, JailSpec{ID: len(specs), Name: name, Filter: f})
	}
	sshdOnly := func() []JailSpec {
		for _, s := range specs {
			if s.Name == "sshd" {
				return []JailSpec{{ID: 0, Name: "sshd", Filter: s.Filter}}
			}
		}
		b.Fatal("no sshd filter")
		return nil
	}()
	now := start.Add(time.Hour)
	rates := map[string]float64{}
	for _, set := range []struct {
		name  string
		jails []JailSpec
	}{{"sshd-only", sshdOnly}, {fmt.Sprintf("all-%d-jails", len(specs)), specs}} {
		b.Run(set.name, func(b *testing.B) {
			m, err := New(set.jails, Options{Now: func() time.Time { return now }, Location: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			w, err := m.NewWorker()
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			var all ingest.JailSet
			for _, j := range set.jails {
				all = all.With(j.ID)
			}
			src := &ingest.Source{Name: "mixed", Jails: all, Stats: &ingest.SourceStats{}}
			var blocks []*ingest.Block
			lines := 0
			ingest.ReadAll(bytes.NewReader(buf.Bytes()), src, nil, func(blk *ingest.Block) error {
				blocks = append(blocks, &ingest.Block{Buf: append([]byte(nil), blk.Buf...), Lines: append([]ingest.Span(nil), blk.Lines...), Source: src})
				lines += len(blk.Lines)
				ingest.PutBlock(blk)
				return nil
			})
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			var ev []Event
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
			rates[strings.SplitN(set.name, "-", 2)[0]] = rate
			if r, ok := rates["sshd"]; ok && set.name != "sshd-only" {
				b.ReportMetric(r/rate, "x-slower-than-sshd-alone")
			}
		})
	}
}
