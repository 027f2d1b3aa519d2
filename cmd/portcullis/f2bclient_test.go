package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/netnstest"
)

// The golden test of fail2ban-client parity: the real fail2ban-server (Debian's 1.0.2, from the
// fetched package, with its dummy action) and portcullis run the same jail from the same Debian
// /etc/fail2ban; the same session of fail2ban-client commands goes to each — fail2ban's own
// client to fail2ban, this binary invoked as fail2ban-client to portcullis — and each command's
// output and exit status must be byte for byte the same. Left out on purpose: get failregex
// (fail2ban prints its compiled Python form), get logtarget and get dbfile (each names its own
// files), and messages on stderr (fail2ban's carry a time stamp).
func TestF2bClientGolden(t *testing.T) {
	netnstest.Require(t)
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	dir := t.TempDir()
	log, other := filepath.Join(dir, "auth.log"), filepath.Join(dir, "other.log")
	os.WriteFile(log, nil, 0o644)
	os.WriteFile(other, nil, 0o644)
	jailLocal := fmt.Sprintf(`[DEFAULT]
banaction = dummy
banaction_allports = dummy
[sshd]
enabled = true
backend = auto
logpath = %s
maxretry = 3
findtime = 10m
bantime = 10m
ignoreip = 10.0.0.0/8 192.0.2.200
action = dummy[target="%s"]
`, log, filepath.Join(dir, "dummy"))
	etc := func(name string) string {
		d := filepath.Join(dir, name)
		if err := f2bcorpus.CopyEtc(d); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(d, "jail.d"))
		os.WriteFile(filepath.Join(d, "jail.local"), []byte(jailLocal), 0o644)
		return d
	}
	// fail2ban, its files in the test's folder.
	f2bEtc := etc("f2b")
	f2bSock := filepath.Join(dir, "f2b.sock")
	os.WriteFile(filepath.Join(f2bEtc, "fail2ban.local"), []byte(fmt.Sprintf("[Definition]\nlogtarget = %s\nsocket = %s\npidfile = %s\ndbfile = %s\n",
		filepath.Join(dir, "f2b.log"), f2bSock, filepath.Join(dir, "f2b.pid"), filepath.Join(dir, "f2b.sqlite3"))), 0o644)
	lib := filepath.Join(f2bcorpus.Root(), "usr", "lib", "python3", "dist-packages")
	f2b := func(args ...string) (string, int) {
		cmd := exec.Command("/usr/bin/python3", append([]string{filepath.Join(f2bcorpus.Root(), "usr", "bin", "fail2ban-client"), "-c", f2bEtc}, args...)...)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+lib)
		return runCode(t, cmd)
	}
	if out, code := f2b("start"); code != 0 {
		t.Fatalf("fail2ban-server did not start: %d %s", code, out)
	}
	t.Cleanup(func() { f2b("stop") })

	// portcullis on the same configuration, this binary as fail2ban-client.
	ourEtc := etc("ours")
	e := &env{t: t, dir: dir, cfg: ourEtc, log: log, socket: filepath.Join(dir, "p.sock"), db: filepath.Join(dir, "db"), metrics: freeAddr(t, "tcp")}
	os.WriteFile(filepath.Join(ourEtc, "portcullis.conf"), []byte("[Definition]\nimport_fail2ban = off\nlogtarget = STDERR\n"), 0o644)
	d := e.start()
	client := filepath.Join(dir, "bin", "fail2ban-client")
	os.MkdirAll(filepath.Dir(client), 0o755)
	if err := os.Symlink(binary(t), client); err != nil {
		t.Fatal(err)
	}
	ours := func(args ...string) (string, int) {
		return runCode(t, exec.Command(client, append([]string{"-s", e.socket}, args...)...))
	}

	session := [][]string{
		{"ping"}, {"version"}, {"status"}, {"status", "sshd"}, {"banned"},
		{"set", "sshd", "banip", "192.0.2.1", "2001:db8::1"}, {"get", "sshd", "banip"},
		// Banned again: 0 new bans. (Its end moves on by the fraction of a second since in
		// fail2ban, by whole seconds here: get banip, ordered by end, is asked before.)
		{"set", "sshd", "banip", "192.0.2.1"},
		{"banned"}, {"banned", "192.0.2.1", "192.0.2.9"}, {"status", "sshd"}, {"get", "sshd", "banned"},
		{"get", "sshd", "maxretry"}, {"get", "sshd", "findtime"}, {"get", "sshd", "bantime"},
		{"get", "sshd", "ignoreself"}, {"get", "sshd", "ignoreip"}, {"get", "sshd", "logpath"},
		{"get", "sshd", "actions"}, {"get", "sshd", "logencoding"}, {"get", "sshd", "ignoreregex"},
		{"get", "sshd", "usedns"}, {"get", "loglevel"}, {"get", "dbpurgeage"},
		{"unban", "2001:db8::1", "203.0.113.1"}, {"set", "sshd", "unbanip", "192.0.2.1"},
		{"status", "sshd"}, {"echo", "hello", "world"}, {"status", "nojail"}, {"get", "nojail", "maxretry"},
		// Run-time changes, until the next reload.
		{"set", "sshd", "addignoreip", "10.9.0.0/16"}, {"set", "sshd", "delignoreip", "10.9.0.0/16"},
		{"set", "sshd", "maxretry", "7"}, {"set", "sshd", "findtime", "1h"}, {"set", "sshd", "bantime", "2h"},
		{"get", "sshd", "bantime"}, {"set", "sshd", "addlogpath", other}, {"get", "sshd", "logpath"},
		{"set", "sshd", "dellogpath", other}, {"set", "sshd", "addignoreregex", "^ignored line$"},
		{"set", "sshd", "delignoreregex", "0"}, {"set", "sshd", "maxmatches", "7"}, {"get", "sshd", "maxmatches"},
		{"set", "sshd", "ignoreself", "false"}, {"get", "sshd", "ignoreself"}, {"set", "sshd", "usedns", "no"},
		{"get", "sshd", "usedns"}, {"get", "sshd", "maxlines"}, {"set", "sshd", "maxlines", "2"}, {"set", "loglevel", "DEBUG"}, {"get", "loglevel"},
		{"set", "dbpurgeage", "2d"}, {"set", "logtarget", filepath.Join(dir, "moved.log")}, {"get", "logtarget"},
		{"set", "logtarget", "STDERR"}, {"set", "dbfile", filepath.Join(dir, "other.sqlite3")}, {"set", "sshd", "idle", "on"}, {"set", "sshd", "idle", "off"},
		{"restart", "sshd"}, {"stop", "sshd"}, {"status"}, {"reload"}, {"status"}, {"get", "sshd", "maxretry"},
		{"restart"}, {"status", "sshd"},
		// A jail made at run time: its failregex is set on both without comparing (fail2ban
		// prints its compiled form), the rest compared.
		{"add", "web", "auto"}, {"set", "web", "addlogpath", other}, {"!set", "web", "addfailregex", "^web fail from <HOST>$"},
		{"set", "web", "maxretry", "2"}, {"start", "web"}, {"status"}, {"status", "web"}, {"get", "web", "maxretry"},
		{"set", "web", "banip", "192.0.2.55"}, {"banned"}, {"stop", "web"}, {"status"},
		{"set", "sshd", "banip", "198.51.100.7"}, {"reload"}, {"status", "sshd"}, {"unban", "--all"},
		{"flushlogs"}, {"stop"}, {"ping"},
	}
	for _, cmd := range session {
		if strings.HasPrefix(cmd[0], "!") {
			cmd = append([]string{cmd[0][1:]}, cmd[1:]...)
			_, wantCode := f2b(cmd...)
			_, gotCode := ours(cmd...)
			if wantCode != 0 || gotCode != 0 {
				t.Errorf("fail2ban-client %s: fail2ban exit %d, portcullis exit %d", strings.Join(cmd, " "), wantCode, gotCode)
			}
			continue
		}
		want, wantCode := f2b(cmd...)
		got, gotCode := ours(cmd...)
		if got != want || gotCode != wantCode {
			t.Errorf("fail2ban-client %s:\nfail2ban (exit %d):\n%s\nportcullis (exit %d):\n%s", strings.Join(cmd, " "), wantCode, want, gotCode, got)
		}
	}
	select {
	case <-d.done:
	default:
		d.stop(t)
		t.Error("fail2ban-client stop did not stop portcullis")
	}
}

// runCode runs cmd and returns its standard output and exit status.
func runCode(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}
