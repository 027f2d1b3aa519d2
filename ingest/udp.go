package ingest

import (
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a msghdr and the length the kernel received into it.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// udpBatch reads up to len(bufs) datagrams per recvmmsg(2) into buffers set up once: no
// allocation and no per-message packing per call, which is where golang.org/x/net's ReadBatch
// spent a third of the reader's time.
//
// The socket is put in blocking mode and read with MSG_WAITFORONE on the reader's own thread: the
// call sleeps in the kernel until a datagram arrives and then takes everything queued. Going
// through Go's poller instead costs a failed read, an epoll wait and a goroutine wake-up each time
// the reader catches up, a large share of the receiving process's CPU per message on loopback
// (BenchmarkSyslogUDP compares; figures in bench/results.md).
// SO_RCVTIMEO bounds the sleep so partly filled blocks still get flushed; shutdown(2) wakes it.
type udpBatch struct {
	fd    int
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrAny
	bufs  [][]byte
}

func newUDPBatch(fd, batch, size int, timeout time.Duration) (*udpBatch, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	u := &udpBatch{fd: fd, hdrs: make([]mmsghdr, batch), iovs: make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrAny, batch), bufs: make([][]byte, batch)}
	for i := range u.hdrs {
		u.bufs[i] = make([]byte, size)
		u.iovs[i].Base = &u.bufs[i][0]
		u.iovs[i].SetLen(size)
		h := &u.hdrs[i].hdr
		h.Iov = &u.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&u.names[i]))
	}
	return u, nil
}

// Read waits for datagrams and returns how many arrived (datagram i is Msg(i)). It returns
// EAGAIN when the timeout passed with nothing received, EINTR when a signal cut the wait short,
// and 0 datagrams once the socket is shut down for reading.
func (u *udpBatch) Read() (int, error) {
	for i := range u.hdrs {
		u.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(u.names[i]))
		u.hdrs[i].hdr.Flags = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&u.hdrs[0])), uintptr(len(u.hdrs)), unix.MSG_WAITFORONE, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Msg returns datagram i's payload (valid until the next Read) and its sender.
func (u *udpBatch) Msg(i int) ([]byte, netip.Addr) {
	var from netip.Addr
	switch sa := &u.names[i]; sa.Addr.Family {
	case unix.AF_INET:
		from = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		from = netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(sa)).Addr)
	}
	return u.bufs[i][:u.hdrs[i].n], from
}
