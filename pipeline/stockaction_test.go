package pipeline

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/testsmtp"
	"github.com/portcullis/portcullis/sink/sinktest"
)

// Debian's stock /etc/fail2ban with the most common jail.local (action = %(action_mwl)s):
// iptables-multiport becomes the nftables rule and Debian's own sendmail-whois-lines commands
// compose the mail, with the log's lines of the address, delivered to a real SMTP server (its
// mailcmd, /usr/sbin/sendmail, pointed at a stand-in that speaks SMTP, in sendmail-common.local
// as an admin would).
func TestStockActionMWL(t *testing.T) {
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	srv := testsmtp.Start(t)
	dir := t.TempDir()
	etc := filepath.Join(dir, "fail2ban")
	if err := f2bcorpus.CopyEtc(etc); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "auth.log")
	os.WriteFile(logPath, nil, 0o644)
	os.WriteFile(filepath.Join(etc, "jail.local"), []byte(fmt.Sprintf(`[DEFAULT]
banaction = iptables-multiport
action = %%(action_mwl)s
destemail = admin@example.org
sender = fail2ban@example.org
[sshd]
enabled = true
backend = auto
logpath = %s
maxretry = 2
`, logPath)), 0o644)
	os.WriteFile(filepath.Join(etc, "action.d", "sendmail-common.local"), []byte("[Init]\nmailcmd = "+srv.Sendmail(t)+" -f \"<sender>\" \"<dest>\"\n"), 0o644)
	fw := &sinktest.Firewall{}
	d, err := Start(Options{ConfigDir: etc, Socket: filepath.Join(dir, "s.sock"), DBDir: filepath.Join(dir, "db"), Metrics: "off",
		Poll: 5 * time.Millisecond, Firewall: fw, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	f, _ := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	stamp := time.Now().Format(time.Stamp)
	fmt.Fprintf(f, "%s host sshd[901]: Invalid user oracle from 203.0.113.40 port 40001\n", stamp)
	fmt.Fprintf(f, "%s host sshd[902]: Failed password for invalid user admin from 203.0.113.40 port 40002 ssh2\n", stamp)
	f.Close()
	var ban string
	for end := time.Now().Add(30 * time.Second); ban == "" && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, m := range srv.Mails() {
			if strings.Contains(m, "banned 203.0.113.40") {
				ban = m
			}
		}
	}
	if ban == "" {
		t.Fatalf("no ban mail; mails: %q", srv.Mails())
	}
	els, _ := fw.Elements("sshd")
	if len(els) != 1 || els[0].String() != "203.0.113.40/32" {
		t.Fatalf("firewall: %v", els)
	}
	for _, want := range []string{"Subject: [Fail2Ban] sshd: banned 203.0.113.40 from", "To: admin@example.org",
		"after\n2 attempts against sshd", "Lines containing failures of 203.0.113.40", "Invalid user oracle from 203.0.113.40 port 40001"} {
		if !strings.Contains(ban, want) {
			t.Errorf("the ban mail lacks %q:\n%s", want, ban)
		}
	}
	d.Close()
	d = nil
	var started, stopped bool
	for _, m := range srv.Mails() {
		started = started || strings.Contains(m, "Subject: [Fail2Ban] sshd: started on")
		stopped = stopped || strings.Contains(m, "Subject: [Fail2Ban] sshd: stopped on")
	}
	if !started || !stopped {
		t.Errorf("the jail's started/stopped mails: %v %v", started, stopped)
	}
}
