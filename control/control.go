// Package control is the protocol between the daemon and the portcullis CLI: a root-only Unix socket
// carrying length-prefixed JSON (a 4-byte big-endian length, then the JSON document), one request and
// one reply per exchange. The server checks the peer's credentials (SO_PEERCRED): only root or the
// daemon's own user may talk to it.
package control

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// MaxMessage bounds one request or reply.
const MaxMessage = 16 << 20

// Request is one command.
type Request struct {
	Cmd  string   `json:"cmd"`
	Args []string `json:"args,omitempty"`
}

// Reply answers a request. Data holds the command's result; Error is set when OK is false.
type Reply struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	// UnknownJail names the jail a failed request named that does not exist (fail2ban-client
	// says so in its own words).
	UnknownJail string `json:"unknown_jail,omitempty"`
	// After, when set, runs once the reply is written (or could not be): a stop that must not
	// close the connection before its answer is out.
	After func() `json:"-"`
}

// Handler serves one request.
type Handler func(Request) Reply

// ErrorReply builds a failed reply.
func ErrorReply(format string, args ...any) Reply {
	return Reply{Error: fmt.Sprintf(format, args...)}
}

// DataReply builds a successful reply holding v as JSON.
func DataReply(v any) Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return ErrorReply("cannot encode reply: %v", err)
	}
	return Reply{OK: true, Data: b}
}

// WriteMsg writes one length-prefixed JSON message.
func WriteMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return fmt.Errorf("message of %d bytes is over the %d limit", len(b), MaxMessage)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadMsg reads one length-prefixed JSON message into v.
func ReadMsg(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxMessage {
		return fmt.Errorf("message of %d bytes is over the %d limit", n, MaxMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}

// Server listens on the control socket.
type Server struct {
	path    string
	ln      *net.UnixListener
	handler Handler
	log     *slog.Logger
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
}

// Listen creates the socket at path with mode 0600. It refuses a path that is a symlink or a socket
// another live daemon is answering on; a stale socket left by a crash is replaced.
func Listen(path string, handler Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create socket folder: %w", err)
	}
	if st, err := os.Lstat(path); err == nil {
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			return nil, fmt.Errorf("refusing to use control socket %q: it is a symlink", path)
		case st.Mode()&os.ModeSocket == 0:
			return nil, fmt.Errorf("refusing to use control socket %q: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %q is in use by another running daemon", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("cannot remove stale control socket %q: %w", path, err)
		}
	}
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on control socket %q: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot restrict control socket %q: %w", path, err)
	}
	s := &Server{path: path, ln: ln, handler: handler, log: log, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("control socket accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.handle(c)
	}
}

func peerAllowed(c *net.UnixConn) (uint32, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return cred.Uid, cred.Uid == 0 || int(cred.Uid) == os.Getuid()
}

func (s *Server) handle(c *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	if uid, ok := peerAllowed(c); !ok {
		s.log.Warn("control socket: refused a client that is not root", "uid", uid)
		_ = WriteMsg(c, ErrorReply("permission denied: only root may control portcullis"))
		return
	}
	for {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
		var req Request
		if err := ReadMsg(c, &req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				_ = WriteMsg(c, ErrorReply("bad request: %v", err))
			}
			return
		}
		rep := s.handler(req)
		err := WriteMsg(c, rep)
		if rep.After != nil {
			go rep.After() // not on this handler: Close waits for the handlers
		}
		if err != nil {
			return
		}
	}
}

// Close stops accepting, closes open connections, waits for handlers and removes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Call sends one request to the daemon at path and returns its reply.
func Call(path string, req Request, timeout time.Duration) (Reply, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return Reply{}, fmt.Errorf("cannot reach the daemon at %s (is it running?): %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := WriteMsg(c, req); err != nil {
		return Reply{}, fmt.Errorf("cannot send to the daemon: %w", err)
	}
	var rep Reply
	if err := ReadMsg(c, &rep); err != nil {
		return Reply{}, fmt.Errorf("no reply from the daemon: %w", err)
	}
	return rep, nil
}
