package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/bench"
	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/internal/testconf"
	"github.com/portcullis/portcullis/pipeline"
	"github.com/portcullis/portcullis/sink/sinktest"
)

// The daemon, replay and regex run one stage chain: on the same log they count the same failures,
// and the daemon (on a recording firewall, its workers in parallel) bans what replay bans.
func TestOneChainAgrees(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	var buf bytes.Buffer
	now := time.Now()
	// 20,000 lines over about 40 s, ending a minute ago: inside findtime, read from the start.
	if err := bench.WriteSSHD(&buf, bench.SSHDOptions{Lines: 20000, FailPct: 30, Attackers: 400, Start: now.Add(-2 * time.Minute), Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "etc")
	testconf.Write(t, cfg, fmt.Sprintf("[DEFAULT]\nmaxretry = 5\nfindtime = 10m\nbantime = 1h\n[sshd]\nenabled = true\nport = ssh\nlogpath = %s\n", logPath))

	// regex: the failures, one JSON object each.
	var out, errOut bytes.Buffer
	if err := runRegex(regexOpts{json: true, log: logPath, filter: filepath.Join(cfg, "filter.d", "sshd.conf"), now: now}, &out, &errOut); err != nil {
		t.Fatalf("regex: %v %s", err, errOut.String())
	}
	regexFailures := uint64(bytes.Count(out.Bytes(), []byte("\n")))

	// replay: failures and bans by event time.
	want := map[netip.Prefix]bool{}
	st, err := pipeline.Replay(pipeline.ReplayOptions{ConfigDir: cfg, Logs: []string{logPath}, Now: func() time.Time { return now }},
		func(d pipeline.ReplayDecision) error {
			if d.Op == "ban" {
				want[d.Prefix] = true
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}

	// the daemon: the same file read from its start, decisions into a recording firewall.
	fw := &sinktest.Firewall{}
	sock := filepath.Join(dir, "s.sock")
	d, err := pipeline.Start(pipeline.Options{ConfigDir: cfg, Socket: sock, DBDir: filepath.Join(dir, "db"), Metrics: "off",
		Poll: 5 * time.Millisecond, Workers: 2, Firewall: fw, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var js control.JailStatus
	var got []netip.Prefix
	// Every line processed (its failures counted) and as many bans in the firewall as replay made:
	// only then are the daemon's figures read.
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, _ = fw.Elements("sshd")
		if d.LinesProcessed() == 20000 && len(got) >= len(want) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the daemon processed %d lines and banned %d, replay banned %d", d.LinesProcessed(), len(got), len(want))
		}
	}
	r, err := control.Call(sock, control.Request{Cmd: "status", Args: []string{"sshd"}}, 5*time.Second)
	if err != nil || !r.OK {
		t.Fatalf("status: %v %+v", err, r)
	}
	if err := json.Unmarshal(r.Data, &js); err != nil {
		t.Fatal(err)
	}

	if regexFailures == 0 || len(want) == 0 {
		t.Fatalf("a log with no failures or no bans proves nothing: %d failures, %d bans", regexFailures, len(want))
	}
	if st.Failures["sshd"] != regexFailures || js.TotalFailed != regexFailures {
		t.Fatalf("failures: regex %d, replay %d, daemon %d", regexFailures, st.Failures["sshd"], js.TotalFailed)
	}
	t.Logf("%d failures, %d bans in every mode", regexFailures, len(want))
	var wantList []netip.Prefix
	for p := range want {
		wantList = append(wantList, p)
	}
	slices.SortFunc(wantList, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if !slices.Equal(got, wantList) || js.TotalBanned != uint64(len(want)) {
		t.Fatalf("bans: the daemon %d (%s…), replay %d (%s…)", len(got), head(got), len(wantList), head(wantList))
	}
}

func head(ps []netip.Prefix) string {
	var s []string
	for i := 0; i < len(ps) && i < 5; i++ {
		s = append(s, ps[i].String())
	}
	return strings.Join(s, " ")
}
