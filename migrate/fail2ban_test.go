package migrate

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/store"
)

// A database written by fail2ban's own code: bans in force (IPv4, IPv6, a mapped IPv4, a
// permanent one) come over with their start, end and count; an expired ban leaves its count only;
// an address banned in two jails counts both in its overall history; rows no fail2ban writes (a
// missing jail, a host name, an absurd ban time) are skipped and said.
func TestReadFail2banDB(t *testing.T) {
	now := time.Now().Unix()
	path := filepath.Join(t.TempDir(), "fail2ban.sqlite3")
	err := f2bcorpus.WriteDB(path, []f2bcorpus.DBBan{
		{Jail: "sshd", IP: "192.0.2.1", Time: now - 100, BanTime: 600, BanCount: 1},
		{Jail: "sshd", IP: "2001:db8::5", Time: now - 50, BanTime: 86400, BanCount: 3},
		{Jail: "sshd", IP: "::ffff:192.0.2.9", Time: now - 10, BanTime: 600, BanCount: 2},
		{Jail: "recidive", IP: "198.51.100.9", Time: now - 7*86400, BanTime: -1, BanCount: 2},
		{Jail: "sshd", IP: "198.51.100.9", Time: now - 7200, BanTime: 600, BanCount: 4}, // over
		{Jail: "nginx-http-auth", IP: "203.0.113.4", Time: now - 86400, BanTime: 3600, BanCount: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rows fail2ban never writes, put there behind its back.
	sql := fmt.Sprintf(`import sqlite3; c = sqlite3.connect(%q)
c.execute("INSERT INTO bips VALUES('bad.example.org', 'sshd', %d, 600, 1, NULL)")
c.execute("INSERT INTO bips VALUES('192.0.2.77', 'sshd', %d, 99999999999999999, 1, NULL)")
c.execute("INSERT INTO bips VALUES('192.0.2.78', '', %d, 600, 1, NULL)")
c.commit()`, path, now, now, now)
	if out, err := exec.Command("/usr/bin/python3", "-c", sql).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	d, err := Read(path, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range d.Bans {
		end := "forever"
		if b.End != 0 {
			end = fmt.Sprint(b.End - now)
		}
		got = append(got, fmt.Sprintf("%s %s start%+d end%s count%d", b.Jail, b.Prefix, b.Start-now, "+"+end, b.Count))
	}
	want := []string{
		"recidive 198.51.100.9/32 start-604800 end+forever count2",
		"sshd 192.0.2.1/32 start-100 end+500 count1",
		"sshd 192.0.2.9/32 start-10 end+590 count2",
		"sshd 2001:db8::5/128 start-50 end+86350 count3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("bans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d.Version != 4 || d.Expired != 2 {
		t.Errorf("version %d, expired %d; want 4, 2", d.Version, d.Expired)
	}
	p := netip.MustParsePrefix("198.51.100.9/32")
	if h := d.History[p]; h.Count != 6 || h.Last != now-7200 {
		t.Errorf("overall history of %s: %+v, want 6 bans, last 2 h ago", p, h)
	}
	if h := d.JailHistory["sshd"][p]; h != (store.History{Count: 4, Last: now - 7200}) {
		t.Errorf("sshd history of %s: %+v", p, h)
	}
	if len(d.Skipped) != 3 {
		t.Errorf("skipped %d rows, want 3: %q", len(d.Skipped), d.Skipped)
	}
}

// Not a fail2ban database, and a missing file: errors that say so.
func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "none.sqlite3"), 0); err == nil {
		t.Error("a missing file read")
	}
	other := filepath.Join(dir, "other.sqlite3")
	if out, err := exec.Command("/usr/bin/python3", "-c", fmt.Sprintf("import sqlite3; sqlite3.connect(%q).execute('CREATE TABLE t(x)')", other)).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := Read(other, 0); err == nil || !strings.Contains(err.Error(), "not a fail2ban database") {
		t.Errorf("another database: %v", err)
	}
}
