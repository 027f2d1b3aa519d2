package main

// System tests: the real binary, a real log file, real nftables in a private network namespace
// (netnstest re-runs this test binary under `unshare -n`), read back with `nft -j` as an operator
// would, a real Pebble folder and the real control socket.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/netnstest"
	"github.com/portcullis/portcullis/internal/testconf"
)

func TestMain(m *testing.M) {
	if netnstest.Outside() {
		// The namespace the tests run in has only loopback: fetch fail2ban's package (for
		// TestSystemStockFail2banConfig) while the host's network is still there. A failure here
		// is reported by the test itself, which tries again.
		_ = f2bcorpus.Ensure()
	}
	netnstest.MainWith(m, func() {
		if binPath != "" {
			os.RemoveAll(filepath.Dir(binPath))
		}
	})
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portcullis-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "portcullis")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer collects a daemon's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	wrap    []string // a command prefix for the daemon (nsenter into a mount namespace)
	extra   []string // more arguments for run
	t       *testing.T
	dir     string
	cfg     string
	log     string
	socket  string
	db      string
	metrics string
}

func newEnv(t *testing.T, jailConf string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, cfg: filepath.Join(dir, "etc"), log: filepath.Join(dir, "auth.log"),
		socket: filepath.Join(dir, "run", "p.sock"), db: filepath.Join(dir, "db")}
	testconf.Write(t, e.cfg, strings.ReplaceAll(jailConf, "@DIR@", dir))
	daemonConf := fmt.Sprintf("[Definition]\nsocket = %s\n", e.socket)
	if err := os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(daemonConf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{e.log, filepath.Join(dir, "quiet.log")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.metrics = freeAddr(t, "tcp")
	return e
}

// freeAddr is a loopback address with a port nobody listens on at the moment of asking.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type daemon struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func (e *env) start() *daemon {
	e.t.Helper()
	d := e.launch()
	e.waitFor("the control socket to answer", func() bool {
		_, _, code := e.cli("status")
		return code == 0
	}, d)
	return d
}

// launch starts the daemon without waiting for it.
func (e *env) launch() *daemon {
	e.t.Helper()
	d := &daemon{stderr: &syncBuffer{}, done: make(chan error, 1)}
	args := append(append([]string{}, e.wrap...), binary(e.t), "run", "-c", e.cfg, "--socket", e.socket, "--db", e.db,
		"--metrics", e.metrics, "--poll", "50ms", "--check-every", "200ms")
	args = append(args, e.extra...)
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	e.t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("daemon exited with %v:\n%s", err, d.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not stop on SIGTERM:\n%s", d.stderr)
	}
}

// waitFor polls cond for up to 15 s. Timing is not what is tested: a generous bound only keeps a
// broken daemon from hanging the suite.
func (e *env) waitFor(what string, cond func() bool, d *daemon) {
	e.t.Helper()
	e.waitUpTo(15*time.Second, what, cond, d)
}

// waitUpTo is waitFor with another bound.
func (e *env) waitUpTo(limit time.Duration, what string, cond func() bool, d *daemon) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		if d != nil && d.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := ""
	if d != nil {
		log = d.stderr.String()
	}
	e.t.Fatalf("gave up waiting for %s; daemon log:\n%s", what, log)
}

// waitBanned waits for addr to be an element of the kernel set.
// waitFailures waits until `status JAIL` reports exactly n failures.
func (e *env) waitFailures(what, jail string, n int, d *daemon) {
	e.t.Helper()
	want := fmt.Sprintf("Total failed:\t%d\n", n)
	e.waitFor(what, func() bool { out, _, _ := e.cli("status", jail); return strings.Contains(out, want) }, d)
}

func (e *env) waitBanned(what, set, addr string, d *daemon) {
	e.t.Helper()
	e.waitFor(what, func() bool { _, ok := nftSet(e.t, set)[addr]; return ok }, d)
}

func (e *env) cli(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(binary(e.t), append(args, "--socket", e.socket)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// mustCLI runs the client and fails the test unless it exits 0; it returns the client's stdout.
func (e *env) mustCLI(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.cli(args...)
	if code != 0 {
		e.t.Fatalf("portcullis %s: exit %d %q %q", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

func (e *env) appendLog(lines ...string) {
	e.t.Helper()
	f, err := os.OpenFile(e.log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := io.WriteString(f, l+"\n"); err != nil {
			e.t.Fatal(err)
		}
	}
}

func stamp() string { return time.Now().Format(time.Stamp) }

// nftSet is what the kernel holds for one jail and family ("sshd-v4"): its addresses' set and
// its networks' ("sshd-v4-net"), element -> timeout; nil when neither set exists.
func nftSet(t *testing.T, set string) map[string]time.Duration {
	out := netnstest.NFTSet(t, "portcullis", set)
	for k, v := range netnstest.NFTSet(t, "portcullis", set+"-net") {
		if out == nil {
			out = map[string]time.Duration{}
		}
		out[k] = v
	}
	return out
}

func failures(addr string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("%s testhost sshd[%d]: Failed password for invalid user admin%d from %s port %d ssh2", stamp(), 4000+i, i, addr, 50000+i))
	}
	return out
}

// sshdOnly starts a configuration of one sshd jail, its source to be added.
const sshdOnly = `
[DEFAULT]
maxretry = 3
bantime = 1h
[sshd]
enabled = true
port = ssh`

const systemJails = `
[DEFAULT]
ignoreip = 127.0.0.1/8 192.0.2.0/24
maxretry = 3
findtime = 10m
bantime = 1h

[sshd]
enabled = true
port = ssh
logpath = @DIR@/auth.log

[waiting]
enabled = true
filter = sshd
# A second jail on a file nothing writes to, so reloads and status see more than one.
backend = polling
logpath = @DIR@/quiet.log
`

func TestSystemTailToNftables(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails)
	d := e.start()

	out, _, code := e.cli("status")
	if code != 0 || !strings.Contains(out, "sshd") || !strings.Contains(out, "waiting") {
		t.Fatalf("status: %q (exit %d)", out, code)
	}
	// The client finds the socket through the config folder's portcullis.conf.
	byConf, err := exec.Command(binary(t), "status", "-c", e.cfg).CombinedOutput()
	if err != nil || string(byConf) != out {
		t.Fatalf("status -c DIR: %v %q", err, byConf)
	}

	// Two failures do not ban; the third does, with the kernel timeout equal to bantime.
	e.appendLog(failures("203.0.113.5", 2)...)
	e.waitFailures("two failures to be counted", "sshd", 2, d)
	if _, ok := nftSet(t, "sshd-v4")["203.0.113.5"]; ok {
		t.Fatal("banned after two failures with maxretry = 3")
	}
	e.appendLog(failures("203.0.113.5", 1)...)
	e.waitBanned("203.0.113.5 in sshd-v4", "sshd-v4", "203.0.113.5", d)
	if to := nftSet(t, "sshd-v4")["203.0.113.5"]; to < 59*time.Minute || to > time.Hour {
		t.Fatalf("kernel timeout %v, want bantime (1h)", to)
	}

	// IPv6, plus garbage the daemon must count and skip, in the same append.
	junk := []string{"\x00\x01\x02\x03 binary garbage \xff\xfe", strings.Repeat("A", 70*1024)}
	e.appendLog(append(junk, failures("2001:db8::5", 3)...)...)
	e.waitBanned("2001:db8::5 in sshd-v6", "sshd-v6", "2001:db8::5", d)

	// Metrics show what was read, matched, skipped and banned.
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	src := filepath.Join(e.dir, "auth.log")
	for _, want := range []string{
		fmt.Sprintf(`portcullis_lines_read_total{source=%q} 8`, src),
		fmt.Sprintf(`portcullis_lines_skipped_total{source=%q,reason="binary"} 1`, src),
		fmt.Sprintf(`portcullis_lines_skipped_total{source=%q,reason="overlong"} 1`, src),
		`portcullis_failures_total{jail="sshd"} 6`,
		`portcullis_bans_total{jail="sshd"} 2`,
		`portcullis_banned{jail="sshd"} 2`,
		fmt.Sprintf(`portcullis_decision_lag_seconds_count{source=%q}`, src),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Protected addresses are refused with a reason, from the CLI too.
	_, stderr, code := e.cli("ban", "sshd", "127.0.0.1")
	if code == 0 || !strings.Contains(stderr, "loopback") {
		t.Errorf("ban of loopback: exit %d, %q", code, stderr)
	}
	_, stderr, code = e.cli("ban", "sshd", "192.0.2.50")
	if code == 0 || !strings.Contains(stderr, "ignoreip") {
		t.Errorf("ban of an ignoreip address: exit %d, %q", code, stderr)
	}
	if _, ok := nftSet(t, "sshd-v4")["192.0.2.50"]; ok {
		t.Fatal("a protected address reached the firewall")
	}
	// A manual ban is in the set when the command returns.
	e.mustCLI("ban", "sshd", "198.51.100.77")
	if _, ok := nftSet(t, "sshd-v4")["198.51.100.77"]; !ok {
		t.Fatal("manual ban not in the set when the CLI returned")
	}

	// unban without a jail removes the address from every jail, at once.
	if out := e.mustCLI("unban", "203.0.113.5"); !strings.Contains(out, "unbanned in sshd") {
		t.Fatalf("unban: %q", out)
	}
	if _, ok := nftSet(t, "sshd-v4")["203.0.113.5"]; ok {
		t.Fatal("203.0.113.5 still in the set after unban")
	}
	_, stderr, code = e.cli("unban", "sshd", "203.0.113.99")
	if code == 0 || !strings.Contains(stderr, "not banned") {
		t.Errorf("unban of an address that is not banned: exit %d %q", code, stderr)
	}
	out, _, _ = e.cli("banned", "--json")
	var banned []struct{ Jail, Prefix string }
	if err := json.Unmarshal([]byte(out), &banned); err != nil || len(banned) != 2 {
		t.Fatalf("banned --json: %v %q", err, out)
	}
	_, stderr, code = e.cli("frobnicate")
	if code == 0 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, stderr)
	}

	// Someone flushes the ruleset under the running daemon: the table comes back with the bans.
	if out, err := exec.Command("nft", "flush", "ruleset").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	e.waitBanned("the table to be rebuilt after nft flush ruleset", "sshd-v6", "2001:db8::5", d)

	// Restart with the ruleset flushed while the daemon was down: the bans come back from Pebble,
	// with their remaining time.
	d.stop(t)
	if out, err := exec.Command("nft", "flush", "ruleset").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	d = e.start()
	set6 := nftSet(t, "sshd-v6")
	if to, ok := set6["2001:db8::5"]; !ok || to > time.Hour || to < 55*time.Minute {
		t.Fatalf("after restart sshd-v6 = %v; want 2001:db8::5 with its remaining time", set6)
	}
	if _, ok := nftSet(t, "sshd-v4")["198.51.100.77"]; !ok {
		t.Fatal("the manual ban did not survive the restart")
	}
	if _, ok := nftSet(t, "sshd-v4")["203.0.113.5"]; ok {
		t.Fatal("an unbanned address came back after restart")
	}

	// reload: a broken configuration is refused and the running one stays.
	conf := filepath.Join(e.cfg, "jail.conf")
	good, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(good, []byte("\n[broken]\nenabled = true\nmaxretry = lots\n")...), 0o644)
	_, stderr, code = e.cli("reload")
	if code == 0 || !strings.Contains(stderr, "maxretry") {
		t.Fatalf("reload of a broken config: exit %d %q", code, stderr)
	}
	os.WriteFile(conf, []byte(strings.Replace(string(good), "[waiting]\nenabled = true", "[waiting]\nenabled = false", 1)), 0o644)
	e.mustCLI("reload")
	out, _, _ = e.cli("status")
	if strings.Contains(out, "waiting") {
		t.Fatalf("after reload the disabled jail is still listed: %q", out)
	}
	if _, ok := nftSet(t, "sshd-v6")["2001:db8::5"]; !ok {
		t.Fatal("bans lost across reload")
	}
	// unban --all lifts every ban, in the store and the kernel.
	if out := e.mustCLI("unban", "--all"); !strings.Contains(out, "unbanned in sshd") {
		t.Fatalf("unban --all: %q", out)
	}
	if got := nftSet(t, "sshd-v4"); len(got) != 0 {
		t.Fatalf("sshd-v4 after unban --all: %v", got)
	}
	if got := nftSet(t, "sshd-v6"); len(got) != 0 {
		t.Fatalf("sshd-v6 after unban --all: %v", got)
	}
	// SIGHUP reloads too.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitFor("SIGHUP to reload", func() bool {
		return strings.Count(d.stderr.String(), "configuration reloaded") == 2
	}, d)
	// The daemon still bans after the reloads.
	e.appendLog(failures("203.0.113.6", 3)...)
	e.waitBanned("203.0.113.6 in sshd-v4 after reload", "sshd-v4", "203.0.113.6", d)
	d.stop(t)
}

func TestSystemShortBanExpires(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, strings.Replace(systemJails, "bantime = 1h", "bantime = 2", 1))
	d := e.start()
	e.appendLog(failures("203.0.113.8", 3)...)
	e.waitBanned("the ban", "sshd-v4", "203.0.113.8", d)
	e.waitFor("the ban to expire in the daemon and the kernel", func() bool {
		out, _, _ := e.cli("banned", "sshd")
		_, inSet := nftSet(t, "sshd-v4")["203.0.113.8"]
		return !strings.Contains(out, "203.0.113.8") && !inSet
	}, d)
	d.stop(t)
}

func TestMalformedConfigExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[sshd]\nenabled = true\nbantime = soon\nlogpath = /x.log\n"), 0o644)
	cmd := exec.Command(binary(t), "run", "-c", dir, "--socket", filepath.Join(dir, "s"), "--db", filepath.Join(dir, "db"), "--metrics", "off")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v\n%s", err, out)
	}
	for _, want := range []string{filepath.Join(dir, "jail.conf") + ":3: bantime:", `no filter "sshd"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); err == nil {
		t.Error("a broken config still created the store")
	}
}

// The promise to a fail2ban user: point portcullis at an existing /etc/fail2ban and it bans.
// Debian's own fail2ban configuration (jail.conf, paths-debian.conf, jail.d, fail2ban's sshd.conf
// with its prefregex and multi-line helpers) runs unmodified; only jail.local points the sshd jail
// at a test log, and fail2ban.local its logtarget and dbfile into the test's folder. The first
// start takes over the bans in fail2ban's database (written by fail2ban's own code) into
// nftables, and logs where fail2ban.conf says.
func TestSystemStockFail2banConfig(t *testing.T) {
	netnstest.Require(t)
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("cannot fetch Debian's fail2ban package: %v", err)
	}
	dir := t.TempDir()
	etc := filepath.Join(dir, "fail2ban")
	if err := f2bcorpus.CopyEtc(etc); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, nil, 0o644)
	os.WriteFile(filepath.Join(etc, "jail.local"), []byte(fmt.Sprintf("[sshd]\nbackend = auto\nlogpath = %s\nmaxretry = 2\nbantime = 1h\n", log)), 0o644)
	f2bLog, f2bDB := filepath.Join(dir, "fail2ban.log"), filepath.Join(dir, "fail2ban.sqlite3")
	os.WriteFile(filepath.Join(etc, "fail2ban.local"), []byte(fmt.Sprintf("[Definition]\nlogtarget = %s\nloglevel = INFO\ndbfile = %s\n", f2bLog, f2bDB)), 0o644)
	now := time.Now().Unix()
	if err := f2bcorpus.WriteDB(f2bDB, []f2bcorpus.DBBan{
		{Jail: "sshd", IP: "203.0.113.41", Time: now - 60, BanTime: 3600, BanCount: 1},
		{Jail: "sshd", IP: "2001:db8::41", Time: now - 60, BanTime: -1, BanCount: 2},
	}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, cfg: etc, log: log, socket: filepath.Join(dir, "p.sock"), db: filepath.Join(dir, "db"), metrics: freeAddr(t, "tcp")}
	d := e.start()
	e.waitBanned("fail2ban's IPv4 ban taken over", "sshd-v4", "203.0.113.41", d)
	e.waitBanned("fail2ban's permanent IPv6 ban taken over", "sshd-v6", "2001:db8::41", d)
	if b, _ := os.ReadFile(f2bLog); !strings.Contains(string(b), "took over fail2ban's bans") || !strings.Contains(string(b), "portcullis started") {
		t.Errorf("fail2ban.conf's logtarget did not get the daemon's log:\n%s\nstderr:\n%s", b, d.stderr)
	}
	e.appendLog(
		stamp()+" host sshd[901]: Invalid user oracle from 203.0.113.40 port 40001",
		stamp()+" host sshd[902]: Failed password for invalid user admin from 203.0.113.40 port 40002 ssh2",
	)
	e.waitBanned("203.0.113.40 banned through fail2ban's own sshd.conf", "sshd-v4", "203.0.113.40", d)
	d.stop(t)
}

// A central collector: sshd lines arrive as syslog over UDP and TCP from other hosts, a jail with
// logpath = syslog and syslog_program = sshd bans them.
func TestSystemSyslogToNftables(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, sshdOnly+`
logpath = syslog
syslog_program = sshd
`)
	udp, tcp := freeAddr(t, "udp"), freeAddr(t, "tcp")
	conf := fmt.Sprintf("[Definition]\nsocket = %s\nsyslog_udp = %s\nsyslog_tcp = %s\n", e.socket, udp, tcp)
	os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(conf), 0o644)
	d := e.start()
	u, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		fmt.Fprintf(u, "<38>%s web%d sshd[%d]: Failed password for root from 203.0.113.50 port 22 ssh2", stamp(), i, 100+i)
	}
	// Another program's message with the same text is not sshd's.
	fmt.Fprintf(u, "<38>%s web9 app[1]: Failed password for root from 203.0.113.51 port 22 ssh2", stamp())
	u.Close()
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("<38>1 %s web3 sshd 300 - - Failed password for root from 203.0.113.50 port 22 ssh2", time.Now().Format(time.RFC3339))
	fmt.Fprintf(c, "%d %s", len(msg), msg)
	c.Close()
	e.waitBanned("203.0.113.50 banned from syslog input", "sshd-v4", "203.0.113.50", d)
	if _, ok := nftSet(t, "sshd-v4")["203.0.113.51"]; ok {
		t.Fatal("a message of another program was counted")
	}
	out, _, _ := e.cli("status", "sshd")
	if !strings.Contains(out, "syslog") {
		t.Errorf("status does not show the syslog source: %s", out)
	}
	d.stop(t)
}

// Nothing written while the daemon is down is lost: a restart continues each file where the last
// run stopped (positions in Pebble), and a reload where the previous configuration stopped.
func TestSystemResumesAfterRestart(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails)
	d := e.start()
	e.appendLog(failures("203.0.113.60", 1)...)
	e.waitFailures("the first failure", "sshd", 1, d)
	d.stop(t)
	// Written while portcullis was down: two more failures. With the one counted before the
	// restart (saved with the file position) they make maxretry = 3.
	e.appendLog(failures("203.0.113.60", 2)...)
	d = e.start()
	e.waitBanned("203.0.113.60 banned by one failure before the restart and two written while the daemon was down", "sshd-v4", "203.0.113.60", d)
	if !strings.Contains(d.stderr.String(), "resuming log file") || !strings.Contains(d.stderr.String(), "failure counts taken up") {
		t.Errorf("no resume or no counts taken up logged:\n%s", d.stderr)
	}
	// Lines already read are not read again: the failure before the restart is not in this run's count.
	out, _, _ := e.cli("status", "sshd")
	if !strings.Contains(out, "Total failed:\t2") {
		t.Errorf("status after restart: %s (want exactly the 2 new failures)", out)
	}
	// A reload carries the counts too: two failures before it and one after ban.
	e.appendLog(failures("203.0.113.61", 2)...)
	e.waitFailures("two failures of .61", "sshd", 4, d)
	e.mustCLI("reload")
	e.appendLog(failures("203.0.113.61", 1)...)
	e.waitBanned("203.0.113.61 banned across a reload", "sshd-v4", "203.0.113.61", d)
	d.stop(t)
}

// backend = systemd: the jail follows journalctl (a stand-in printing journalctl's JSON here; CI has
// no journal) with the filter's journalmatch, bans, and a restart resumes after the saved cursor.
func TestSystemJournalBackend(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, sshdOnly+`
backend = systemd
`)
	var entries []string
	for i := 0; i < 3; i++ {
		entries = append(entries, fmt.Sprintf(`{"__CURSOR":"c%d","__REALTIME_TIMESTAMP":"%d","_HOSTNAME":"web1","_COMM":"sshd","_PID":"%d","MESSAGE":"Failed password for invalid user admin from 203.0.113.70 port %d ssh2"}`,
			i, time.Now().UnixMicro(), 100+i, 40000+i))
	}
	data := filepath.Join(e.dir, "journal.json")
	os.WriteFile(data, []byte(strings.Join(entries, "\n")+"\n"), 0o644)
	args := filepath.Join(e.dir, "args")
	fake := filepath.Join(e.dir, "journalctl")
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\" >> "+args+"\ncase \"$*\" in *after-cursor*) exec sleep 3600;; esac\ncat "+data+"\nexec sleep 3600\n"), 0o755)
	conf := fmt.Sprintf("[Definition]\nsocket = %s\njournalctl = %s\n", e.socket, fake)
	os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(conf), 0o644)
	d := e.start()
	e.waitBanned("203.0.113.70 banned from the journal", "sshd-v4", "203.0.113.70", d)
	out, _, _ := e.cli("status", "sshd")
	if !strings.Contains(out, "journal: _SYSTEMD_UNIT=ssh.service + _COMM=sshd") {
		t.Errorf("status does not show the journal source: %s", out)
	}
	d.stop(t)
	d = e.start()
	e.waitFor("journalctl restarted after the saved cursor", func() bool {
		b, _ := os.ReadFile(args)
		return strings.Contains(string(b), "--after-cursor=c2")
	}, d)
	b, _ := os.ReadFile(args)
	if first := strings.SplitN(string(b), "\n", 2)[0]; !strings.Contains(first, "--since=@") || !strings.Contains(first, "_SYSTEMD_UNIT=ssh.service + _COMM=sshd") {
		t.Errorf("first journalctl call: %q", first)
	}
	d.stop(t)
}

// banprefix6 = 64: three failures from three addresses of one /64 ban the /64 (an interval
// element in the kernel set), and a fourth address of it is then dropped by that element: a real
// TCP connection to port 22, from and to an address of that /64 on this namespace's loopback.
func TestSystemBanPrefix(t *testing.T) {
	netnstest.Require(t)
	// ignoreself = false: the test's own address is inside the /64, and with ignoreself only the
	// attacking address would be banned, never a network holding an address of this machine.
	e := newEnv(t, strings.Replace(systemJails, "[sshd]\n", "[sshd]\nbanprefix6 = 64\nbanprefix4 = 24\nignoreself = false\n", 1))
	local := "2001:db8:77:1::5"
	var connects func() bool // nil: no traffic check
	// replace: a run before this one (go test -count) left it, or did not.
	if out, err := exec.Command("ip", "-6", "addr", "replace", local+"/128", "dev", "lo", "nodad").CombinedOutput(); err != nil {
		t.Logf("no traffic check (cannot add %s to lo: %v %s)", local, err, out)
	} else {
		t.Cleanup(func() { exec.Command("ip", "-6", "addr", "del", local+"/128", "dev", "lo").Run() })
		ln, err := net.Listen("tcp", "["+local+"]:22")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		connects = func() bool {
			c, err := net.DialTimeout("tcp", "["+local+"]:22", 500*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		}
		if !connects() {
			t.Fatal("no connection before any ban")
		}
	}
	d := e.start()
	var lines []string
	for _, a := range []string{"2001:db8:77:1::1", "2001:db8:77:1:8000::2", "2001:db8:77:1::ffff"} {
		lines = append(lines, failures(a, 1)...)
	}
	e.appendLog(lines...)
	e.waitBanned("the /64 banned", "sshd-v6", "2001:db8:77:1::/64", d)
	out, _, _ := e.cli("banned", "sshd")
	if !strings.Contains(out, "2001:db8:77:1::/64") {
		t.Errorf("banned: %s", out)
	}
	if connects != nil && connects() {
		t.Error("a connection from another address of the banned /64 got through")
	}
	// Unbanning one address of it lifts the network ban.
	e.mustCLI("unban", "sshd", "2001:db8:77:1::42")
	e.waitFor("the /64 unbanned", func() bool { return len(nftSet(t, "sshd-v6")) == 0 }, d)
	if connects != nil && !connects() {
		t.Error("no connection after the unban")
	}
	d.stop(t)
}

// banprefix6_escalate = 56:2: the second banned /64 of one /56 bans the /56; the kernel set then
// holds the /56 alone (an interval set holds no overlapping elements: the /64s go in the same
// transaction).
func TestSystemBanPrefixEscalation(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, strings.Replace(systemJails, "[sshd]\n", "[sshd]\nbanprefix6 = 64\nbanprefix6_escalate = 56:2\n", 1))
	d := e.start()
	var lines []string
	for _, a := range []string{"2001:db8:5:100::1", "2001:db8:5:100::2", "2001:db8:5:100::3"} {
		lines = append(lines, failures(a, 1)...)
	}
	e.appendLog(lines...)
	e.waitBanned("the first /64", "sshd-v6", "2001:db8:5:100::/64", d)
	lines = nil
	for _, a := range []string{"2001:db8:5:1ff::1", "2001:db8:5:1ff::2", "2001:db8:5:1ff::3"} {
		lines = append(lines, failures(a, 1)...)
	}
	e.appendLog(lines...)
	e.waitBanned("the /56", "sshd-v6", "2001:db8:5:100::/56", d)
	if set := nftSet(t, "sshd-v6"); len(set) != 1 {
		t.Errorf("the set holds %v, want the /56 alone", set)
	}
	out, _, _ := e.cli("banned", "sshd")
	if strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "2001:db8:5:100::/56") {
		t.Errorf("banned: %s", out)
	}
	d.stop(t)
}

// fail2ban-client style commands: set JAIL banip/unbanip, get JAIL banip [--with-time], get JAIL
// PARAM, and reload JAIL, which takes only that jail's new definition.
func TestSystemClientCommands(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails)
	d := e.start()
	run := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(e.mustCLI(args...))
	}
	run("set", "sshd", "banip", "203.0.113.120")
	e.waitBanned("set banip", "sshd-v4", "203.0.113.120", d)
	if got := run("get", "sshd", "banip"); got != "203.0.113.120" {
		t.Errorf("get banip: %q", got)
	}
	if got := run("get", "sshd", "banip", "--with-time"); !strings.HasPrefix(got, "203.0.113.120 \t") || !strings.Contains(got, " + 3600 = ") {
		t.Errorf("get banip --with-time: %q", got)
	}
	if got := run("get", "sshd", "maxretry"); got != "3" {
		t.Errorf("get maxretry: %q", got)
	}
	if got := run("get", "sshd", "ignoreip"); got != "127.0.0.0/8\n192.0.2.0/24" {
		t.Errorf("get ignoreip: %q", got)
	}
	run("set", "sshd", "unbanip", "203.0.113.120")
	e.waitFor("set unbanip", func() bool { _, ok := nftSet(t, "sshd-v4")["203.0.113.120"]; return !ok }, d)

	// reload JAIL: only sshd's new maxretry applies; waiting keeps its running definition.
	conf := filepath.Join(e.cfg, "jail.conf")
	b, _ := os.ReadFile(conf)
	os.WriteFile(conf, []byte(strings.Replace(string(b), "maxretry = 3", "maxretry = 4", 1)), 0o644)
	if got := run("reload", "sshd"); got != "reloaded jail sshd" {
		t.Errorf("reload sshd: %q", got)
	}
	if s, w := run("get", "sshd", "maxretry"), run("get", "waiting", "maxretry"); s != "4" || w != "3" {
		t.Errorf("after reload sshd: sshd maxretry %s (want 4), waiting %s (want 3: not reloaded)", s, w)
	}
	run("reload")
	if w := run("get", "waiting", "maxretry"); w != "4" {
		t.Errorf("after a full reload, waiting maxretry %s, want 4", w)
	}
	if _, _, code := e.cli("reload", "nosuchjail"); code == 0 {
		t.Error("reload of an unknown jail succeeded")
	}
	d.stop(t)
}

// Reconcile: an element someone deletes by hand comes back with its remaining time, and one no
// ban accounts for goes, without touching the other bans. The periodic check is an hour away
// here: nftables' own deletion notification is what sets the reconcile off.
func TestSystemReconcile(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails)
	e.extra = []string{"--check-every", "1h"}
	d := e.start()
	for _, a := range []string{"203.0.113.140", "203.0.113.142"} {
		e.mustCLI("ban", "sshd", a)
	}
	nft := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v: %v %s", args, err, out)
		}
	}
	nft("delete", "element", "inet", "portcullis", "sshd-v4", "{ 203.0.113.140 }")
	nft("add", "element", "inet", "portcullis", "sshd-v4", "{ 203.0.113.141 timeout 1h }")
	e.waitFor("the sets reconciled", func() bool {
		set := nftSet(t, "sshd-v4")
		_, back := set["203.0.113.140"]
		_, stray := set["203.0.113.141"]
		_, kept := set["203.0.113.142"]
		return back && !stray && kept
	}, d)
	if tmo := nftSet(t, "sshd-v4")["203.0.113.140"]; tmo <= 50*time.Minute || tmo > time.Hour {
		t.Errorf("re-added element timeout %v, want the ban's remaining time (just under 1h)", tmo)
	}
	if !strings.Contains(d.stderr.String(), "reconciling") || !strings.Contains(d.stderr.String(), "missing=1 stale=1") {
		t.Errorf("reconcile not logged as expected:\n%s", d.stderr)
	}
	d.stop(t)
}

// The audit log: one JSON line per ban and unban, once stored and applied; a ban from failures
// carries the failures counted, their times and their lines (the last maxmatches, here all three).
func TestSystemAuditLog(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails)
	audit := filepath.Join(e.dir, "log", "audit.log")
	os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(fmt.Sprintf("[Definition]\nsocket = %s\nauditlog = %s\n", e.socket, audit)), 0o644)
	d := e.start()
	lines := failures("203.0.113.130", 3)
	e.appendLog(lines...)
	e.waitBanned("203.0.113.130 banned", "sshd-v4", "203.0.113.130", d)
	e.mustCLI("unban", "203.0.113.130")
	type rec struct {
		Op, Jail, Prefix, Reason string
		Duration                 int64
		Failures                 int
		Times                    []int64 `json:"failure_times"`
		Matches                  []string
	}
	var recs []rec
	e.waitFor("two audit records", func() bool {
		b, _ := os.ReadFile(audit)
		recs = nil
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r rec
			if json.Unmarshal([]byte(l), &r) == nil {
				recs = append(recs, r)
			}
		}
		return len(recs) == 2
	}, d)
	b, r := recs[0], recs[1]
	if b.Op != "ban" || b.Jail != "sshd" || b.Prefix != "203.0.113.130" || b.Reason != "failures" || b.Duration != 3600 ||
		b.Failures != 3 || len(b.Times) != 3 || strings.Join(b.Matches, "\n") != strings.Join(lines, "\n") {
		t.Errorf("ban record %+v", b)
	}
	if r.Op != "unban" || r.Reason != "manual" || r.Prefix != "203.0.113.130" {
		t.Errorf("unban record %+v", r)
	}
	if st, err := os.Stat(audit); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode: %v %v", st.Mode(), err)
	}
	d.stop(t)
}

// The recidive jail counts the daemon's own bans (here two manual ones) and bans for its much
// longer bantime in its own set, on every port.
func TestSystemRecidive(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails+"\n[recidive]\nenabled = true\nmaxretry = 2\nfindtime = 1d\nbantime = 1w\nprotocol = all\n")
	d := e.start()
	for _, args := range [][]string{{"ban", "sshd", "203.0.113.99"}, {"unban", "sshd", "203.0.113.99"}, {"ban", "sshd", "203.0.113.99"}} {
		e.mustCLI(args...)
	}
	e.waitBanned("203.0.113.99 banned by recidive after its second ban", "recidive-v4", "203.0.113.99", d)
	if tmo := nftSet(t, "recidive-v4")["203.0.113.99"]; tmo < 6*24*time.Hour {
		t.Errorf("recidive ban timeout %v, want about a week", tmo)
	}
	out, _, _ := e.cli("status", "recidive")
	if !strings.Contains(out, "203.0.113.99") {
		t.Errorf("status recidive: %s", out)
	}
	d.stop(t)
}

// backend = systemd against a real systemd-journald: one runs in a private mount namespace (a
// tmpfs on /run, so the host's /run is untouched), a process named sshd (a copy of cat run by
// systemd-cat) writes failures to it through journald's stdout stream, so _COMM=sshd is the
// journal's own trusted field, matched by the jail's journalmatch; the daemon, run in the same
// namespace, bans from journalctl's output, and after a restart resumes after its saved cursor.
func TestSystemRealJournal(t *testing.T) {
	netnstest.Require(t)
	journald := "/lib/systemd/systemd-journald"
	for _, tool := range []string{journald, "/usr/bin/systemd-cat", "/usr/bin/journalctl", "/usr/bin/cat"} {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("no %s here (Debian package systemd): %v", tool, err)
		}
	}
	for _, tool := range []string{"nsenter", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (util-linux): %v", tool, err)
		}
	}
	e := newEnv(t, sshdOnly+`
backend = systemd
journalmatch = _COMM=sshd
`)
	jd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && exec "$0"`, journald)
	var jdErr syncBuffer
	jd.Stderr = &jdErr
	if err := jd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jd.Process.Kill(); jd.Wait() })
	ns := strconv.Itoa(jd.Process.Pid)
	e.waitFor("journald's socket", func() bool {
		_, err := os.Stat("/proc/" + ns + "/root/run/systemd/journal/stdout")
		return err == nil
	}, nil)
	e.wrap = []string{"nsenter", "-t", ns, "-m", "--"}
	// cat under the name sshd, its output connected to the journal by systemd-cat: the journal
	// records the writing process's command name as _COMM.
	sshd := filepath.Join(e.dir, "sshd")
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(cat); err != nil || os.WriteFile(sshd, b, 0o755) != nil {
		t.Fatalf("copy cat: %v", err)
	}
	// journald reads the writer's /proc entry when the data arrives: the writer stays alive until
	// its lines are in the journal with _COMM=sshd, or a fast exit would leave _COMM out.
	write := func(lines ...string) {
		t.Helper()
		cmd := exec.Command("nsenter", "-t", ns, "-m", "--", "systemd-cat", "-t", "sshd", sshd)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(in, strings.Join(lines, "\n")+"\n")
		e.waitFor("the lines in the journal", func() bool {
			out, _ := exec.Command("nsenter", "-t", ns, "-m", "--", "journalctl", "--no-pager", "-o", "cat", "_COMM=sshd").Output()
			return strings.Contains(string(out), lines[len(lines)-1])
		}, nil)
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writing to the journal: %v (journald: %s)", err, jdErr.String())
		}
	}
	msg := func(addr string, i int) string {
		return fmt.Sprintf("Failed password for invalid user admin%d from %s port %d ssh2", i, addr, 40000+i)
	}
	d := e.start()
	write(msg("203.0.113.90", 0), msg("203.0.113.90", 1))
	e.waitFailures("two failures from the journal", "sshd", 2, d)
	d.stop(t)
	// Written while the daemon is down: the third failure. The restart resumes after the saved
	// cursor (the first two are not read again) and the saved count makes it the third.
	write(msg("203.0.113.90", 2))
	d = e.start()
	e.waitBanned("203.0.113.90 banned from the real journal across a restart", "sshd-v4", "203.0.113.90", d)
	out, _, _ := e.cli("status", "sshd")
	if !strings.Contains(out, "Total failed:\t1") {
		t.Errorf("status after restart: %s (want exactly the one new failure: the cursor was not honoured)", out)
	}
	d.stop(t)
}

// JSON access logs (Caddy's layout): the address comes from a named field, not from request text.
func TestSystemJSONLogs(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, `
[web]
enabled = true
filter = json-401
port = https
logpath = @DIR@/auth.log
logformat = json
json_time = ts
json_host = request.remote_ip
maxretry = 3
bantime = 1h
`)
	os.WriteFile(filepath.Join(e.cfg, "filter.d", "json-401.conf"), []byte("[Definition]\nfailregex = ^\\s*<HOST> \\{.*\"status\":401[,}]\n"), 0o644)
	d := e.start()
	var lines []string
	for i := 0; i < 3; i++ {
		lines = append(lines, fmt.Sprintf(`{"level":"info","ts":%d.5,"msg":"handled request","request":{"remote_ip":"203.0.113.80","uri":"/admin?x=203.0.113.81"},"status":401}`, time.Now().Unix()))
	}
	lines = append(lines, "this line is not JSON")
	e.appendLog(lines...)
	e.waitBanned("203.0.113.80 banned from JSON logs", "web-v4", "203.0.113.80", d)
	if _, ok := nftSet(t, "web-v4")["203.0.113.81"]; ok {
		t.Fatal("the address inside the request URI was banned")
	}
	d.stop(t)
}

// Restarting mid-stream 20 times counts every failure exactly once, the same as one uninterrupted
// run: the writer never stops, the daemon stops and starts under it.
func TestSystemRestartMidStream(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, strings.Replace(systemJails, "maxretry = 3", "maxretry = 1000000", 1))
	stop := make(chan struct{})
	var written atomic.Int64
	writerDone := make(chan struct{})
	// The first run saves the start (the file is empty) for the runs after it to resume from.
	first := e.start()
	first.stop(t)
	go func() {
		defer close(writerDone)
		f, err := os.OpenFile(e.log, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			var b strings.Builder
			for k := 0; k < 5; k++ {
				n := written.Add(1)
				fmt.Fprintf(&b, "%s host sshd[%d]: Failed password for root from 198.18.%d.%d port 22 ssh2\n", stamp(), n, n/250%250, n%250+1)
			}
			if _, err := f.WriteString(b.String()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	totalRE := regexp.MustCompile(`msg="jail totals" jail=sshd failures=(\d+)`)
	counted := 0
	run := func() {
		d := e.start()
		time.Sleep(100 * time.Millisecond)
		d.stop(t)
		m := totalRE.FindStringSubmatch(d.stderr.String())
		if m == nil {
			t.Fatalf("no totals in the daemon log:\n%s", d.stderr)
		}
		n, _ := strconv.Atoi(m[1])
		counted += n
	}
	for i := 0; i < 20; i++ {
		run()
	}
	close(stop)
	<-writerDone
	// The last run reads the rest: wait until it has counted exactly what is left, then stop.
	rest := written.Load() - int64(counted)
	d := e.start()
	e.waitFailures(fmt.Sprintf("the last %d failures", rest), "sshd", int(rest), d)
	d.stop(t)
	m := totalRE.FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no totals in the daemon log:\n%s", d.stderr)
	}
	n, _ := strconv.Atoi(m[1])
	counted += n
	if int64(counted) != written.Load() {
		t.Fatalf("20 restarts counted %d failures of %d written", counted, written.Load())
	}
	t.Logf("20 restarts under a steady writer: %d of %d failures counted, none twice", counted, written.Load())
}

// prefixText writes a prefix as status and banned do: a single address without its length.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// kill -9 at random points, 50 times, while bans arrive from the CLI and from the log: after each
// restart every ban that was reported done — the CLI's ban returned, or the daemon logged it — is
// in the store and in the kernel set, and the set holds exactly what the store holds.
func TestSystemKill9(t *testing.T) {
	netnstest.Require(t)
	if testing.Short() {
		t.Skip("50 kill -9 runs; skipped with -short")
	}
	e := newEnv(t, systemJails)
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	reported := map[string]bool{}
	banRe := regexp.MustCompile(`msg=ban jail=sshd prefix=(\S+)`)
	// check: every ban reported done is stored, and the kernel set holds exactly the stored bans.
	// The restarted daemon is reading again what it read after its last checkpoint (bans of new
	// addresses, prolonged bans of known ones), each stored before it reaches the kernel, so the
	// two may differ for a moment: they must agree within a few seconds, never drift apart.
	check := func(d *daemon, run int) {
		t.Helper()
		var problem string
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			out, stderr, code := e.cli("banned", "sshd", "--json")
			if code != 0 {
				t.Fatalf("run %d: banned: %s", run, stderr)
			}
			var bs []struct{ Prefix string }
			if err := json.Unmarshal([]byte(out), &bs); err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			stored := map[string]bool{}
			for _, b := range bs {
				stored[b.Prefix] = true
			}
			set := nftSet(t, "sshd-v4")
			mu.Lock()
			for a := range reported {
				if !stored[a] {
					mu.Unlock()
					t.Fatalf("run %d: %s was reported banned but is not in the store after kill -9", run, a)
				}
			}
			mu.Unlock()
			problem = ""
			if len(set) != len(stored) {
				problem = fmt.Sprintf("the set holds %d elements, the store %d bans", len(set), len(stored))
			}
			for a := range stored {
				if _, ok := set[a]; !ok {
					problem = fmt.Sprintf("%s is stored but not in the kernel set", a)
				}
			}
			if problem == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: after 15 s, %s", run, problem)
			}
		}
	}
	const runs = 50
	for run := 0; run < runs; run++ {
		d := e.start()
		check(d, run)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // CLI bans: a ban whose command returned 0 is reported done
			defer wg.Done()
			for i := 0; i < 250; i++ {
				select {
				case <-stop:
					return
				default:
				}
				addr := fmt.Sprintf("198.18.%d.%d", run, i)
				if exec.Command(binary(t), "ban", "sshd", addr, "--socket", e.socket).Run() == nil {
					mu.Lock()
					reported[addr] = true
					mu.Unlock()
				}
			}
		}()
		go func() { // failures in the log: three per address cross maxretry
			defer wg.Done()
			for i := 0; i < 250; i++ {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				f, err := os.OpenFile(e.log, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					return
				}
				io.WriteString(f, strings.Join(failures(fmt.Sprintf("198.19.%d.%d", run, i), 3), "\n")+"\n")
				f.Close()
			}
		}()
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		d.cmd.Process.Kill()
		<-d.done
		close(stop)
		wg.Wait()
		for _, m := range banRe.FindAllStringSubmatch(d.stderr.String(), -1) {
			p, err := netip.ParsePrefix(m[1])
			if err != nil {
				t.Fatalf("logged ban %q: %v", m[1], err)
			}
			mu.Lock()
			reported[prefixText(p)] = true
			mu.Unlock()
		}
	}
	d := e.start()
	check(d, runs)
	d.stop(t)
	t.Logf("%d kill -9 runs, %d bans reported done, all kept in the store and the kernel", runs, len(reported))
}

// A log read for the first time is read as fail2ban reads it: from its start, where failures
// within findtime of now count and older ones do not (an attack that is over bans no one); a
// long log starts near its last findtime without matching what is older. With logpath's tail
// option, the backlog is skipped.
func TestSystemFirstStartReadsBacklog(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, strings.Replace(systemJails, "logpath = @DIR@/auth.log", "logpath = @DIR@/auth.log\n          @DIR@/tail.log tail", 1))
	at := func(ago time.Duration, addr string, i int) string {
		return fmt.Sprintf("%s testhost sshd[%d]: Failed password for invalid user admin from %s port %d ssh2",
			time.Now().Add(-ago).Format(time.Stamp), 5000+i, addr, 40000+i)
	}
	var lines []string
	// Two hours of an old attack from .70 (findtime is 10 minutes), enough to be bisected.
	for i := range 40000 {
		lines = append(lines, at(2*time.Hour-time.Duration(i)*100*time.Millisecond, "203.0.113.70", i))
	}
	// Minutes ago, within findtime: .71 fails three times.
	for i := range 3 {
		lines = append(lines, at(3*time.Minute-time.Duration(i)*time.Second, "203.0.113.71", i))
	}
	e.appendLog(lines...)
	recent := strings.Join([]string{at(time.Minute, "203.0.113.72", 1), at(time.Minute, "203.0.113.72", 2), at(time.Minute, "203.0.113.72", 3)}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(e.dir, "tail.log"), []byte(recent), 0o644); err != nil {
		t.Fatal(err)
	}
	d := e.start()
	e.waitBanned("203.0.113.71, three failures minutes ago in the backlog", "sshd-v4", "203.0.113.71", d)
	e.waitFor("the backlog's old failures dropped", func() bool {
		out, _, _ := e.cli("status", "sshd")
		return strings.Contains(out, "Total failed:\t3")
	}, d)
	set := nftSet(t, "sshd-v4")
	if _, ok := set["203.0.113.70"]; ok {
		t.Errorf("203.0.113.70 banned for failures two hours old: %v", set)
	}
	if _, ok := set["203.0.113.72"]; ok {
		t.Errorf("203.0.113.72 banned from a log read with tail: %v", set)
	}
	if !strings.Contains(d.stderr.String(), "log file read from its last findtime") {
		t.Errorf("the long backlog was not bisected:\n%s", d.stderr)
	}
	if n := e.metric(`portcullis_failures_stale_total{jail="sshd"}`); n == 0 || n >= 40000 {
		t.Errorf("%.0f stale failures counted: want some (the bisection's margin) and far fewer than the 40,000 old ones", n)
	}
	// Lines written now are counted as ever.
	e.appendLog(failures("203.0.113.73", 3)...)
	e.waitBanned("203.0.113.73 after the start", "sshd-v4", "203.0.113.73", d)
	d.stop(t)
}

// kill -9 in the middle of an action queue loses no run: the bans' jobs were committed with the
// bans, and the restarted daemon runs every one not yet done (at least once: the run in flight at
// the kill may run twice). norestored keeps restored bans from running the action again, so only
// the stored jobs can write the missing lines.
func TestSystemKill9ActionQueue(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, sshdOnly+`
maxretry = 1
logpath = @DIR@/auth.log
action = nftables-multiport[port=ssh]
         slowmail
`)
	out := filepath.Join(e.dir, "mails")
	os.MkdirAll(filepath.Join(e.cfg, "action.d"), 0o755)
	os.WriteFile(filepath.Join(e.cfg, "action.d", "nftables-multiport.conf"), []byte("[Definition]\nactionban = true\n"), 0o644)
	os.WriteFile(filepath.Join(e.cfg, "action.d", "slowmail.conf"), []byte("[Definition]\nnorestored = 1\nactionban = sleep 0.3; echo <ip> >> "+out+"\n"), 0o644)
	d := e.start()
	const bans = 10
	var lines []string
	for i := range bans {
		lines = append(lines, fmt.Sprintf("%s host sshd[%d]: Failed password for root from 203.0.113.%d port 22 ssh2", stamp(), 700+i, 100+i))
	}
	e.appendLog(lines...)
	e.waitFor("every ban in the kernel", func() bool { return len(nftSet(t, "sshd-v4")) == bans }, d)
	e.waitFor("the first mail", func() bool { b, _ := os.ReadFile(out); return len(b) > 0 }, d)
	d.cmd.Process.Kill() // kill -9, mid-queue
	<-d.done
	b, _ := os.ReadFile(out)
	if n := strings.Count(string(b), "\n"); n >= bans {
		t.Fatalf("the queue was done before the kill (%d runs): the test proves nothing", n)
	}
	d = e.start()
	e.waitFor("every ban's run after the restart", func() bool {
		b, _ := os.ReadFile(out)
		for i := range bans {
			if !strings.Contains(string(b), fmt.Sprintf("203.0.113.%d\n", 100+i)) {
				return false
			}
		}
		return true
	}, d)
	d.stop(t)
}
