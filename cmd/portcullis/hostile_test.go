package main

// The hostile-input suite: the daemon run as an attacker and a careless admin would run it. Each
// test names the class it keeps closed; `make hostile` runs them longer (HOSTILE_ROUNDS).

import (
	"context"
	cryptotls "crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/netnstest"
	"github.com/portcullis/portcullis/internal/testpki"
)

// rounds is how often a repeated hostile test repeats: a few under make test, HOSTILE_ROUNDS under
// make hostile.
func rounds(short int) int {
	if n, err := strconv.Atoi(os.Getenv("HOSTILE_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return short
}

// A reload refused at install (here a syslog port another process holds) changes nothing: the
// bans of a jail the new configuration disables stay in the kernel and in the store, and the
// running configuration goes on.
func TestHostileFailedReloadKeepsBans(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails+"\n[jrn]\nenabled = true\nfilter = sshd\nbackend = systemd\n")
	// A journal source (a stand-in journalctl that records how it was called): after a refused
	// reload, the previous configuration's journal reader continues after its cursor.
	args := filepath.Join(e.dir, "journalctl.args")
	entry := fmt.Sprintf(`{"__CURSOR":"c0","__REALTIME_TIMESTAMP":"%d","_HOSTNAME":"web1","_COMM":"sshd","_PID":"7","MESSAGE":"Failed password for root from 203.0.113.131 port 22 ssh2"}`, time.Now().UnixMicro())
	fake := filepath.Join(e.dir, "journalctl")
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\" >> "+args+"\ncase \"$*\" in *after-cursor*) exec sleep 3600;; esac\necho '"+entry+"'\nexec sleep 3600\n"), 0o755)
	os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(fmt.Sprintf("[Definition]\nsocket = %s\njournalctl = %s\n", e.socket, fake)), 0o644)
	d := e.start()
	e.waitFailures("the journal's failure", "jrn", 1, d)
	e.mustCLI("set", "sshd", "banip", "203.0.113.130")
	e.waitBanned("set banip", "sshd-v4", "203.0.113.130", d)
	conf := filepath.Join(e.cfg, "jail.conf")
	good, _ := os.ReadFile(conf)
	bad := strings.Replace(string(good), "[sshd]\nenabled = true", "[sshd]\nenabled = false", 1) +
		"\n[sys]\nenabled = true\nfilter = sshd\nlogpath = syslog\n"
	if bad == string(good)+"\n[sys]\nenabled = true\nfilter = sshd\nlogpath = syslog\n" {
		t.Fatal("the test's configuration edit did not disable sshd")
	}
	os.WriteFile(conf, []byte(bad), 0o644)
	daemonConf := filepath.Join(e.cfg, "portcullis.conf")
	goodDaemon, _ := os.ReadFile(daemonConf)
	// A port someone else holds: the configuration is valid, the install cannot bind it.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	os.WriteFile(daemonConf, append(append([]byte{}, goodDaemon...), "syslog_tcp = "+taken.Addr().String()+"\n"...), 0o644)
	for round := range rounds(3) {
		if out, errOut, code := e.cli("reload"); code == 0 || !strings.Contains(errOut, "cannot listen") {
			t.Fatalf("a reload that cannot listen on a taken port: exit %d %s %s", code, out, errOut)
		}
		if _, ok := nftSet(t, "sshd-v4")["203.0.113.130"]; !ok {
			t.Fatalf("the failed reload removed sshd's ban from the kernel:\n%s", d.stderr)
		}
		if got := strings.TrimSpace(e.mustCLI("get", "sshd", "banip")); got != "203.0.113.130" {
			t.Fatalf("after the failed reload, sshd's bans are %q", got)
		}
		e.waitFor("journalctl to be started again", func() bool {
			b, _ := os.ReadFile(args)
			return len(b) > 0 && (round > 0 || strings.Count(string(b), "\n") >= 2)
		}, d)
		b, _ := os.ReadFile(args)
		calls := strings.Split(strings.TrimSpace(string(b)), "\n")
		if last := calls[len(calls)-1]; !strings.Contains(last, "--after-cursor=c0") {
			t.Fatalf("after the failed reload journalctl was started with %q, not after the saved cursor", last)
		}
		os.Remove(args)
	}
	// The store still holds it: a restart on the good configuration restores it.
	d.stop(t)
	os.WriteFile(conf, good, 0o644)
	os.WriteFile(daemonConf, goodDaemon, 0o644)
	if out, err := exec.Command("nft", "delete", "table", "inet", "portcullis").CombinedOutput(); err != nil {
		t.Fatalf("nft delete table: %v %s", err, out)
	}
	d = e.start()
	e.waitBanned("the ban restored from the store after a restart", "sshd-v4", "203.0.113.130", d)
	d.stop(t)
}

// A watched log path replaced by a FIFO, a symlink to /dev/zero or a directory wedges nothing:
// the daemon warns once, reloads, answers and stops on SIGTERM, and reads the path again once it
// is a regular file.
func TestHostileLogPathKinds(t *testing.T) {
	netnstest.Require(t)
	for _, kind := range []string{"fifo", "devzero", "directory"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, systemJails)
			d := e.start()
			os.Remove(e.log)
			switch kind {
			case "fifo":
				if err := syscall.Mkfifo(e.log, 0o600); err != nil {
					t.Fatal(err)
				}
			case "devzero":
				os.Symlink("/dev/zero", e.log)
			case "directory":
				os.Mkdir(e.log, 0o755)
			}
			e.waitFor("the refusal to be logged", func() bool { return strings.Contains(d.stderr.String(), "cannot open log file") }, d)
			e.mustCLI("reload")
			e.mustCLI("status", "sshd")
			if n := strings.Count(d.stderr.String(), "cannot open log file"); n > 2 {
				t.Errorf("%d warnings about the same path (one per generation expected)", n)
			}
			os.Remove(e.log)
			os.WriteFile(e.log, nil, 0o644)
			e.appendLog(failures("203.0.113.140", 3)...)
			e.waitBanned("a ban once the path is a regular file again", "sshd-v4", "203.0.113.140", d)
			d.stop(t)
		})
	}
}

// syslogEnv is a daemon whose jails read the network syslog input; daemonConf is added to
// portcullis.conf.
func syslogEnv(t *testing.T, jails, daemonConf string) *env {
	t.Helper()
	e := newEnv(t, jails)
	conf := fmt.Sprintf("[Definition]\nsocket = %s\n%s", e.socket, daemonConf)
	if err := os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// syslogFailures writes n RFC 3164 sshd failures of addr to w, one per write, each ended by end
// (a newline on a stream; nothing for datagrams).
func syslogFailures(w io.Writer, addr string, n, pid int, end string) {
	for i := range n {
		fmt.Fprintf(w, "<38>%s web1 sshd[%d]: Failed password for root from %s port 22 ssh2%s", stamp(), pid+i, addr, end)
	}
}

// metric reads one value from the daemon's /metrics.
func (e *env) metric(name string) float64 {
	e.t.Helper()
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// One sender holding more idle TCP connections than the server has slots takes only its own
// share: another sender's failures still arrive and ban, and the refusals are counted.
func TestHostileSyslogConnectionFlood(t *testing.T) {
	netnstest.Require(t)
	tcp := freeAddr(t, "tcp")
	e := syslogEnv(t, sshdOnly+"\nlogpath = syslog\n", "syslog_tcp = "+tcp+"\n")
	d := e.start()
	var hog []net.Conn
	defer func() {
		for _, c := range hog {
			c.Close()
		}
	}()
	for range 1100 {
		c, err := net.Dial("tcp", tcp)
		if err != nil {
			t.Fatal(err)
		}
		hog = append(hog, c)
	}
	e.waitFor("the flood's refusals to be counted", func() bool {
		return e.metric("portcullis_syslog_refused_connections_total") >= 1100-16
	}, d)
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := dialer.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	syslogFailures(c, "203.0.113.150", 3, 700, "\n")
	c.Close()
	e.waitBanned("the other sender's failures to ban", "sshd-v4", "203.0.113.150", d)
	if n := strings.Count(d.stderr.String(), "refusing connections"); n > 2 {
		t.Errorf("%d warnings for the refusals; want them rate-limited", n)
	}
	d.stop(t)
}

// A UDP datagram's source address proves nothing: a datagram "from" an allowed sender network
// (here an address the test gives itself, as a forger on the path would) is read by a jail that
// trusts that network — the documented exception — but never by a jail that reads only senders
// proved by a client certificate, which reads the same failures over TLS from a certified sender.
func TestHostileSyslogForgedUDPSource(t *testing.T) {
	netnstest.Require(t)
	if out, err := exec.Command("ip", "addr", "add", "10.1.2.3/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}
	defer exec.Command("ip", "addr", "del", "10.1.2.3/32", "dev", "lo").Run()
	pki := testpki.New(t)
	udp, tls := freeAddr(t, "udp"), freeAddr(t, "tcp")
	e := syslogEnv(t, `
[DEFAULT]
maxretry = 3
bantime = 1h
filter = sshd
logpath = syslog
[by-network]
enabled = true
syslog_host = 10.1.0.0/16
[by-cert]
enabled = true
syslog_host = cert:web1.example
`, fmt.Sprintf("syslog_udp = %s\nsyslog_tls = %s\nsyslog_tls_cert = %s\nsyslog_tls_key = %s\nsyslog_tls_client_ca = %s\nsyslog_allow = 10.0.0.0/8 127.0.0.0/8\n",
		udp, tls, pki.ServerCert, pki.ServerKey, pki.CAFile))
	d := e.start()
	u, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("10.1.2.3")}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(udp)))
	if err != nil {
		t.Fatal(err)
	}
	syslogFailures(u, "203.0.113.77", 5, 800, "") // a datagram is one message
	u.Close()
	e.waitBanned("the forged datagrams to ban in the jail that trusts the network", "by-network-v4", "203.0.113.77", d)
	if _, ok := nftSet(t, "by-cert-v4")["203.0.113.77"]; ok {
		t.Fatal("forged UDP datagrams banned in a jail that reads only certified senders")
	}
	c, err := cryptotls.Dial("tcp", tls, pki.Client("web1.example"))
	if err != nil {
		t.Fatal(err)
	}
	syslogFailures(c, "203.0.113.78", 3, 900, "\n")
	c.Close()
	e.waitBanned("the certified sender's failures to ban", "by-cert-v4", "203.0.113.78", d)
	d.stop(t)
}

// A jail none of whose log files exists, with no journal to read instead, watches nothing: the
// daemon refuses to start, naming it, as fail2ban does; with skip_if_nologs it starts without it.
func TestHostileJailWithoutLogs(t *testing.T) {
	netnstest.Require(t)
	jails := sshdOnly + "\nlogpath = @DIR@/auth.log\n[gone]\nenabled = true\nfilter = sshd\nbackend = polling\nlogpath = @DIR@/gone/*.log\n"
	e := newEnv(t, jails)
	// A daemon that starts anyway is killed after a while, so the test fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "run", "-c", e.cfg, "--socket", e.socket, "--db", e.db, "--metrics", "off")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "jail gone: no log file matches "+e.dir+"/gone/*.log") {
		t.Fatalf("want a refusal naming the jail and its logpath, got %v:\n%s", err, out)
	}
	conf := filepath.Join(e.cfg, "jail.conf")
	b, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(b, "skip_if_nologs = true\n"...), 0o644)
	d := e.start()
	if st := e.mustCLI("status"); strings.Contains(st, "gone") || !strings.Contains(d.stderr.String(), "skip_if_nologs") {
		t.Fatalf("status %q; log:\n%s", st, d.stderr)
	}
	e.appendLog(failures("203.0.113.160", 3)...)
	e.waitBanned("the other jail to ban", "sshd-v4", "203.0.113.160", d)
	d.stop(t)
}

// status shows what a jail really reads — the files its glob matches, the journal it fell back
// to — and a reload keeps Total banned and portcullis_bans_total, as fail2ban keeps its totals.
func TestHostileStatusTruthAcrossReload(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, sshdOnly+"\nlogpath = @DIR@/auth*.log\n[fb]\nenabled = true\nfilter = sshd\nlogpath = @DIR@/missing.log\n")
	fake := filepath.Join(e.dir, "journalctl")
	os.WriteFile(fake, []byte("#!/bin/sh\nexec sleep 3600\n"), 0o755)
	os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(fmt.Sprintf("[Definition]\nsocket = %s\njournalctl = %s\n", e.socket, fake)), 0o644)
	d := e.start()
	e.appendLog(failures("203.0.113.170", 3)...)
	e.waitBanned("the ban", "sshd-v4", "203.0.113.170", d)
	st := e.mustCLI("status", "sshd")
	if !strings.Contains(st, "File list:\t"+e.log) || strings.Contains(st, "auth*.log") || !strings.Contains(st, "Total banned:\t1") {
		t.Fatalf("status sshd before reload:\n%s", st)
	}
	if fb := e.mustCLI("status", "fb"); !strings.Contains(fb, "journal: _SYSTEMD_UNIT=ssh.service + _COMM=sshd") || strings.Contains(fb, "missing.log") {
		t.Fatalf("status of the jail that fell back to the journal:\n%s", fb)
	}
	before := e.metric(`portcullis_bans_total{jail="sshd"}`)
	e.mustCLI("reload")
	st = e.mustCLI("status", "sshd")
	if !strings.Contains(st, "Total banned:\t1") || !strings.Contains(st, "Total failed:\t3") {
		t.Fatalf("status sshd after reload:\n%s", st)
	}
	if after := e.metric(`portcullis_bans_total{jail="sshd"}`); before != 1 || after != 1 {
		t.Fatalf("portcullis_bans_total before reload %v, after %v; want 1 and 1", before, after)
	}
	d.stop(t)
}

// cpuHog keeps every core busy (as two `yes > /dev/null` would) until the test ends: a test that
// passes only on an idle machine is a broken test or a broken daemon.
func cpuHog(t *testing.T) {
	t.Helper()
	for range runtime.NumCPU() {
		cmd := exec.Command("yes") // output to /dev/null; killed itself, no shell left behind
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
}

// appendFailures writes n failure lines of distinct addresses in one go.
func (e *env) appendFailures(from, n int) {
	e.t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "%s host sshd[%d]: Failed password for root from 198.18.%d.%d port 22 ssh2\n", stamp(), i, i/250%250, i%250+1)
	}
	f, err := os.OpenFile(e.log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		e.t.Fatal(err)
	}
}

var totalsRE = regexp.MustCompile(`msg="jail totals" jail=sshd failures=(\d+)`)

// A daemon stopped while its queue is full of unread lines saves the position of the last line
// it processed: over repeated stops under a CPU hog, every failure is counted exactly once.
func TestHostileStopUnderBacklog(t *testing.T) {
	netnstest.Require(t)
	cpuHog(t)
	e := newEnv(t, strings.Replace(systemJails, "maxretry = 3", "maxretry = 1000000", 1))
	first := e.start() // fixes the start: the file is read from its end
	first.stop(t)
	const batch = 30_000
	written, counted := 0, 0
	for range rounds(20) {
		e.appendFailures(written, batch)
		written += batch
		d := e.start()
		d.stop(t) // as soon as it answers: the backlog is still being read
		m := totalsRE.FindStringSubmatch(d.stderr.String())
		if m == nil {
			t.Fatalf("no totals in the daemon log:\n%s", d.stderr)
		}
		n, _ := strconv.Atoi(m[1])
		counted += n
	}
	d := e.start()
	e.waitFailures(fmt.Sprintf("the last %d failures", written-counted), "sshd", written-counted, d)
	d.stop(t)
	t.Logf("%d stops under backlog: %d failures, each counted once", rounds(20), written)
}

// Reloads in a storm — several at once, and SIGHUPs among them — while lines arrive, lose no line,
// count none twice, and keep every ban.
func TestHostileReloadStorm(t *testing.T) {
	netnstest.Require(t)
	cpuHog(t)
	e := newEnv(t, strings.Replace(systemJails, "maxretry = 3", "maxretry = 1000000", 1))
	d := e.start()
	e.mustCLI("set", "sshd", "banip", "203.0.113.180")
	e.waitBanned("the manual ban", "sshd-v4", "203.0.113.180", d)
	written := 0
	for range rounds(5) {
		e.appendFailures(written, 20_000)
		written += 20_000
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, errOut, code := e.cli("reload"); code != 0 {
					t.Errorf("reload: exit %d %s %s", code, out, errOut)
				}
			}()
		}
		d.cmd.Process.Signal(syscall.SIGHUP)
		wg.Wait()
	}
	e.waitFailures(fmt.Sprintf("all %d failures, once each", written), "sshd", written, d)
	if _, ok := nftSet(t, "sshd-v4")["203.0.113.180"]; !ok {
		t.Fatal("the ban was lost in the reloads")
	}
	d.stop(t)
}

// A SIGTERM the moment the control socket appears (a service manager stopping a daemon that is
// still starting) is a clean stop: the daemon saves its progress and exits 0, never dies of the
// signal.
func TestHostileSigtermWhileStarting(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails)
	for round := range rounds(20) {
		os.Remove(e.socket)
		var stderr syncBuffer
		cmd := exec.Command(binary(t), "run", "-c", e.cfg, "--socket", e.socket, "--db", e.db, "--metrics", "off")
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(e.socket); err == nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil || !strings.Contains(stderr.String(), "msg=stopped") {
			t.Fatalf("round %d: SIGTERM while starting: %v\n%s", round, err, stderr.String())
		}
	}
}
