package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/portcullis/portcullis/internal/netnstest"
	"github.com/portcullis/portcullis/internal/testconf"
	"github.com/portcullis/portcullis/pipeline"
)

// BenchmarkBanLatency measures the time from a failure line being appended to a log to its address
// being an element of the jail's nftables set, watched through nftables' own netlink notifications
// (as `nft monitor` sees them), in a private network namespace: inotify wake-up, matching, counting,
// the ban decision, the synced Pebble commit and the nftables transaction. maxretry = 1, so each
// line is a ban. One op is one ban; p50 and p99 are reported. "load" runs a writer appending
// 100,000 non-matching lines/s to the same file meanwhile.
func BenchmarkBanLatency(b *testing.B) {
	netnstest.Require(b)
	for _, load := range []int{0, 100_000} {
		name := "idle"
		if load > 0 {
			name = fmt.Sprintf("load=%dk-lines/s", load/1000)
		}
		b.Run(name, func(b *testing.B) { banLatency(b, load) })
	}
}

func banLatency(b *testing.B, load int) {
	d, logPath := tailingDaemon(b, "maxretry = 1\nbantime = 1h\n", "pclatency")
	defer d.Close()

	arrivals := watchElements(b)
	defer arrivals.close()

	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var wmu sync.Mutex // one writer at a time: lines never interleave
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if load > 0 {
		wg.Add(1)
		go func() { // bursts every 10 ms
			defer wg.Done()
			noise := strings.Repeat(time.Now().Format(time.Stamp)+" host1 CRON[1000]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n", load/100)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					wmu.Lock()
					io.WriteString(f, noise)
					wmu.Unlock()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // the tailer is following the file
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		addr := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		line := fmt.Sprintf("%s host1 sshd[%d]: Failed password for root from %s port 22 ssh2\n", time.Now().Format(time.Stamp), 2000+i%30000, addr)
		wmu.Lock()
		t0 := time.Now()
		io.WriteString(f, line)
		wmu.Unlock()
		lat = append(lat, arrivals.wait(b, addr).Sub(t0))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	reportLatency(b, lat)
}

// elementArrivals records when each address became an element of some nftables set in this
// namespace, as the kernel announces it (netlink monitor: what `nft monitor` sees).
type elementArrivals struct {
	mu      sync.Mutex
	seen    map[netip.Addr]time.Time
	arrived *sync.Cond
	mon     *nftables.Monitor
}

func watchElements(b *testing.B) *elementArrivals {
	b.Helper()
	conn, err := nftables.New()
	if err != nil {
		b.Fatal(err)
	}
	a := &elementArrivals{seen: map[netip.Addr]time.Time{}}
	a.arrived = sync.NewCond(&a.mu)
	a.mon = nftables.NewMonitor(nftables.WithMonitorAction(nftables.MonitorActionNew), nftables.WithMonitorObject(nftables.MonitorObjectElements))
	events, err := conn.AddMonitor(a.mon)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for ev := range events {
			els, ok := ev.Data.([]nftables.SetElement)
			if !ok {
				continue
			}
			now := time.Now()
			a.mu.Lock()
			for _, e := range els {
				if addr, ok := netip.AddrFromSlice(e.Key); ok && !e.IntervalEnd {
					a.seen[addr.Unmap()] = now
				}
			}
			a.arrived.Broadcast()
			a.mu.Unlock()
		}
	}()
	return a
}

// wait returns when addr arrived, waiting up to 10 s for it (a broken daemon fails the run).
func (a *elementArrivals) wait(b *testing.B, addr netip.Addr) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); a.seen[addr].IsZero() && time.Now().Before(deadline); {
		waitCond(a.arrived, 100*time.Millisecond)
	}
	if a.seen[addr].IsZero() {
		b.Fatalf("%s never reached a set", addr)
	}
	return a.seen[addr]
}

func (a *elementArrivals) close() { a.mon.Close() }

// reportLatency reports the p50 and p99 of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// waitCond waits on c (its lock held) for at most d.
func waitCond(c *sync.Cond, d time.Duration) {
	t := time.AfterFunc(d, c.Broadcast)
	c.Wait()
	t.Stop()
}

// tailingDaemon starts the daemon with the shipped sshd jail (plus extra keys) following an empty
// auth.log from its end, its nftables table named table, and returns it with the log's path.
func tailingDaemon(b *testing.B, extra, table string) (*pipeline.Daemon, string) {
	b.Helper()
	dir := b.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "etc")
	testconf.Write(b, cfg, "[sshd]\nenabled = true\nport = ssh\n"+extra+"logpath = "+logPath+"\n")
	d, err := pipeline.Start(pipeline.Options{ConfigDir: cfg, Socket: filepath.Join(dir, "s.sock"), DBDir: filepath.Join(dir, "db"),
		Metrics: "off", Table: table, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return d, logPath
}
