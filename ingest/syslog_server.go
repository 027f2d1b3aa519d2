package ingest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// SyslogRoute selects the messages a jail reads: by program (APP-NAME or tag) and by sender. A
// sender matches when its address is in Senders or, over TLS with a verified client certificate,
// one of the certificate's names (DNS SANs, then the subject's CN) is in Identities ("*": any
// verified certificate). With both lists empty every sender matches. A TCP peer's address is
// what the handshake proved; a UDP datagram's source address proves nothing (anyone on the path
// can forge it); a certificate's identity is the only attribution that holds against forgery.
type SyslogRoute struct {
	Jail       int
	Programs   []string
	Senders    []netip.Prefix
	Identities []string
}

// SyslogOptions configure the network listeners.
type SyslogOptions struct {
	UDP, TCP string // listen addresses; empty: off
	// TLS is a listen address for syslog over TLS (RFC 5425: octet counting, newline framing also
	// taken) with the server certificate and key in TLSCert and TLSKey (PEM files). With
	// TLSClientCA (PEM), every client must present a certificate that CA signed.
	TLS                          string
	TLSCert, TLSKey, TLSClientCA string
	Allow                        []netip.Prefix // senders allowed; empty: everyone
	MaxMessage                   int            // bytes; 64 KiB when zero
	MaxConns                     int            // concurrent TCP connections; 1024 when zero
	// MaxConnsPerSender caps one sender address's concurrent TCP connections, so one sender
	// cannot take every slot; 16 when zero.
	MaxConnsPerSender int
	// IdleTimeout closes a TCP connection that sent nothing for this long (a sender's syslog
	// daemon reconnects when it has something to say); 5 minutes when zero.
	IdleTimeout time.Duration
	Routes      []SyslogRoute
	Location    *time.Location
	Now         func() time.Time
	Log         *slog.Logger
	// FlushEvery bounds how long a message waits in a partly filled block; 20 ms when zero.
	FlushEvery time.Duration
}

// SyslogStats counts what the listeners did.
type SyslogStats struct {
	Messages  atomic.Uint64 // accepted and routed to at least one jail
	Unrouted  atomic.Uint64 // accepted, but no jail reads them
	Denied    atomic.Uint64 // from a sender outside the allowlist
	Oversized atomic.Uint64 // longer than MaxMessage, dropped
	Dropped   atomic.Uint64 // lines dropped because the pipeline was full
	Conns     atomic.Int64  // open TCP connections
	Refused   atomic.Uint64 // TCP connections refused: MaxConns or MaxConnsPerSender reached
	Idle      atomic.Uint64 // TCP connections closed after IdleTimeout without a message
	Framing   atomic.Uint64 // TCP streams closed on a framing error (a bad octet count)
}

// SyslogServer receives syslog over UDP and TCP (RFC 6587 octet counting and newline framing),
// turns every message into a classic syslog line and sends blocks to the pipeline. Network input
// never waits for a full pipeline: what does not fit is dropped and counted.
type SyslogServer struct {
	opts  SyslogOptions
	Stats SyslogStats
	out   chan<- *Block
	udp   *net.UDPConn
	tcp   net.Listener
	tls   net.Listener
	wg    sync.WaitGroup

	udpFD   int // s.udp's descriptor, read by the UDP reader itself
	udpDone chan struct{}
	closing atomic.Bool

	mu       sync.Mutex
	sources  map[uint64]*Source
	conns    map[net.Conn]struct{}
	perAddr  map[netip.Addr]int // open TCP connections by sender
	lastWarn time.Time          // of a refused connection: at most one warning per refuseWarnEvery
}

// refuseWarnEvery spaces the warnings about refused connections; the count is in Stats.Refused.
const refuseWarnEvery = 10 * time.Second

// StartSyslog opens the configured listeners.
func StartSyslog(opts SyslogOptions, out chan<- *Block) (*SyslogServer, error) {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = 64 * 1024
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1024
	}
	if opts.MaxConnsPerSender <= 0 {
		opts.MaxConnsPerSender = 16
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 20 * time.Millisecond
	}
	if len(opts.Routes) > 64 {
		return nil, fmt.Errorf("at most 64 jails may read syslog, got %d", len(opts.Routes))
	}
	s := &SyslogServer{opts: opts, out: out, sources: make(map[uint64]*Source), conns: make(map[net.Conn]struct{}),
		perAddr: make(map[netip.Addr]int)}
	if opts.UDP != "" {
		addr, err := net.ResolveUDPAddr("udp", opts.UDP)
		if err != nil {
			return nil, fmt.Errorf("syslog_udp %q: %w", opts.UDP, err)
		}
		c, err := net.ListenUDP("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("cannot listen for syslog on udp %s: %w", opts.UDP, err)
		}
		_ = c.SetReadBuffer(8 << 20)
		rc, err := c.SyscallConn()
		if err == nil {
			err = rc.Control(func(fd uintptr) { s.udpFD = int(fd) })
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("syslog udp %s: %w", opts.UDP, err)
		}
		s.udp, s.udpDone = c, make(chan struct{})
		s.wg.Add(1)
		go s.serveUDP()
	}
	if opts.TCP != "" {
		ln, err := net.Listen("tcp", opts.TCP)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("cannot listen for syslog on tcp %s: %w", opts.TCP, err)
		}
		s.tcp = ln
		s.wg.Add(1)
		go s.serveStream(ln)
	}
	if opts.TLS != "" {
		conf, err := serverTLS(opts.TLSCert, opts.TLSKey, opts.TLSClientCA)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("syslog over TLS on %s: %w", opts.TLS, err)
		}
		ln, err := tls.Listen("tcp", opts.TLS, conf)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("cannot listen for syslog on tls %s: %w", opts.TLS, err)
		}
		s.tls = ln
		s.wg.Add(1)
		go s.serveStream(ln)
	}
	return s, nil
}

// TLSAddr reports the TLS listener's address.
func (s *SyslogServer) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// UDPAddr and TCPAddr report the bound addresses (useful with port 0).
func (s *SyslogServer) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// TCPAddr reports the TCP listener's address.
func (s *SyslogServer) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Close stops the listeners and connections and waits for them; partly filled blocks are sent.
func (s *SyslogServer) Close() {
	if s.udp != nil {
		// The reader sleeps in recvmmsg on the raw descriptor: wake it with shutdown and let it
		// return before the descriptor is closed, so it can never read a reused descriptor number.
		s.closing.Store(true)
		_ = unix.Shutdown(s.udpFD, unix.SHUT_RD)
		<-s.udpDone
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tls != nil {
		s.tls.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *SyslogServer) source(mask uint64) *Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[mask]
	if !ok {
		src = &Source{Name: "syslog", Stats: &SourceStats{}}
		for i, r := range s.opts.Routes {
			if mask&(1<<i) != 0 {
				src.Jails = src.Jails.With(r.Jail)
			}
		}
		s.sources[mask] = src
	}
	return src
}

func (s *SyslogServer) serveUDP() {
	defer s.wg.Done()
	defer close(s.udpDone)
	bt := s.newBatcher()
	defer bt.flush()
	const batch = 64
	u, err := newUDPBatch(s.udpFD, batch, 65536, s.opts.FlushEvery)
	if err != nil {
		s.opts.Log.Error("syslog udp", "err", err)
		return
	}
	var host []byte
	for {
		n, err := u.Read()
		if s.closing.Load() {
			return // Close shut the socket down and waits for this before closing it
		}
		now := s.opts.Now() // one clock read per batch: the messages arrived together
		switch err {
		case nil:
		case unix.EAGAIN: // quiet for FlushEvery
			bt.flush()
			continue
		case unix.EINTR: // a signal (the Go runtime preempts threads with one)
			if bt.due(now) {
				bt.flush()
			}
			continue
		default:
			s.opts.Log.Warn("syslog udp read", "err", err)
			time.Sleep(s.opts.FlushEvery) // never spin on a persistent error
			continue
		}
		for i := range n {
			msg, sender := u.Msg(i)
			if !s.allowed(sender) {
				s.Stats.Denied.Add(1)
				continue
			}
			if len(msg) > s.opts.MaxMessage {
				s.Stats.Oversized.Add(1)
				continue
			}
			host = sender.Unmap().AppendTo(host[:0])
			bt.add(msg, sender, host, now)
		}
		if bt.due(now) {
			bt.flush()
		}
	}
}

func (s *SyslogServer) serveStream(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.opts.Log.Warn("syslog tcp accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		sender := ap.Addr()
		if !s.allowed(sender) {
			s.Stats.Denied.Add(1)
			c.Close()
			continue
		}
		if !s.admit(c, sender) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveConn(c, sender)
	}
}

// serveConn reads one TCP stream. The framing is chosen per message, as RFC 6587 allows: a message
// starting with a digit is octet-counted ("LEN SP MSG"), anything else ends at a newline.
func (s *SyslogServer) serveConn(c net.Conn, sender netip.Addr) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if s.perAddr[sender]--; s.perAddr[sender] <= 0 {
			delete(s.perAddr, sender)
		}
		s.mu.Unlock()
		s.Stats.Conns.Add(-1)
		c.Close()
	}()
	var ids []string
	if tc, ok := c.(*tls.Conn); ok {
		// Handshake first, with time to spare: a handshake cut short by the short read deadlines
		// below would fail for good.
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			s.opts.Log.Debug("syslog tls handshake", "sender", sender, "err", err)
			return
		}
		_ = tc.SetDeadline(time.Time{})
		ids = peerIdentities(tc.ConnectionState())
	}
	bt := s.newBatcher()
	bt.ids = ids
	defer bt.flush()
	host := sender.Unmap().AppendTo(nil)
	r := bufio.NewReaderSize(&deadlineReader{c: c, every: s.opts.FlushEvery, idle: s.opts.IdleTimeout, bt: bt}, 64*1024)
	fr := &FrameReader{r: r, max: s.opts.MaxMessage, oversized: func() { s.Stats.Oversized.Add(1) }}
	for {
		msg, err := fr.Next()
		if len(msg) > 0 {
			now := s.opts.Now()
			bt.add(msg, sender, host, now)
			if bt.due(now) {
				bt.flush()
			}
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
			case errors.As(err, &ne) && ne.Timeout():
				s.Stats.Idle.Add(1)
			case errors.Is(err, ErrFraming):
				s.Stats.Framing.Add(1)
				s.opts.Log.Debug("syslog tcp: framing error; closing the connection", "sender", sender, "err", err)
			}
			return
		}
	}
}

// admit registers a new connection unless the sender or the server is at its cap; a refusal is
// counted and warned about at most once per refuseWarnEvery.
func (s *SyslogServer) admit(c net.Conn, sender netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	why := ""
	switch {
	case len(s.conns) >= s.opts.MaxConns:
		why = "too many connections"
	case s.perAddr[sender] >= s.opts.MaxConnsPerSender:
		why = "too many connections from this sender"
	}
	if why != "" {
		s.Stats.Refused.Add(1)
		if now := time.Now(); now.Sub(s.lastWarn) >= refuseWarnEvery {
			s.lastWarn = now
			s.opts.Log.Warn("syslog tcp: refusing connections", "reason", why, "sender", sender, "refused_total", s.Stats.Refused.Load())
		}
		return false
	}
	s.conns[c] = struct{}{}
	s.perAddr[sender]++
	s.Stats.Conns.Add(1)
	return true
}
