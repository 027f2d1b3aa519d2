package matcher

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// CVE-2013-7176 (postfix.conf) and CVE-2013-7177 (cyrus-imap.conf): fail2ban's filters before
// 0.8.11 were not anchored and let a catch-all run up to "[<HOST>]", so an e-mail address or user
// name the client wrote, holding "[ADDR]", made them report ADDR and ban a bystander. The lines
// below are such attacks (the cyrus one behind a client that 0.8.10's <HOST> could not read, an
// IPv6 address, so that the search went on into the user name). The 0.8.10 regexes (the control, with that release's <HOST>) report the
// bystander; our filters and fail2ban 1.0.2's must report the client or nothing.
func TestCVE2013_7176_7177(t *testing.T) {
	needCorpus(t)
	const victim = "203.0.113.77"
	now := time.Date(2026, 8, 14, 12, 0, 0, 0, time.UTC)
	attacks := map[string][]string{
		"postfix": {
			`Aug 14 11:58:59 mail postfix/smtpd[1234]: NOQUEUE: reject: RCPT from unknown[192.0.2.250]: 550 5.1.1 <"x[` + victim + `]: 554"@example.org>: Recipient address rejected: User unknown in local recipient table; from=<a@example.net> to=<"x[` + victim + `]: 554"@example.org> proto=ESMTP helo=<h>`,
			`Aug 14 11:58:59 mail postfix/smtpd[1234]: NOQUEUE: reject: RCPT from unknown[192.0.2.250]: 554 5.7.1 <u@example.org>: Relay access denied; from=<"y[` + victim + `]: 554"@example.net> to=<u@example.org> proto=ESMTP helo=<[` + victim + `]: 554>`,
		},
		"cyrus-imap": {
			`Aug 14 11:58:59 mail cyrus/imap[1234]: badlogin: [2001:db8::200] plaintext x badlogin: y [` + victim + `] z SASL(-13): authentication failure: checkpass failed`,
		},
	}
	// fail2ban 0.8.10's own regexes and its <HOST> (a host name or IPv4, no IPv6), as an F-ID.
	old := t.TempDir()
	const host = `(?:::f{4,6}:)?<F-ID>[\w\-.^_]*\w</F-ID>`
	os.WriteFile(filepath.Join(old, "postfix.conf"), []byte("[Definition]\nfailregex = reject: RCPT from (.*)\\["+host+"\\]: 554\n"), 0o644)
	os.WriteFile(filepath.Join(old, "cyrus-imap.conf"), []byte("[Definition]\nfailregex = badlogin: \\S+ ?\\["+host+"\\] \\S+ .*?\\[?SASL\\(-13\\): authentication failure: .*\\]?$\n"), 0o644)
	run := func(dir, name, line string) Result {
		t.Helper()
		f, errs := config.LoadFilter(dir, name, nil)
		if errs != nil {
			t.Fatalf("%s/%s: %v", dir, name, errs)
		}
		m, err := New([]JailSpec{{ID: 0, Name: name, Filter: f}}, Options{Now: func() time.Time { return now }, Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		w, err := m.NewWorker()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		r, err := w.Explain(0, []byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for name, lines := range attacks {
		for _, line := range lines {
			if r := run(old, name, line); !r.Matched || r.ID != victim {
				t.Errorf("control: fail2ban 0.8.10's %s reports %q (matched %v), not the bystander, for\n  %s", name, r.ID, r.Matched, line)
			}
			for _, dir := range []string{ownFilterDir, f2bcorpus.FilterDir()} {
				if r := run(dir, name, line); r.Matched && r.ID == victim {
					t.Errorf("%s/%s bans the bystander for\n  %s", dir, name, line)
				}
			}
		}
	}
}
