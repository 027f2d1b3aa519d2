package ingest

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
)

// waitCount waits up to 10 s for a counter to reach want; the bound only keeps a broken server
// from hanging the suite.
func waitCount(t *testing.T, what string, c *atomic.Uint64, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c.Load() != want {
		t.Fatalf("%s: %d, want %d", what, c.Load(), want)
	}
}

// With a client CA, a jail's syslog_host = cert:NAME takes the messages of connections whose
// verified certificate has that name, and no other's; a client without a certificate is refused.
func TestSyslogTLSClientIdentity(t *testing.T) {
	pki := testpki.New(t)
	out := make(chan *Block, 64)
	s, err := StartSyslog(SyslogOptions{TLS: "127.0.0.1:0", TLSCert: pki.ServerCert, TLSKey: pki.ServerKey, TLSClientCA: pki.CAFile,
		Location: time.UTC, Routes: []SyslogRoute{{Jail: 0, Identities: []string{"web1.example"}}, {Jail: 1}}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// send writes msg and waits up to wait for the server to refuse the connection: nil when it
	// did not (the read timed out), the refusal otherwise.
	send := func(conf *tls.Config, msg string, wait time.Duration) error {
		c, err := tls.Dial("tcp", s.TLSAddr().String(), conf)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := fmt.Fprintf(c, "%d %s", len(msg), msg); err != nil {
			return err
		}
		// A refused client learns it on its first read (TLS 1.3 verifies the client after the
		// client's handshake is done).
		c.SetReadDeadline(time.Now().Add(wait))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	}
	if err := send(pki.Client("web1.example"), "<38>Jan  1 00:10:01 web1 sshd[1]: from web1", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := send(pki.Client("web2.example"), "<38>Jan  1 00:10:02 web2 sshd[2]: from web2", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// However loaded the machine, the refusal comes well within 10 s.
	if err := send(pki.Client(""), "<38>Jan  1 00:10:03 anon sshd[3]: without a certificate", 10*time.Second); err == nil {
		t.Error("a client without a certificate was not refused")
	}
	// A line goes once to the set of jails that read it: [3] is jails 0 and 1, [2] jail 1 alone.
	got := collect(t, out, 2)
	slices.Sort(got)
	want := "[[2]|Jan  1 00:10:02 web2 sshd[2]: from web2 [3]|Jan  1 00:10:01 web1 sshd[1]: from web1]"
	if fmt.Sprint(got) != want {
		t.Fatalf("lines by jail set %q\nwant %s", got, want)
	}
	select {
	case b := <-out:
		t.Fatalf("a line without a certificate arrived: %q", b.Buf)
	case <-time.After(100 * time.Millisecond):
	}
}

// One sender cannot take every TCP slot: its connections beyond MaxConnsPerSender are refused and
// counted (with one warning, not one per refusal), and another sender still gets through.
func TestSyslogTCPPerSenderCap(t *testing.T) {
	out := make(chan *Block, 64)
	h := &countingHandler{}
	s, err := StartSyslog(SyslogOptions{TCP: "127.0.0.1:0", MaxConnsPerSender: 4, MaxConns: 8, Location: time.UTC,
		Routes: []SyslogRoute{{Jail: 0}}, Log: slog.New(h)}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var hog []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", s.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		hog = append(hog, c)
	}
	defer func() {
		for _, c := range hog {
			c.Close()
		}
	}()
	waitCount(t, "refused connections", &s.Stats.Refused, 46)
	if w := h.warns.Load(); w != 1 {
		t.Errorf("%d warnings for 46 refusals, want 1", w)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "<38>Jan  1 00:10:01 web9 sshd[1]: the other sender\n")
	c.Close()
	if got := collect(t, out, 1); !strings.Contains(got[0], "the other sender") {
		t.Fatalf("got %q", got)
	}
}

// A silent connection is closed after IdleTimeout, a broken octet count closes its stream, and an
// overlong line the stream ends in is dropped: each counted.
func TestSyslogTCPIdleFramingOversized(t *testing.T) {
	out := make(chan *Block, 64)
	s, err := StartSyslog(SyslogOptions{TCP: "127.0.0.1:0", IdleTimeout: 300 * time.Millisecond, MaxMessage: 300,
		Location: time.UTC, Routes: []SyslogRoute{{Jail: 0}}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	idle, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waitCount(t, "idle connections closed", &s.Stats.Idle, 1)

	bad, _ := net.Dial("tcp", s.TCPAddr().String())
	fmt.Fprintf(bad, "12x <38>Jan  1 00:10:01 web1 sshd[1]: x\n")
	waitCount(t, "framing errors", &s.Stats.Framing, 1)
	bad.Close()

	long, _ := net.Dial("tcp", s.TCPAddr().String())
	fmt.Fprintf(long, "<38>Jan  1 00:10:01 web1 sshd[1]: %s", strings.Repeat("A", 1000))
	long.Close()
	waitCount(t, "oversized messages", &s.Stats.Oversized, 1)
}
