package control

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFraming(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMsg(&buf, Request{Cmd: "ban", Args: []string{"sshd", "192.0.2.1"}}); err != nil {
		t.Fatal(err)
	}
	if n := int(buf.Bytes()[3]) | int(buf.Bytes()[2])<<8; n != buf.Len()-4 {
		t.Fatalf("length prefix %d, body %d", n, buf.Len()-4)
	}
	var got Request
	if err := ReadMsg(&buf, &got); err != nil || got.Cmd != "ban" || len(got.Args) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	// An absurd length is refused before allocating.
	bad := bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff})
	if err := ReadMsg(bad, &got); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized message: %v", err)
	}
}

func echo(req Request) Reply {
	if req.Cmd == "echo" {
		return DataReply(req.Args)
	}
	return ErrorReply("unknown command %q", req.Cmd)
}

func TestServerRoundTripAndSocketSafety(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "p.sock")
	s, err := Listen(path, echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", st.Mode().Perm())
	}
	rep, err := Call(path, Request{Cmd: "echo", Args: []string{"a", "b"}}, 5*time.Second)
	if err != nil || !rep.OK {
		t.Fatalf("%+v %v", rep, err)
	}
	var args []string
	if err := json.Unmarshal(rep.Data, &args); err != nil || strings.Join(args, ",") != "a,b" {
		t.Fatalf("reply data %s", rep.Data)
	}
	rep, err = Call(path, Request{Cmd: "nope"}, 5*time.Second)
	if err != nil || rep.OK || !strings.Contains(rep.Error, `unknown command "nope"`) {
		t.Fatalf("unknown command: %+v %v", rep, err)
	}
	// A second daemon on the same live socket is refused.
	if s2, err := Listen(path, echo, nil); err == nil {
		s2.Close()
		t.Fatal("a second server took over a live socket")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after Close: %v", err)
	}

	// A stale socket (its daemon died) is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s, err = Listen(path, echo, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()

	// A symlink at the socket path is refused (it could point anywhere).
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(link, echo, nil); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("symlink: %v", err)
	}
	// So is a regular file.
	file := filepath.Join(dir, "file.sock")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := Listen(file, echo, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
}
