package bench

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/netnstest"
	"github.com/portcullis/portcullis/internal/testconf"
	"github.com/portcullis/portcullis/pipeline"
	"github.com/portcullis/portcullis/sink"
)

// BenchmarkBanStorm bans 10,000 addresses (maxretry 1, one failure each, read from a log at
// start) into nftables in a private network namespace, and reports the time from daemon start
// until every one is an element of the jail's set: without actions, and with an executed action
// that sleeps 1 s per ban. The actions run from their own queue, so the kernel's bans must not
// wait for them: the two times should match.
func BenchmarkBanStorm(b *testing.B) {
	netnstest.Require(b)
	for _, withAction := range []bool{false, true} {
		name := "no-action"
		if withAction {
			name = "action-sleeps-1s"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				banStorm(b, withAction, i)
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s-to-10k-bans")
		})
	}
}

func banStorm(b *testing.B, withAction bool, run int) {
	b.StopTimer()
	const bans = 10_000
	dir := b.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	f, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	stamp := time.Now().Format(time.Stamp)
	for i := range bans {
		fmt.Fprintf(f, "%s host sshd[%d]: Failed password for root from 10.%d.%d.%d port 22 ssh2\n", stamp, 1000+i%30000, 1+i>>16, i>>8&255, i&255)
	}
	f.Close()
	cfg := filepath.Join(dir, "etc")
	jail := fmt.Sprintf("[sshd]\nenabled = true\nport = ssh\nmaxretry = 1\nbantime = 1h\nlogpath = %s\n", logPath)
	if withAction {
		// The firewall action (native: its commands are never run) and the slow one.
		jail += "action = nftables-multiport[port=ssh]\n         sleeper\n"
	}
	testconf.Write(b, cfg, jail)
	os.MkdirAll(filepath.Join(cfg, "action.d"), 0o755)
	os.WriteFile(filepath.Join(cfg, "action.d", "sleeper.conf"), []byte("[Definition]\nactionban = sleep 1\n"), 0o644)
	os.WriteFile(filepath.Join(cfg, "action.d", "nftables-multiport.conf"), []byte("[Definition]\nactionban = true\n"), 0o644)
	fw, err := sink.NewNFT(sink.NFTOptions{Table: "portcullis"})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	d, err := pipeline.Start(pipeline.Options{ConfigDir: cfg, Socket: filepath.Join(dir, fmt.Sprintf("s%d.sock", run)), DBDir: filepath.Join(dir, "db"),
		Metrics: "off", Poll: 5 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Firewall: fw})
	if err != nil {
		b.Fatal(err)
	}
	for {
		els, _ := fw.Elements("sshd")
		if len(els) >= bans {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	d.Close()
	fw.Remove()
	b.StartTimer()
}
