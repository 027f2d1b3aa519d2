package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portcullis/portcullis/internal/netnstest"
	"github.com/portcullis/portcullis/internal/testconf"
	"github.com/portcullis/portcullis/pipeline"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

func TestGeneratorIsDeterministic(t *testing.T) {
	o := SSHDOptions{Lines: 2000, FailPct: 60, Attackers: 50, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Seed: 7}
	var a, b bytes.Buffer
	if err := WriteSSHD(&a, o); err != nil {
		t.Fatal(err)
	}
	WriteSSHD(&b, o)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different bytes")
	}
	if n := bytes.Count(a.Bytes(), []byte("\n")); n != 2000 {
		t.Fatalf("%d lines, want 2000", n)
	}
	o.Seed = 8
	var c bytes.Buffer
	WriteSSHD(&c, o)
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("different seeds, same bytes")
	}
}

const benchJail = `
[DEFAULT]
maxretry = 5
findtime = 1h
bantime = 1h
[sshd]
enabled = true
port = ssh
logpath = %s head
`

// BenchmarkEndToEnd runs the whole daemon — file reader, Hyperscan matching on every core, windows,
// ban decisions, Pebble commits and nftables transactions in a private network namespace — over a
// generated sshd log read from its start, and reports lines/s from daemon start to the last line
// processed. The log's 1M lines span about 33 minutes, all inside findtime, so a first start reads
// every one (older lines are skipped by time, as fail2ban skips them). The one-core runs pin
// every thread of the process to one CPU, as taskset does (one worker alone is not one core: the
// reader, the applier and the GC would run on the other), and the runs on every core report
// their speed-up over them (x-one-core).
func BenchmarkEndToEnd(b *testing.B) {
	netnstest.Require(b)
	oneCore := map[int]float64{}
	for _, c := range []struct {
		pct, workers  int
		pinned, audit bool
	}{{5, 1, true, false}, {60, 1, true, false}, {5, runtime.NumCPU(), false, false}, {60, runtime.NumCPU(), false, false},
		{60, 1, true, true}, {60, runtime.NumCPU(), false, true}} {
		pct, workers, pinned, audit := c.pct, c.workers, c.pinned, c.audit
		name := fmt.Sprintf("fail=%d%%", pct)
		if audit {
			name += "/audit"
		}
		if pinned {
			name += "/one-core"
		}
		b.Run(name, func(b *testing.B) {
			if pinned {
				defer onOneCPU(b)()
			}
			const lines = 1_000_000
			dir := b.TempDir()
			logPath := filepath.Join(dir, "auth.log")
			f, err := os.Create(logPath)
			if err != nil {
				b.Fatal(err)
			}
			if err := WriteSSHD(f, SSHDOptions{Lines: lines, FailPct: pct, Attackers: 20000, Start: time.Now().Add(-40 * time.Minute), Seed: 1}); err != nil {
				b.Fatal(err)
			}
			st, _ := f.Stat()
			f.Close()
			cfg := filepath.Join(dir, "etc")
			testconf.Write(b, cfg, fmt.Sprintf(benchJail, logPath))
			if audit {
				// As shipped: every ban and its evidence lines (maxmatches) to the audit log.
				conf := "[Definition]\nauditlog = " + filepath.Join(dir, "audit.log") + "\n"
				if err := os.WriteFile(filepath.Join(cfg, "portcullis.conf"), []byte(conf), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(st.Size())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, err := pipeline.Start(pipeline.Options{
					ConfigDir: cfg, Socket: filepath.Join(dir, fmt.Sprintf("s%d.sock", i)), DBDir: filepath.Join(dir, fmt.Sprintf("db%d", i)),
					Metrics: "off", Poll: 5 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
					Workers: workers,
				})
				if err != nil {
					b.Fatal(err)
				}
				for d.LinesProcessed() < lines {
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				d.Close()
				b.StartTimer()
			}
			rate := float64(lines) * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "lines/s")
			if pinned && !audit {
				oneCore[pct] = rate
			} else if r := oneCore[pct]; r > 0 && !audit {
				b.ReportMetric(rate/r, "x-one-core")
			}
		})
	}
}

// onOneCPU pins every thread of the process to the first CPU it may run on (threads started later
// inherit it from the thread that starts them) and returns the function that undoes it.
func onOneCPU(b *testing.B) func() {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Fatal(err)
	}
	cpu := 0
	for !all.IsSet(cpu) {
		cpu++
	}
	var one unix.CPUSet
	one.Set(cpu)
	set := func(s *unix.CPUSet) {
		// Twice: a thread started during the first pass, by a thread not yet pinned, is caught.
		for range 2 {
			tasks, err := os.ReadDir("/proc/self/task")
			if err != nil {
				b.Fatal(err)
			}
			for _, t := range tasks {
				if tid, err := strconv.Atoi(t.Name()); err == nil {
					_ = unix.SchedSetaffinity(tid, s) // a thread that has exited meanwhile
				}
			}
		}
	}
	set(&one)
	return func() { set(&all) }
}

// The other generators are deterministic too, and what they call failures is what our filters
// count: each generated failure line is caught by the filter for its kind, and nothing else is.
func TestOtherGenerators(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	gens := map[string]func(io.Writer, uint64) error{
		"web": func(w io.Writer, s uint64) error {
			return WriteWeb(w, WebOptions{Lines: 3000, BadPct: 1, AuthPct: 10, Start: start, Seed: s})
		},
		"nginx-error": func(w io.Writer, s uint64) error { return WriteNginxError(w, 3000, 20, 500, start, s) },
		"syslog5424":  func(w io.Writer, s uint64) error { return WriteSyslog5424(w, 3000, 20, 50, start, s) },
	}
	for name, gen := range gens {
		var a, b, c bytes.Buffer
		gen(&a, 1)
		gen(&b, 1)
		gen(&c, 2)
		if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) || bytes.Count(a.Bytes(), []byte("\n")) != 3000 {
			t.Errorf("%s: not deterministic or wrong length", name)
		}
	}
	var buf bytes.Buffer
	WriteNginxError(&buf, 3000, 20, 500, start, 1)
	want := strings.Count(buf.String(), "password mismatch") + strings.Count(buf.String(), "was not found in") + strings.Count(buf.String(), "limiting requests")
	dir := t.TempDir()
	testconf.Write(t, dir, "")
	got := 0
	for _, name := range []string{"nginx-http-auth", "nginx-limit-req"} {
		data, err := os.ReadFile(filepath.Join(testconf.Shipped(), "filter.d", name+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "filter.d", name+".conf"), data, 0o644)
		log := filepath.Join(dir, name+".log")
		os.WriteFile(log, buf.Bytes(), 0o644)
		os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(fmt.Sprintf("[%s]\nenabled = true\nlogpath = %s\nmaxretry = 1000000\n", name, log)), 0o644)
		st, err := pipeline.Replay(pipeline.ReplayOptions{ConfigDir: dir, Logs: []string{log}}, func(pipeline.ReplayDecision) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		got += int(st.Failures[name])
	}
	if got != want || want < 400 {
		t.Fatalf("the nginx filters counted %d failures in the generated error log, the generator wrote %d", got, want)
	}
}
