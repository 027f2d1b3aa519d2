package matcher

import (
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/ingest"
)

func failLine(i int) string {
	switch i % 3 {
	case 0:
		return fmt.Sprintf("Nov 24 10:02:%02d web1 sshd[%d]: Failed password for invalid user admin%d from 203.0.%d.%d port %d ssh2", i%60, 5000+i, i, i/250%250, i%250, 30000+i%30000)
	case 1:
		return fmt.Sprintf("Nov 24 10:02:%02d web1 sshd[%d]: Invalid user test%d from 2001:db8:%x::%x port %d", i%60, 5000+i, i, i%65535, i%4096+1, 30000+i%30000)
	default:
		return fmt.Sprintf("Nov 24 10:02:%02d web1 sshd[%d]: Connection closed by authenticating user root 198.18.%d.%d port %d [preauth]", i%60, 5000+i, i/250%250, i%250, 30000+i%30000)
	}
}

// sshdBlock builds a block of about 256 KiB where pct percent of lines are failures.
func sshdBlock(pct int) (*ingest.Block, int) {
	noise := noiseLines(4000)
	var lines []string
	size := 0
	for i := 0; size < 250*1024; i++ {
		l := noise[i%len(noise)]
		if i*pct/100 != (i+1)*pct/100 {
			l = failLine(i)
		}
		lines = append(lines, l)
		size += len(l) + 1
	}
	return block(ingest.NewJailSet(0), lines...), len(lines)
}

// BenchmarkMatchSSHD measures one worker scanning blocks of sshd auth log with the shipped sshd
// filter, at several failure fractions. lines/s is per core; allocs/line must be 0 for noise.
func BenchmarkMatchSSHD(b *testing.B) {
	for _, pct := range []int{0, 5, 60, 100} {
		b.Run(fmt.Sprintf("fail=%d%%", pct), func(b *testing.B) {
			m := newMatcher(b, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(b)})
			w := newWorker(b, m)
			blk, n := sshdBlock(pct)
			var dst []Event
			b.SetBytes(int64(len(blk.Buf)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var err error
				if dst, err = w.Match(blk, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if pct > 0 && len(dst) == 0 {
				b.Fatal("no failures found")
			}
			lines := float64(b.N) * float64(n)
			b.ReportMetric(lines/b.Elapsed().Seconds(), "lines/s")
			allocs := testing.AllocsPerRun(5, func() { dst, _ = w.Match(blk, dst[:0]) })
			b.ReportMetric(allocs/float64(n), "allocs/line")
		})
	}
}
