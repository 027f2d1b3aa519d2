package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/bench"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// BenchmarkRegexFail2banSSHD runs `portcullis regex` with fail2ban's own sshd.conf over a
// generated 500,000-line auth log (make bench-compare times fail2ban-regex on the same kind of
// file). Includes start-up: loading the filter and compiling it (or loading the cached database).
func BenchmarkRegexFail2banSSHD(b *testing.B) {
	if err := f2bcorpus.Ensure(); err != nil {
		b.Skipf("fail2ban's package is not available: %v", err)
	}
	for _, pct := range []int{5, 60} {
		b.Run(fmt.Sprintf("fail=%d%%", pct), func(b *testing.B) {
			const lines = 500_000
			log := filepath.Join(b.TempDir(), "auth.log")
			f, err := os.Create(log)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			if err := bench.WriteSSHD(f, bench.SSHDOptions{Lines: lines, FailPct: pct, Attackers: 20000, Start: start, Seed: 1}); err != nil {
				b.Fatal(err)
			}
			st, _ := f.Stat()
			f.Close()
			o := regexOpts{log: log, filter: filepath.Join(f2bcorpus.FilterDir(), "sshd.conf"), now: start.Add(24 * time.Hour)}
			b.SetBytes(st.Size())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := runRegex(o, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
