package pipeline

import (
	"bufio"
	"encoding/json"
	"errors"
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

	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/internal/testconf"
	"github.com/portcullis/portcullis/sink/sinktest"
)

// unitDaemon is a daemon on a recording firewall: no root, no kernel. The namespace system
// tests in cmd/portcullis run the same paths against nftables.
type unitDaemon struct {
	*Daemon
	fw   *sinktest.Firewall
	dir  string
	log  string
	opts Options
}

func startUnit(t *testing.T, jail string, extra string) *unitDaemon {
	t.Helper()
	return startUnitWith(t, jail, extra, nil)
}

// startUnitWith is startUnit with prepare run on the configuration folder before the start.
func startUnitWith(t *testing.T, jail, extra string, prepare func(cfg string)) *unitDaemon {
	t.Helper()
	dir := t.TempDir()
	u := &unitDaemon{fw: &sinktest.Firewall{}, dir: dir, log: filepath.Join(dir, "auth.log")}
	if err := os.WriteFile(u.log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "etc")
	testconf.Write(t, cfg, fmt.Sprintf(jail, u.log))
	conf := "[Definition]\nauditlog = " + filepath.Join(dir, "audit.log") + "\n" + extra
	if err := os.WriteFile(filepath.Join(cfg, "portcullis.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(cfg)
	}
	u.opts = Options{ConfigDir: cfg, Socket: filepath.Join(dir, "s.sock"), DBDir: filepath.Join(dir, "db"), Metrics: "off",
		Poll: 5 * time.Millisecond, Workers: 2, CheckEvery: 50 * time.Millisecond, Firewall: u.fw, ImportFail2ban: "off",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	u.restart(t)
	return u
}

func (u *unitDaemon) restart(t *testing.T) {
	t.Helper()
	if u.Daemon != nil {
		if err := u.Daemon.Close(); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Start(u.opts)
	if err != nil {
		t.Fatal(err)
	}
	u.Daemon = d
	t.Cleanup(func() {
		if u.Daemon == d {
			d.Close()
			u.Daemon = nil
		}
	})
}

// fail appends n sshd failures of addr, stamped now.
func (u *unitDaemon) fail(t *testing.T, addr string, n int) {
	t.Helper()
	f, err := os.OpenFile(u.log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stamp := time.Now().Format(time.Stamp)
	for i := range n {
		fmt.Fprintf(f, "%s host sshd[%d]: Failed password for root from %s port %d ssh2\n", stamp, 4000+i, addr, 40000+i)
	}
}

func (u *unitDaemon) call(t *testing.T, args ...string) control.Reply {
	t.Helper()
	return u.handle(control.Request{Cmd: args[0], Args: args[1:]})
}

// waitFor polls cond for up to 20 s: a deadline for a broken daemon, not a speed goal.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (u *unitDaemon) inSet(t *testing.T, jail, prefix string) bool {
	t.Helper()
	els, err := u.fw.Elements(jail)
	if err != nil {
		return false
	}
	return slices.Contains(els, netip.MustParsePrefix(prefix))
}

const unitJail = `
[DEFAULT]
maxretry = 3
findtime = 10m
bantime = 1h
[sshd]
enabled = true
port = ssh
logpath = %s
`

// Failures in a log reach the firewall, the audit log and the store; an address under maxretry
// stays out; a ban outlives a restart and an unban lifts it everywhere.
func TestDaemonBansThroughTheFirewall(t *testing.T) {
	u := startUnit(t, unitJail, "")
	u.fail(t, "203.0.113.7", 3)
	u.fail(t, "203.0.113.8", 2)
	waitFor(t, "203.0.113.7 in the set", func() bool { return u.inSet(t, "sshd", "203.0.113.7/32") })
	waitFor(t, "every line processed", func() bool { return u.LinesProcessed() == 5 })
	u.applier.flush()
	if u.inSet(t, "sshd", "203.0.113.8/32") {
		t.Fatal("an address under maxretry was banned")
	}
	recs := readAudit(t, filepath.Join(u.dir, "audit.log"))
	if len(recs) != 1 || recs[0]["op"] != "ban" || recs[0]["prefix"] != "203.0.113.7" || recs[0]["failures"] != 3.0 {
		t.Fatalf("audit log: %v", recs)
	}
	if m, _ := recs[0]["matches"].([]any); len(m) != 3 || !strings.Contains(m[2].(string), "from 203.0.113.7 port 40002") {
		t.Fatalf("audit log evidence: %v", recs[0]["matches"])
	}

	u.restart(t)
	if !u.inSet(t, "sshd", "203.0.113.7/32") || u.fw.Builds() != 2 {
		t.Fatalf("after a restart: in set %v, builds %d", u.inSet(t, "sshd", "203.0.113.7/32"), u.fw.Builds())
	}
	// The failures of .8 counted before the restart count on.
	u.fail(t, "203.0.113.8", 1)
	waitFor(t, "203.0.113.8 banned on its third failure across the restart", func() bool { return u.inSet(t, "sshd", "203.0.113.8/32") })

	if r := u.call(t, "unban", "203.0.113.7"); !r.OK {
		t.Fatalf("unban: %s", r.Error)
	}
	if u.inSet(t, "sshd", "203.0.113.7/32") {
		t.Fatal("unban left the element")
	}
	tx := u.fw.Transactions()
	last := tx[len(tx)-1]
	if len(last.Add) != 0 || len(last.Del) != 1 || last.Del[0].Prefix != netip.MustParsePrefix("203.0.113.7/32") {
		t.Fatalf("unban transaction: %+v", last)
	}
	u.restart(t)
	if u.inSet(t, "sshd", "203.0.113.7/32") || !u.inSet(t, "sshd", "203.0.113.8/32") {
		t.Fatal("the store and the firewall disagree after an unban and a restart")
	}
}

// ignoreip and loopback are never banned, from failures or from the CLI.
func TestDaemonNeverBansProtected(t *testing.T) {
	u := startUnit(t, unitJail+"ignoreip = 198.51.100.0/24\n", "")
	u.fail(t, "198.51.100.20", 5)
	u.fail(t, "127.0.0.1", 5)
	u.fail(t, "203.0.113.9", 3)
	waitFor(t, "the unprotected address banned", func() bool { return u.inSet(t, "sshd", "203.0.113.9/32") })
	waitFor(t, "every line processed", func() bool { return u.LinesProcessed() == 13 })
	if r := u.call(t, "ban", "sshd", "198.51.100.21"); !r.OK || !strings.Contains(string(r.Data), "refused") {
		t.Fatalf("CLI ban of an ignored address: %+v %s", r, r.Data)
	}
	u.applier.flush()
	els, _ := u.fw.Elements("sshd")
	if len(els) != 1 {
		t.Fatalf("set holds %v, want only 203.0.113.9", els)
	}
}

// A firewall that refuses a batch still has the ban stored; the periodic reconcile puts it in
// once the firewall takes changes again. Someone deleting an element or the whole table gets it
// back within a check.
func TestDaemonRepairsTheFirewall(t *testing.T) {
	u := startUnit(t, unitJail, "")
	u.fw.FailWith(errors.New("netlink: no buffer space"))
	r := u.call(t, "ban", "sshd", "203.0.113.50")
	if r.OK {
		t.Fatalf("a ban the firewall refused reported success: %s", r.Data)
	}
	banned := u.call(t, "banned")
	if !strings.Contains(string(banned.Data), "203.0.113.50") {
		t.Fatalf("the refused ban is not kept: %s", banned.Data)
	}
	u.fw.FailWith(nil)
	waitFor(t, "the reconcile to add the ban", func() bool { return u.inSet(t, "sshd", "203.0.113.50/32") })

	u.fw.Delete("sshd", netip.MustParsePrefix("203.0.113.50/32"))
	waitFor(t, "a deleted element added back", func() bool { return u.inSet(t, "sshd", "203.0.113.50/32") })
	builds := u.fw.Builds()
	u.fw.Flush()
	waitFor(t, "a flushed table rebuilt", func() bool { return u.fw.Builds() > builds && u.inSet(t, "sshd", "203.0.113.50/32") })
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// A jail whose actions name no firewall bans nothing in the kernel, as in fail2ban
// (action = sendmail-whois only mails); its ban is still decided, stored and audited, and status
// says how each action runs.
func TestDaemonJailWithoutFirewallAction(t *testing.T) {
	dir := t.TempDir()
	ad := filepath.Join(dir, "actions")
	os.MkdirAll(ad, 0o755)
	os.WriteFile(filepath.Join(ad, "notify.conf"), []byte("[Definition]\nactionban = echo <ip> >> /dev/null\n"), 0o644)
	u := startUnitWith(t, unitJail+"action = notify\n", "", func(cfg string) {
		os.Rename(ad, filepath.Join(cfg, "action.d"))
	})
	u.fail(t, "203.0.113.70", 3)
	waitFor(t, "the ban in the audit log", func() bool {
		_, err := os.Stat(filepath.Join(u.dir, "audit.log"))
		return err == nil && len(readAudit(t, filepath.Join(u.dir, "audit.log"))) == 1
	})
	if _, err := u.fw.Elements("sshd"); err == nil {
		t.Fatal("the jail has sets in the firewall")
	}
	if tx := u.fw.Transactions(); len(tx) != 0 {
		t.Fatalf("firewall transactions for a jail without a firewall action: %+v", tx)
	}
	r := u.call(t, "get", "sshd", "actions")
	if !r.OK || !strings.Contains(string(r.Data), "notify (executed)") {
		t.Fatalf("get sshd actions: %+v %s", r, r.Data)
	}
}

// An executed action runs once per ban and unban, with the ban's tags; attacker text in the
// lines (<matches>) reaches the command as data, never as shell code.
func TestDaemonRunsActions(t *testing.T) {
	dir := t.TempDir()
	out, pwned := filepath.Join(dir, "ran"), filepath.Join(dir, "pwned")
	ad := filepath.Join(dir, "actions")
	os.MkdirAll(ad, 0o755)
	os.WriteFile(filepath.Join(ad, "record.conf"), []byte(fmt.Sprintf(`[Definition]
actionstart = echo start >> %[1]s
actionban = printf 'ban %%s %%s %%s %%s [%%s] {%%s}\n' '<name>' <ip> <failures> <bancount> "<matches>" "<F-USER>" >> %[1]s
actionunban = echo unban <ip> >> %[1]s
`, out)), 0o644)
	// No audit log: the actions alone need the ban's lines and captures.
	u := startUnitWith(t, unitJail+"action = record\n", "", func(cfg string) {
		os.Rename(ad, filepath.Join(cfg, "action.d"))
		os.WriteFile(filepath.Join(cfg, "portcullis.conf"), []byte("[Definition]\n"), 0o644)
	})
	f, _ := os.OpenFile(u.log, os.O_APPEND|os.O_WRONLY, 0)
	stamp := time.Now().Format(time.Stamp)
	for i, user := range []string{"$(touch " + pwned + ")", "`touch " + pwned + "`", "x;touch " + pwned} {
		fmt.Fprintf(f, "%s host sshd[%d]: Failed password for invalid user %s from 203.0.113.80 port %d ssh2\n", stamp, 5000+i, user, 41000+i)
	}
	f.Close()
	waitFor(t, "the action's ban line", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "ban sshd")
	})
	if r := u.call(t, "unban", "203.0.113.80"); !r.OK {
		t.Fatalf("unban: %s", r.Error)
	}
	waitFor(t, "the action's unban line", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "unban 203.0.113.80")
	})
	b, _ := os.ReadFile(out)
	got := string(b)
	if !strings.HasPrefix(got, "start\nban sshd 203.0.113.80 3 1 [") || !strings.Contains(got, "invalid user $(touch "+pwned+") from") || !strings.Contains(got, "`touch "+pwned+"`") ||
		!strings.Contains(got, "] {$(touch "+pwned+")}\n") {
		t.Fatalf("action output:\n%s", got)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("text from a log line ran as a shell command")
	}
}

// At start, the actions of restored bans run again with <restored> 1, except those that set
// norestored (fail2ban's mail actions), as fail2ban does; a reload runs nothing again.
func TestDaemonRestoredBansRunActions(t *testing.T) {
	dir := t.TempDir()
	keep, mail := filepath.Join(dir, "keep"), filepath.Join(dir, "mail")
	ad := filepath.Join(dir, "actions")
	os.MkdirAll(ad, 0o755)
	os.WriteFile(filepath.Join(ad, "keep.conf"), []byte("[Definition]\nactionban = echo <ip> <restored> >> "+keep+"\n"), 0o644)
	os.WriteFile(filepath.Join(ad, "mail.conf"), []byte("[Definition]\nnorestored = 1\nactionban = echo <ip> <restored> >> "+mail+"\n"), 0o644)
	u := startUnitWith(t, unitJail+"action = keep\n         mail\n", "", func(cfg string) {
		os.Rename(ad, filepath.Join(cfg, "action.d"))
	})
	u.fail(t, "203.0.113.90", 3)
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	waitFor(t, "both actions", func() bool { return read(keep) == "203.0.113.90 0\n" && read(mail) == "203.0.113.90 0\n" })
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	u.restart(t)
	waitFor(t, "the restored ban's action", func() bool { return read(keep) == "203.0.113.90 0\n203.0.113.90 1\n" })
	if err := u.Daemon.Close(); err != nil {
		t.Fatal(err)
	}
	u.Daemon = nil
	if got := read(mail); got != "203.0.113.90 0\n" {
		t.Fatalf("a norestored action ran for the restored ban: %q", got)
	}
	if got := read(keep); got != "203.0.113.90 0\n203.0.113.90 1\n" {
		t.Fatalf("keep: %q (a reload runs nothing again)", got)
	}
}
