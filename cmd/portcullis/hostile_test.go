package main

// The hostile-input suite: the daemon run as an attacker and a careless admin would run it. Each
// test names the class it keeps closed; `make hostile` runs them longer (HOSTILE_ROUNDS).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/portcullis/portcullis/internal/netnstest"
)

// rounds is how often a repeated hostile test repeats: a few under make test, HOSTILE_ROUNDS under
// make hostile.
func rounds(short int) int {
	if n, err := strconv.Atoi(os.Getenv("HOSTILE_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return short
}

// A reload refused at install (here a syslog port that cannot be bound) changes nothing: the
// bans of a jail the new configuration disables stay in the kernel and in the store, and the
// running configuration goes on.
func TestHostileFailedReloadKeepsBans(t *testing.T) {
	netnstest.Require(t)
	e := newEnv(t, systemJails)
	d := e.start()
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
	os.WriteFile(daemonConf, append(append([]byte{}, goodDaemon...), "syslog_tcp = 127.0.0.1:99999\n"...), 0o644)
	for range rounds(3) {
		if out, errOut, code := e.cli("reload"); code == 0 {
			t.Fatalf("a reload that cannot listen on port 99999 succeeded: %s %s", out, errOut)
		}
		if _, ok := nftSet(t, "sshd-v4")["203.0.113.130"]; !ok {
			t.Fatalf("the failed reload removed sshd's ban from the kernel:\n%s", d.stderr)
		}
		if got := strings.TrimSpace(e.mustCLI("get", "sshd", "banip")); got != "203.0.113.130" {
			t.Fatalf("after the failed reload, sshd's bans are %q", got)
		}
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
