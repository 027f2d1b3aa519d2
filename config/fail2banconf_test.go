package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// In an /etc/fail2ban layout, fail2ban.conf and fail2ban.local give loglevel, logtarget,
// dbpurgeage and the database to take over; portcullis.conf wins where both set a thing; fail2ban's
// server-only settings are noted; a bad loglevel names its file and line.
func TestFail2banConf(t *testing.T) {
	dir := t.TempDir()
	// As Debian's: the settings in [DEFAULT], an empty [Definition].
	os.WriteFile(filepath.Join(dir, "fail2ban.conf"), []byte(`[DEFAULT]
loglevel = INFO
logtarget = /var/log/fail2ban.log
socket = /var/run/fail2ban/fail2ban.sock
dbfile = /var/lib/fail2ban/fail2ban.sqlite3
dbpurgeage = 1d
[Definition]
[Thread]
`), 0o644)
	os.WriteFile(filepath.Join(dir, "fail2ban.local"), []byte("[Definition]\nloglevel = 10\ndbpurgeage = 3d\n"), 0o644)
	d, err := LoadDaemon(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.LogLevel != "DEBUG" || d.LogTarget != "/var/log/fail2ban.log" || d.DBPurgeAge != 72*time.Hour || d.Fail2banDB != "/var/lib/fail2ban/fail2ban.sqlite3" {
		t.Errorf("from fail2ban.conf: %q %q %v %q", d.LogLevel, d.LogTarget, d.DBPurgeAge, d.Fail2banDB)
	}
	if d.Socket != DefaultSocket || !strings.Contains(strings.Join(d.Notes, "\n"), "socket = /var/run/fail2ban/fail2ban.sock is fail2ban's server's") {
		t.Errorf("fail2ban's socket: ours %q, notes %q", d.Socket, d.Notes)
	}
	os.WriteFile(filepath.Join(dir, "portcullis.conf"), []byte("[Definition]\nlogtarget = STDERR\nloglevel = WARNING\ndbpurgeage = 2h\n"), 0o644)
	if d, _ = LoadDaemon(dir); d.LogLevel != "WARNING" || d.LogTarget != "STDERR" || d.DBPurgeAge != 2*time.Hour {
		t.Errorf("portcullis.conf does not win: %q %q %v", d.LogLevel, d.LogTarget, d.DBPurgeAge)
	}
	os.WriteFile(filepath.Join(dir, "fail2ban.local"), []byte("[Definition]\nloglevel = LOUD\n"), 0o644)
	if _, err := LoadDaemon(dir); err == nil || !strings.Contains(err.Error(), "fail2ban.local:2") {
		t.Errorf("a bad loglevel: %v", err)
	}
}
