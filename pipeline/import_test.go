package pipeline

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/store"
)

// fail2banDB writes a database with fail2ban's own code: sshd bans in force (IPv4, IPv6, one in
// ignoreip), a permanent recidive ban (a jail not enabled in the unit daemon), an expired one.
func fail2banDB(t *testing.T) string {
	t.Helper()
	now := time.Now().Unix()
	path := filepath.Join(t.TempDir(), "fail2ban.sqlite3")
	err := f2bcorpus.WriteDB(path, []f2bcorpus.DBBan{
		{Jail: "sshd", IP: "192.0.2.1", Time: now - 100, BanTime: 600, BanCount: 1},
		{Jail: "sshd", IP: "2001:db8::5", Time: now - 50, BanTime: 86400, BanCount: 3},
		{Jail: "sshd", IP: "10.9.9.9", Time: now - 50, BanTime: 600, BanCount: 1},
		{Jail: "recidive", IP: "198.51.100.9", Time: now - 86400, BanTime: -1, BanCount: 2},
		{Jail: "sshd", IP: "198.51.100.7", Time: now - 7200, BanTime: 600, BanCount: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

const importJail = unitJail + "ignoreip = 10.9.9.0/24\n"

func (u *unitDaemon) ends(t *testing.T) map[string]int64 {
	t.Helper()
	r := u.call(t, "banned")
	var bs []control.Banned
	if err := json.Unmarshal(r.Data, &bs); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, b := range bs {
		out[b.Jail+" "+b.Prefix] = b.End
	}
	return out
}

// A running daemon takes fail2ban's bans over through its socket: into the firewall and the store
// with their own end, never a protected address, the other jails' bans said and left; the ban
// counts carry on (the next ban of an address fail2ban banned 5 times is its 6th).
func TestImportIntoRunningDaemon(t *testing.T) {
	path := fail2banDB(t)
	u := startUnit(t, importJail, "")
	dry := u.call(t, "import", path, "--dry-run")
	var sum control.Import
	if !dry.OK || json.Unmarshal(dry.Data, &sum) != nil || sum.Bans != 2 || len(u.ends(t)) != 0 {
		t.Fatalf("dry run: %+v %s, bans now %v", dry, dry.Data, u.ends(t))
	}
	r := u.call(t, "import", path)
	if !r.OK {
		t.Fatal(r.Error)
	}
	json.Unmarshal(r.Data, &sum)
	if sum.Bans != 2 || sum.IPv6 != 1 || sum.Permanent != 0 || len(sum.Protected) != 1 || sum.UnknownJails["recidive"] != 1 || sum.Expired != 1 {
		t.Fatalf("summary: %+v", sum)
	}
	now := time.Now().Unix()
	ends := u.ends(t)
	if e := ends["sshd 192.0.2.1"]; e < now+490 || e > now+510 || len(ends) != 2 || ends["sshd 2001:db8::5"] == 0 {
		t.Fatalf("bans after the import: %v (now %d)", ends, now)
	}
	if !u.inSet(t, "sshd", "192.0.2.1/32") || !u.inSet(t, "sshd", "2001:db8::5/128") || u.inSet(t, "sshd", "10.9.9.9/32") {
		t.Fatal("the firewall does not hold exactly the bans taken over")
	}
	// A second import changes nothing.
	r = u.call(t, "import", path)
	json.Unmarshal(r.Data, &sum)
	if sum.Bans != 0 || sum.Already != 2 {
		t.Fatalf("again: %+v", sum)
	}
	u.call(t, "ban", "sshd", "198.51.100.7")
	hist, _ := u.store.History()
	if h := hist[netip.MustParsePrefix("198.51.100.7/32")]; h.Count != 6 {
		t.Fatalf("the ban after fail2ban's five is counted %d", h.Count)
	}
}

// On a first start with fail2ban's database there, its bans come over by themselves, once: an
// unban after it is not undone by the next start.
func TestImportOnFirstStart(t *testing.T) {
	path := fail2banDB(t)
	u := startUnitWith(t, importJail, "", nil)
	u.restart(t) // the helper's first start had import off
	if len(u.ends(t)) != 0 {
		t.Fatal("a start with import off took bans")
	}
	dir := t.TempDir()
	u.opts.DBDir, u.opts.ImportFail2ban = filepath.Join(dir, "fresh"), path
	u.restart(t)
	if ends := u.ends(t); len(ends) != 2 || !u.inSet(t, "sshd", "2001:db8::5/128") {
		t.Fatalf("first start: %v", ends)
	}
	u.call(t, "unban", "192.0.2.1")
	u.restart(t)
	if ends := u.ends(t); len(ends) != 1 {
		t.Fatalf("the second start imported again: %v", ends)
	}
}

// With portcullis stopped, the import goes into the state folder; the next start puts the bans
// into the firewall.
func TestImportOffline(t *testing.T) {
	path := fail2banDB(t)
	u := startUnit(t, importJail, "")
	u.Daemon.Close()
	u.Daemon = nil
	if _, err := ImportOffline(u.opts.ConfigDir, u.opts.DBDir, path, true, nil); err != nil {
		t.Fatal(err)
	}
	sum, err := ImportOffline(u.opts.ConfigDir, u.opts.DBDir, path, false, nil)
	if err != nil || sum.Bans != 2 || len(sum.Protected) != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	u.restart(t)
	if !u.inSet(t, "sshd", "192.0.2.1/32") || !u.inSet(t, "sshd", "2001:db8::5/128") || u.inSet(t, "sshd", "10.9.9.9/32") {
		t.Fatal("the next start did not put exactly the imported bans into the firewall")
	}
	if _, err := os.Stat(u.opts.DBDir); err != nil {
		t.Fatal(err)
	}
}

// A stored ban of an address protected since (ignoreip added, then a restart) is dropped at start,
// as fail2ban's restoreCurrentBans skips ignored addresses.
func TestRestoreSkipsProtected(t *testing.T) {
	u := startUnit(t, unitJail, "")
	if r := u.call(t, "ban", "sshd", "192.0.2.44"); !r.OK {
		t.Fatal(r.Error)
	}
	u.Daemon.Close()
	u.Daemon = nil
	os.WriteFile(filepath.Join(u.opts.ConfigDir, "jail.local"), []byte("[sshd]\nignoreip = 192.0.2.0/24\n"), 0o644)
	u.restart(t)
	if len(u.ends(t)) != 0 || u.inSet(t, "sshd", "192.0.2.44/32") {
		t.Fatalf("a protected address was banned again at start: %v", u.ends(t))
	}
}

// A dry run decides and logs bans ("would ban") but blocks nothing in the kernel it is given, runs
// no action and keeps its state beside the real one, never in it.
func TestDryRun(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	u := startUnitWith(t, unitJail+"action = nftables[port=ssh]\n         record\n", "", func(cfg string) {
		os.MkdirAll(filepath.Join(cfg, "action.d"), 0o755)
		os.WriteFile(filepath.Join(cfg, "action.d", "nftables.conf"), []byte("[Definition]\nactionban = true\n"), 0o644)
		os.WriteFile(filepath.Join(cfg, "action.d", "record.conf"), []byte("[Definition]\nactionban = echo <ip> >> "+ran+"\n"), 0o644)
	})
	u.Daemon.Close()
	u.Daemon = nil
	builds := u.fw.Builds()
	var logs syncLog
	u.opts.DryRun, u.opts.Log = true, slog.New(slog.NewTextHandler(&logs, nil))
	u.restart(t)
	u.fail(t, "203.0.113.60", 3)
	waitFor(t, "the would-ban line", func() bool {
		return strings.Contains(logs.String(), `msg="would ban" jail=sshd prefix=203.0.113.60/32`)
	})
	if len(u.fw.Transactions()) != 0 || u.fw.Builds() != builds {
		t.Fatalf("a dry run touched the firewall: %+v, %d builds", u.fw.Transactions(), u.fw.Builds()-builds)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("a dry run ran an action")
	}
	if _, err := os.Stat(u.opts.DBDir + "-dry-run"); err != nil {
		t.Fatalf("the dry run's state is not beside the real one: %v", err)
	}
	u.Daemon.Close()
	u.Daemon = nil
	st, err := store.Open(u.opts.DBDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if bans, _ := st.Bans(); len(bans) != 0 {
		t.Fatalf("the dry run's ban reached the real state: %v", bans)
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
