package ingest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

var sysNow = time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)

func classic(msg string) string {
	m := ParseSyslog([]byte(msg), sysNow, time.UTC)
	return strings.TrimSuffix(string(AppendClassicLine(nil, &m, sysNow, []byte("192.0.2.9"), time.UTC)), "\n")
}

func TestParseSyslog(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := classic(in); got != want {
			t.Fatalf("%q:\n got %q\nwant %q", in, got, want)
		}
	}
	// RFC 3164, with and without PRI, host, pid; year inference across new year.
	f("<38>Dec 31 23:59:58 web1 sshd[123]: Failed password for root from 203.0.113.1 port 22 ssh2",
		"Dec 31 23:59:58 web1 sshd[123]: Failed password for root from 203.0.113.1 port 22 ssh2")
	f("<13>Jan  1 00:10:00 sshd: Invalid user x from 203.0.113.2", "Jan  1 00:10:00 192.0.2.9 sshd: Invalid user x from 203.0.113.2")
	f("Jan  1 00:10:00 web2 kernel: [1.0] something", "Jan  1 00:10:00 web2 kernel: [1.0] something")
	f("<13>2026-01-01T00:10:00.5+00:00 web3 app[7]: hello", "Jan  1 00:10:00 web3 app[7]: hello")
	// RFC 5424 with structured data (brackets and quotes in values), nil fields and a BOM.
	f(`<38>1 2026-01-01T00:10:00.123Z web4 sshd 4242 - [timeQuality tzKnown="1"][x@1 t="[b]\"q\""] Failed password for root from 203.0.113.3 port 22 ssh2`,
		"Jan  1 00:10:00 web4 sshd[4242]: Failed password for root from 203.0.113.3 port 22 ssh2")
	f("<38>1 - - sshd - - - \xef\xbb\xbfhello", "Jan  1 00:30:00 192.0.2.9 sshd: hello")
	f("<38>1 2025-12-31T23:10:00-01:00 web5 - - - - msg", "Jan  1 00:10:00 web5 msg")
	// Garbage is a message, not an error.
	f("\x00\x01 plain garbage", "Jan  1 00:30:00 192.0.2.9  \x01 plain garbage")
	// A sender cannot forge a second line.
	f("<38>Jan  1 00:10:00 web6 app: a\nJan  1 00:10:00 web6 sshd[1]: Failed password for root from 6.6.6.6 port 22 ssh2",
		"Jan  1 00:10:00 web6 app: a Jan  1 00:10:00 web6 sshd[1]: Failed password for root from 6.6.6.6 port 22 ssh2")
}

// The UDP reader's stamp cache must give exactly what parsing each message afresh gives, across
// repeated stamps, a now that moves within and across seconds, and the new year.
func TestStampCacheAgrees(t *testing.T) {
	msgs := []string{
		"<38>Jan  1 00:00:00 web1 sshd[1]: a",
		"<38>Jan  1 00:00:00 web1 sshd[1]: b",
		"<38>Dec 31 23:59:59 web1 sshd[1]: c",
		"<38>Jan  2 00:00:00 web1 sshd[1]: d", // a day and a second ahead of some nows below
		"<38>Jan  2 00:00:00 web1 sshd[1]: e",
		"<13>2026-01-01T00:10:00.5+00:00 web3 app[7]: f",
		"garbage without a stamp",
	}
	nows := []time.Time{
		time.Date(2025, 12, 31, 23, 59, 59, 200e6, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 900e6, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 999e6, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
	}
	var c stampCache
	for _, now := range nows {
		for _, msg := range msgs {
			want := ParseSyslog([]byte(msg), now, time.UTC)
			got := parseSyslog([]byte(msg), now, time.UTC, &c)
			if !got.Time.Equal(want.Time) || string(got.Msg) != string(want.Msg) {
				t.Fatalf("now %v, %q: cached %v %q, fresh %v %q", now, msg, got.Time, got.Msg, want.Time, want.Msg)
			}
			wl := AppendClassicLine(nil, &want, now, []byte("h"), time.UTC)
			gl := appendClassicLine(nil, &got, now, []byte("h"), time.UTC, &c)
			if string(gl) != string(wl) {
				t.Fatalf("now %v, %q: cached line %q, fresh %q", now, msg, gl, wl)
			}
		}
	}
}

func collect(t *testing.T, out chan *Block, n int) []string {
	t.Helper()
	var lines []string
	deadline := time.After(10 * time.Second)
	for len(lines) < n {
		select {
		case b := <-out:
			for i := range b.Lines {
				lines = append(lines, fmt.Sprintf("%v|%s", b.Source.Jails, b.Line(i)))
			}
			PutBlock(b)
		case <-deadline:
			t.Fatalf("got %d of %d lines: %q", len(lines), n, lines)
		}
	}
	return lines
}

func TestSyslogServerUDPAndTCP(t *testing.T) {
	out := make(chan *Block, 64)
	s, err := StartSyslog(SyslogOptions{
		UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", Location: time.UTC, MaxMessage: 1024,
		Routes: []SyslogRoute{
			{Jail: 0, Programs: []string{"sshd"}},
			{Jail: 3, Senders: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		},
	}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(u, "<38>Jan  1 00:10:00 web1 sshd[1]: Invalid user a from 203.0.113.1")
	u.Close()
	got := collect(t, out, 1)
	if len(got) != 1 || got[0] != "[9]|Jan  1 00:10:00 web1 sshd[1]: Invalid user a from 203.0.113.1" {
		t.Fatalf("udp: %q (want one line, for jails 0 and 3: bits 0b1001)", got)
	}

	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Newline framing, octet counting, an oversized message between them, and a message from a
	// program only jail 3 reads.
	msg := "<38>1 2026-01-01T00:10:01Z web2 sshd 7 - - Failed password for root from 203.0.113.2 port 22 ssh2"
	fmt.Fprintf(c, "<38>Jan  1 00:10:00 web1 sshd[2]: first\n%d %s", len(msg), msg)
	big := strings.Repeat("x", 2000)
	fmt.Fprintf(c, "%d %s", len(big), big)
	fmt.Fprintf(c, "<38>Jan  1 00:10:02 web1 cron[3]: third\n")
	c.Close()
	got = collect(t, out, 3)
	all := strings.Join(got, "\n")
	for _, want := range []string{"web1 sshd[2]: first", "web2 sshd[7]: Failed password for root from 203.0.113.2", "[8]|Jan  1 00:10:02 web1 cron[3]: third"} {
		if !strings.Contains(all, want) {
			t.Errorf("tcp lines lack %q:\n%s", want, all)
		}
	}
	if s.Stats.Oversized.Load() != 1 {
		t.Errorf("oversized %d, want 1", s.Stats.Oversized.Load())
	}
}

// The UDP reader decodes IPv6 senders from the raw socket address (routing by sender and the
// host of a message that names none both depend on it), and drops datagrams over MaxMessage.
func TestSyslogUDPv6(t *testing.T) {
	out := make(chan *Block, 64)
	s, err := StartSyslog(SyslogOptions{UDP: "[::1]:0", Location: time.UTC, MaxMessage: 1024,
		Routes: []SyslogRoute{{Jail: 1, Senders: []netip.Prefix{netip.MustParsePrefix("::1/128")}}}}, out)
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer s.Close()
	u, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	fmt.Fprint(u, strings.Repeat("x", 2000))
	fmt.Fprint(u, "<13>Jan  1 00:10:00 sshd[9]: Invalid user b from 2001:db8::7")
	got := collect(t, out, 1)
	if want := "[2]|Jan  1 00:10:00 ::1 sshd[9]: Invalid user b from 2001:db8::7"; len(got) != 1 || got[0] != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := s.Stats.Oversized.Load(); n != 1 {
		t.Fatalf("oversized %d, want 1", n)
	}
}

func TestSyslogAllowlist(t *testing.T) {
	out := make(chan *Block, 8)
	s, err := StartSyslog(SyslogOptions{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0",
		Allow:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Routes: []SyslogRoute{{Jail: 0}}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := net.Dial("udp", s.UDPAddr().String())
	fmt.Fprint(u, "<38>Jan  1 00:10:00 web1 sshd[1]: Invalid user a from 203.0.113.1")
	u.Close()
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err == nil {
		fmt.Fprint(c, "<38>Jan  1 00:10:00 web1 sshd[1]: x\n")
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats.Denied.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats.Denied.Load() != 2 || len(out) != 0 {
		t.Fatalf("denied %d, blocks %d; want 2 and 0", s.Stats.Denied.Load(), len(out))
	}
}

func FuzzParseSyslog(f *testing.F) {
	for _, s := range []string{"<38>Jan  1 00:10:00 web1 sshd[1]: x", `<38>1 2026-01-01T00:10:00Z h a 1 - [a b="\]"] m`, "<1>1 - - - - - -", "<>", "<999999>x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ParseSyslog(b, sysNow, time.UTC)
		line := AppendClassicLine(nil, &m, sysNow, []byte("h"), time.UTC)
		if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not exactly one line: %q", line)
		}
	})
}

func TestSyslogTLS(t *testing.T) {
	pki := testpki.New(t)
	out := make(chan *Block, 8)
	s, err := StartSyslog(SyslogOptions{TLS: "127.0.0.1:0", TLSCert: pki.ServerCert, TLSKey: pki.ServerKey,
		Location: time.UTC, Routes: []SyslogRoute{{Jail: 0}}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := tls.Dial("tcp", s.TLSAddr().String(), pki.Client(""))
	if err != nil {
		t.Fatal(err)
	}
	msg := "<38>1 2026-01-01T00:10:01Z web2 sshd 7 - - Failed password for root from 203.0.113.2 port 22 ssh2"
	fmt.Fprintf(c, "%d %s", len(msg), msg)
	c.Close()
	got := collect(t, out, 1)
	if !strings.HasSuffix(got[0], "web2 sshd[7]: Failed password for root from 203.0.113.2 port 22 ssh2") {
		t.Fatalf("tls: %q", got)
	}
	if _, err := StartSyslog(SyslogOptions{TLS: "127.0.0.1:0"}, out); err == nil {
		t.Fatal("TLS without a certificate accepted")
	}
}

// FuzzFrameReader: any byte stream splits into messages no longer than the limit, made of input
// bytes only, and reading always ends.
func FuzzFrameReader(f *testing.F) {
	for _, s := range []string{"5 hello3 abc", "line one\nline two\n", "99999999999 x", "12 short", "\n\n\n", "0 x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 64
		fr := NewFrameReader(bytes.NewReader(data), max, nil)
		total := 0
		for i := 0; i <= len(data)+1; i++ {
			msg, err := fr.Next()
			if len(msg) > max+1 {
				t.Fatalf("message of %d bytes over the %d limit", len(msg), max)
			}
			total += len(msg)
			if total > len(data) {
				t.Fatalf("%d message bytes from %d input bytes", total, len(data))
			}
			if err != nil {
				return
			}
		}
		t.Fatal("reading did not end")
	})
}
