// Package testsmtp runs a real SMTP server for tests: Debian's python3-aiosmtpd on loopback,
// storing every mail it receives in a Maildir.
package testsmtp

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// Server is a running aiosmtpd.
type Server struct {
	Addr    *net.TCPAddr
	Maildir string
}

// Start runs aiosmtpd on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		t.Fatalf("python3-aiosmtpd (make deps installs it): %v %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().(*net.TCPAddr), Maildir: filepath.Join(t.TempDir(), "Maildir")}
	l.Close()
	cmd := exec.Command("/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", s.Addr.String(), "-c", "aiosmtpd.handlers.Mailbox", s.Maildir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.Addr.String()); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(end) {
			t.Fatal("the SMTP server did not start")
		}
	}
}

// Mails returns the raw mails received so far, oldest first.
func (s *Server) Mails() []string {
	files, _ := filepath.Glob(filepath.Join(s.Maildir, "new", "*"))
	type m struct {
		at   time.Time
		body string
	}
	var ms []m
	for _, f := range files {
		st, err := os.Stat(f)
		b, err2 := os.ReadFile(f)
		if err == nil && err2 == nil {
			ms = append(ms, m{st.ModTime(), string(b)})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].at.Before(ms[j].at) })
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = ms[i].body
	}
	return out
}

// Sendmail writes a sendmail stand-in that delivers its standard input to s over SMTP (Python's
// smtplib), for actions that pipe a mail into /usr/sbin/sendmail -f FROM TO, and returns the
// command to use as their mailcmd.
func (s *Server) Sendmail(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sendmail.py")
	script := `import smtplib, sys
args = [a for a in sys.argv[1:] if a != "-f"]
msg = sys.stdin.buffer.read()
with smtplib.SMTP("127.0.0.1", ` + strconv.Itoa(s.Addr.Port) + `) as c:
    c.sendmail(args[0], args[1:], msg)
`
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return "/usr/bin/python3 " + path
}
