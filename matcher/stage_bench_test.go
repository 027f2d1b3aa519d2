package matcher

import (
	"testing"
	"time"
)

// BenchmarkDateDetect: finding and parsing a line's date with the default templates (what every
// hit line costs), for the common stamp layouts.
func BenchmarkDateDetect(b *testing.B) {
	d, err := newDateDetector("")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ name, line string }{
		{"syslog", "Mar  1 10:01:02 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 51234 ssh2"},
		{"iso8601", "2026-03-01T10:01:02.123456+01:00 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 51234 ssh2"},
		{"apache", `203.0.113.7 - - [01/Mar/2026:10:01:02 +0100] "GET /wp-login.php HTTP/1.1" 404 162 "-" "curl/8.5.0"`},
	} {
		b.Run(c.name, func(b *testing.B) {
			line := []byte(c.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, ok, _ := d.find(line, now, time.UTC); !ok {
					b.Fatal("no date")
				}
			}
		})
	}
}

// BenchmarkConfirm: the precision stage for one line Hyperscan hit — date, prefregex-free sshd
// failregex with captures, address parse — through Explain, which also runs the scan; measured
// per line.
func BenchmarkConfirm(b *testing.B) {
	m := newMatcher(b, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(b)})
	w := newWorker(b, m)
	line := []byte("Nov 24 10:01:02 web1 sshd[1234]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if res, err := w.Explain(0, line); err != nil || !res.Matched {
			b.Fatal("no match", err)
		}
	}
}

// BenchmarkConfirmRegex: one sshd failregex with its captures on one failure line (date cut), by
// PCRE2 (one match, as a batch of one) and by Go's regexp, the reference it replaced.
func BenchmarkConfirmRegex(b *testing.B) {
	m := newMatcher(b, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(b)})
	w := newWorker(b, m)
	r := &m.jails[0].fail[0]
	if r.pc == nil {
		b.Fatal("the sshd failregex is not compiled by PCRE2")
	}
	text := []byte("web1 sshd[1234]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2")
	var c captures
	b.Run("pcre2", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			if !w.exec(r, text, &c) || string(c.get("ip4")) != "203.0.113.7" {
				b.Fatal("no match")
			}
		}
	})
	b.Run("go-regexp", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			if !r.execGo(text, &c) || string(c.get("ip4")) != "203.0.113.7" {
				b.Fatal("no match")
			}
		}
	})
}
