package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/fleet"
	"github.com/portcullis/portcullis/internal/netnstest"
	"github.com/portcullis/portcullis/internal/testconf"
	"github.com/portcullis/portcullis/pipeline"
	"github.com/portcullis/portcullis/sink"
)

// fleetNode starts a daemon with one sshd jail (extra keys added) on an empty auth.log and
// fleetConf in its portcullis.conf. fw: its firewall (nil: a memory one, when the node's kernel is
// not what is measured).
func fleetNode(b *testing.B, extra, fleetConf string, fw sink.Firewall) (*pipeline.Daemon, string, string) {
	b.Helper()
	dir := b.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "etc")
	testconf.Write(b, cfg, "[sshd]\nenabled = true\nport = ssh\nbantime = 1h\n"+extra+"logpath = "+logPath+"\n")
	if err := os.WriteFile(filepath.Join(cfg, "portcullis.conf"), []byte("[Definition]\n"+fleetConf), 0o644); err != nil {
		b.Fatal(err)
	}
	opts := pipeline.Options{ConfigDir: cfg, Socket: filepath.Join(dir, "s.sock"), DBDir: filepath.Join(dir, "db"),
		Metrics: "off", Firewall: fw, ImportFail2ban: "off", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if fw == nil {
		opts.Firewall = &sink.Memory{}
	}
	d, err := pipeline.Start(opts)
	if err != nil {
		b.Fatal(err)
	}
	return d, logPath, opts.Socket
}

func freeLoopback(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// BenchmarkFleetSync: a fleet holds 100,000 bans in force; a new node joins. One op is one
// node's whole start (configuration, matcher, store, the watch's initial values, the kernel
// transactions) until it reports ready, when every ban is an element of its nftables set
// (checked after the clock stops).
func BenchmarkFleetSync(b *testing.B) {
	netnstest.Require(b)
	const n = 100_000
	addr := freeLoopback(b)
	seed, _, _ := fleetNode(b, "", "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = seed\n", nil)
	defer seed.Close()
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	bans, err := fleet.OpenBans(context.Background(), js, 1)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
				if err := bans.Put(context.Background(), fleet.Ban{Jail: "sshd", Prefix: p, Start: now.Unix(), End: now.Add(2 * time.Hour).Unix(), Count: 1, Origin: "seed"}, now); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		fw, err := sink.NewNFT(sink.NFTOptions{Table: fmt.Sprintf("pcsync%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		d, _, _ := fleetNode(b, "", fmt.Sprintf("fleet = nats://%s\nfleet_name = edge%d\n", addr, i), fw)
		b.StopTimer()
		if els, err := fw.Elements("sshd"); err != nil || len(els) != n {
			b.Fatalf("the kernel holds %d bans at ready, want %d (%v)", len(els), n, err)
		}
		d.Close()
		fw.Remove()
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s-to-100k-bans")
}

// BenchmarkFleetLatency: node a bans (maxretry = 1: a failure line appended to its log), node b
// applies it through the fleet: the time from the append to the address being an element of b's
// nftables set, as the kernel announces it. One op is one ban; p50 and p99 are reported.
func BenchmarkFleetLatency(b *testing.B) {
	netnstest.Require(b)
	addr := freeLoopback(b)
	a, logPath, _ := fleetNode(b, "maxretry = 1\n", "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = a\n", nil)
	defer a.Close()
	fw, err := sink.NewNFT(sink.NFTOptions{Table: "pcfleetlat"})
	if err != nil {
		b.Fatal(err)
	}
	defer fw.Remove()
	bn, _, _ := fleetNode(b, "", "fleet = nats://"+addr+"\nfleet_name = b\n", fw)
	defer bn.Close()

	arrivals := watchElements(b)
	defer arrivals.close()
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	time.Sleep(200 * time.Millisecond)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		addr := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		t0 := time.Now()
		fmt.Fprintf(f, "%s host1 sshd[%d]: Failed password for root from %s port 22 ssh2\n", time.Now().Format(time.Stamp), 2000+i%30000, addr)
		lat = append(lat, arrivals.wait(b, addr).Sub(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkFleetFailures: failures published to the fleet's stream (16 partitions, messages of
// 64 or 1,024 failures of distinct addresses, as publishers batch a block's failures by
// partition) and counted by one or two deciding daemons. One op is one failure, from its
// publication to a decider having counted it; failures/s is reported. Run it with a large
// -benchtime (2000000x): one op is far too short to time alone.
func BenchmarkFleetFailures(b *testing.B) {
	for _, per := range []int{64, 1024} {
		for _, deciders := range []int{1, 2} {
			b.Run(fmt.Sprintf("batch=%d/deciders=%d", per, deciders), func(b *testing.B) { fleetFailures(b, deciders, per) })
		}
	}
}

func fleetFailures(b *testing.B, deciders, per int) {
	const parts = 16
	addr := freeLoopback(b)
	conf := "fleet_failures = decide\nfleet_partitions = 16\n"
	var socks []string
	for i := range deciders {
		fc := fmt.Sprintf("fleet = nats://%s\nfleet_name = d%d\n", addr, i) + conf
		if i == 0 {
			fc = fmt.Sprintf("fleet = embedded\nfleet_listen = %s\nfleet_name = d0\n", addr) + conf
		}
		d, _, sock := fleetNode(b, "maxretry = 1000\nfindtime = 1h\n", fc, nil)
		defer d.Close()
		socks = append(socks, sock)
	}
	nc, err := nats.Connect("nats://"+addr, nats.FlusherTimeout(10*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	fs, err := fleet.OpenFailures(context.Background(), js, parts, 1, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	// received is how many failures each decider has counted.
	received := func() []uint64 {
		var ns []uint64
		for _, s := range socks {
			rep, err := control.Call(s, control.Request{Cmd: "fleet", Args: []string{"status"}}, 10*time.Second)
			if err != nil || !rep.OK {
				b.Fatalf("fleet status: %v %s", err, rep.Error)
			}
			var st fleet.Status
			if err := jsonUnmarshal(rep.Data, &st); err != nil {
				b.Fatal(err)
			}
			ns = append(ns, st.Counters.FailuresIn)
		}
		return ns
	}
	sum := func(ns []uint64) (n uint64) {
		for _, x := range ns {
			n += x
		}
		return n
	}
	// The deciders share the partitions once each has balanced (every quarter of the failover):
	// rounds of one failure per partition go out until every decider counts some of a round.
	for warm, settled := 0, deciders == 1; !settled; warm++ {
		if warm == 100 {
			b.Fatal("the deciders did not share the partitions")
		}
		before := received()
		for p := range parts {
			bt := fleet.Batch{Node: "pub", Failures: []fleet.Failure{{Jail: "sshd", Addr: netip.AddrFrom4([4]byte{11, byte(warm), 0, byte(p)}), Time: time.Now().Unix()}}}
			if _, err := fs.Publish(p, fmt.Sprintf("warm-%d-%d-%d", b.N, warm, p), bt.Encode(nil)); err != nil {
				b.Fatal(err)
			}
		}
		after := received()
		for deadline := time.Now().Add(time.Minute); sum(after) < sum(before)+parts; after = received() {
			if time.Now().After(deadline) {
				b.Fatal("the warm-up round was not counted")
			}
			time.Sleep(5 * time.Millisecond)
		}
		settled = true
		for i := range after {
			settled = settled && after[i] > before[i]
		}
		if !settled {
			time.Sleep(500 * time.Millisecond)
		}
	}
	// The messages, encoded before the clock starts: distinct addresses, so nothing crosses.
	msgs := (b.N + per - 1) / per
	data := make([][]byte, msgs)
	partOf := make([]int, msgs)
	now := time.Now().Unix()
	for m := range msgs {
		bt := fleet.Batch{Node: "pub"}
		for k := range per {
			i := m*per + k
			bt.Failures = append(bt.Failures, fleet.Failure{Jail: "sshd", Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Time: now})
		}
		partOf[m] = m % parts
		data[m] = bt.Encode(nil)
	}
	base := received()
	b.ResetTimer()
	for m := range msgs {
		for {
			_, err := fs.Publish(partOf[m], fmt.Sprintf("bench-%d-%d", b.N, m), data[m])
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) { // 256 unacknowledged: wait for acks
				b.Fatal(err)
			}
		}
	}
	want := sum(base) + uint64(msgs*per)
	for deadline := time.Now().Add(5 * time.Minute); sum(received()) < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the deciders counted %d of %d failures", sum(received())-sum(base), msgs*per)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(msgs*per)/b.Elapsed().Seconds(), "failures/s")
	// The largest share one decider counted: 1 with one decider, about 1/deciders when shared.
	top, end := 0.0, received()
	for i := range end {
		top = max(top, float64(end[i]-base[i])/float64(msgs*per))
	}
	b.ReportMetric(top, "top-decider-share")
}

func jsonUnmarshal(p []byte, v any) error { return json.Unmarshal(p, v) }
