package bench

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/netnstest"
)

// BenchmarkTailUnderLoad runs the daemon tailing a file (inotify, the shipped sshd jail, Pebble,
// nftables in a private namespace) while a writer appends a generated auth log (5% failures) at a
// fixed rate for 3 s, as a busy server would. It reports how far behind the daemon fell (the
// largest backlog in lines and its equivalent in seconds at that rate), how long it took to
// catch up once the writer stopped, and the process's CPU time per second of load (1.0 = one
// core busy).
func BenchmarkTailUnderLoad(b *testing.B) {
	netnstest.Require(b)
	for _, rate := range []int{100_000, 500_000} {
		b.Run(fmt.Sprintf("rate=%dk-lines/s", rate/1000), func(b *testing.B) {
			for b.Loop() {
				tailUnderLoad(b, rate)
			}
		})
	}
}

func tailUnderLoad(b *testing.B, rate int) {
	const seconds = 3
	var gen bytes.Buffer
	if err := WriteSSHD(&gen, SSHDOptions{Lines: rate * seconds, FailPct: 5, Attackers: 20000, Start: time.Now(), Seed: 5}); err != nil {
		b.Fatal(err)
	}
	data := gen.Bytes()
	d, logPath := tailingDaemon(b, "", "pctailload")
	defer d.Close()
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cpu0 := processCPU(b)
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	written, maxBacklog := 0, 0
	pos := 0
	for written < rate*seconds {
		<-tick.C
		// Catch up with the clock: the writer holds the rate even if a tick came late.
		due := min(int(time.Since(start).Seconds()*float64(rate)), rate*seconds)
		end := pos
		for n := written; n < due; n++ {
			end += bytes.IndexByte(data[end:], '\n') + 1
		}
		if end > pos {
			f.Write(data[pos:end])
			pos, written = end, due
		}
		if backlog := written - int(d.LinesProcessed()); backlog > maxBacklog {
			maxBacklog = backlog
		}
	}
	writeDone := time.Now()
	for int(d.LinesProcessed()) < written {
		time.Sleep(time.Millisecond)
	}
	catchUp := time.Since(writeDone)
	cpu := processCPU(b) - cpu0
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64(maxBacklog), "max-backlog-lines")
	b.ReportMetric(float64(maxBacklog)/float64(rate)*1000, "max-lag-ms")
	b.ReportMetric(float64(catchUp.Microseconds())/1000, "catch-up-ms")
	b.ReportMetric(cpu.Seconds()/elapsed, "cores-busy")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
