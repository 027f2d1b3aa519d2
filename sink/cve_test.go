package sink

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/testsmtp"
)

// CVE-2021-32749: fail2ban's mail-whois actions pipe a whois reply (text whoever holds the banned
// address writes) into mailutils' mail, which ran a line "~! cmd" as a command; fail2ban 0.11.3
// answered with mail -E 'set escape'. Debian's stock mail-whois runs here as written, with a whois
// whose reply carries "~!" escapes, command substitutions and backticks:
//   - through real GNU mail (Debian 12's mailutils, delivering to a real SMTP server on loopback):
//     the mail arrives with the reply verbatim and nothing runs;
//   - through a mail that honours "~!" without a terminal, as mailutils did before its fix, unless
//     given 'set escape': nothing runs, so the guard reaches mail intact. The same mail without the
//     guard runs the escape: the control, so the test can fail.
func TestCVE2021_32749MailWhois(t *testing.T) {
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	if _, err := exec.LookPath("/usr/bin/mail"); err != nil {
		t.Fatal("GNU mail (make deps installs mailutils) is missing")
	}
	dir := t.TempDir()
	marks := []string{filepath.Join(dir, "M1"), filepath.Join(dir, "M2"), filepath.Join(dir, "M3"), filepath.Join(dir, "M4")}
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	reply := []string{"% whois reply for the address", "~! touch " + marks[0], "descr: $(touch " + marks[1] + ")", "descr: `touch " + marks[2] + "`", "~!touch " + marks[3]}
	script := "#!/bin/sh\n"
	for _, l := range reply {
		script += "printf '%s\\n' '" + strings.ReplaceAll(l, "'", `'\''`) + "'\n"
	}
	os.WriteFile(filepath.Join(bin, "whois"), []byte(script), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	// Debian's own mail-whois.
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(filepath.Join(etc, "filter.d"), 0o755)
	os.MkdirAll(filepath.Join(etc, "action.d"), 0o755)
	stock := filepath.Join(f2bcorpus.Root(), "etc", "fail2ban", "action.d")
	for _, f := range []string{"mail-whois.conf", "mail-whois-common.conf"} {
		b, err := os.ReadFile(filepath.Join(stock, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(etc, "action.d", f), b, 0o644)
	}
	os.WriteFile(filepath.Join(etc, "filter.d", "x.conf"), []byte("[Definition]\nfailregex = ^x <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "jail.conf"), []byte("[x]\nenabled = true\nlogpath = /var/log/x.log\naction = mail-whois[dest=\"root@example.org\"]\n"), 0o644)
	cfg, err := config.Load(etc, config.Options{Resolve: func(string) ([]netip.Addr, error) { return nil, fmt.Errorf("no DNS") }})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.Jails[0].Actions[0].Commands["actionban"], "mail -E 'set escape'") {
		t.Fatalf("the stock actionban lost its guard:\n%s", cfg.Jails[0].Actions[0].Commands["actionban"])
	}
	ban := func(t *testing.T) {
		st, _ := execFixture(t, nil, time.Minute)
		e, _ := NewExec(st, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err := e.SetJails(cfg.Jails); err != nil {
			t.Fatal(err)
		}
		c := liveBan("192.0.2.7/32")
		c.Ban.Jail = "x"
		commit(t, st, e, []Change{c})
		t.Cleanup(e.Close)
	}
	noMarks := func(t *testing.T) {
		t.Helper()
		for _, m := range marks {
			if _, err := os.Stat(m); err == nil {
				t.Fatalf("the whois reply ran %s", filepath.Base(m))
			}
		}
	}

	t.Run("GNU mail", func(t *testing.T) {
		srv := testsmtp.Start(t)
		rc := filepath.Join(dir, "mailrc")
		os.WriteFile(rc, []byte(fmt.Sprintf("set sendmail=\"smtp://%s\"\n", srv.Addr)), 0o644)
		t.Setenv("MAILRC", rc)
		ban(t)
		var got string
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end) && got == ""; time.Sleep(10 * time.Millisecond) {
			for _, m := range srv.Mails() {
				if strings.Contains(m, "banned 192.0.2.7") {
					got = m
				}
			}
		}
		if got == "" {
			t.Fatalf("no ban mail arrived; mails: %q", srv.Mails())
		}
		for _, l := range reply {
			if !strings.Contains(got, l) {
				t.Errorf("the mail lacks the whois line %q:\n%s", l, got)
			}
		}
		noMarks(t)
	})

	t.Run("mail honouring ~! without a terminal", func(t *testing.T) {
		body := filepath.Join(dir, "body")
		shim := `#!/bin/sh
esc=1
while [ $# -gt 0 ]; do
  case "$1" in
    -E) [ "$2" = "set escape" ] && esc=0; shift 2 ;;
    -s) shift 2 ;;
    *) shift ;;
  esac
done
while IFS= read -r line; do
  case "$line" in "~!"*) [ $esc = 1 ] && sh -c "${line#??}" ;; esac
  printf '%s\n' "$line" >> ` + body + `
done
`
		os.WriteFile(filepath.Join(bin, "mail"), []byte(shim), 0o755)
		defer os.Remove(filepath.Join(bin, "mail"))
		// The control: without the guard, this mail runs the escape.
		ctl := exec.Command("sh", "-c", "whois 192.0.2.7 | mail -s subject root")
		if out, err := ctl.CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if _, err := os.Stat(marks[0]); err != nil {
			t.Fatal("control: the emulated mail did not run the ~! escape, so it proves nothing")
		}
		for _, m := range marks {
			os.Remove(m)
		}
		os.Remove(body)
		ban(t)
		got := waitFile(t, body, "~!touch "+marks[3]) // the reply's last line: mail writes line by line
		if !strings.Contains(got, "~! touch "+marks[0]) {
			t.Errorf("the whois reply did not reach mail whole:\n%s", got)
		}
		noMarks(t)
	})
}
