package ban

import (
	"fmt"
	"net"
	"net/netip"
)

// LocalAddrs lists the addresses of every local interface.
func LocalAddrs() []netip.Addr {
	var out []netip.Addr
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ad, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ad.Unmap())
			}
		}
	}
	return out
}

// Protected reports whether addr may never be banned in jail, and why.
func (m *Manager) Protected(jail uint16, addr netip.Addr) error {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return &ProtectedError{Addr: addr, Reason: "not an address"}
	case addr.IsLoopback():
		return &ProtectedError{Addr: addr, Reason: "loopback addresses are never banned"}
	case addr.IsUnspecified(), addr.IsMulticast():
		return &ProtectedError{Addr: addr, Reason: "not a unicast address"}
	}
	if int(jail) >= len(m.pols) {
		return ErrUnknownJail
	}
	p := &m.pols[jail]
	for _, pr := range p.IgnoreIP {
		if pr.Contains(addr) {
			return &ProtectedError{Addr: addr, Reason: fmt.Sprintf("in ignoreip of jail %s (%s)", p.Name, pr)}
		}
	}
	if p.IgnoreSelf {
		for _, pr := range m.self {
			if pr.Contains(addr) {
				return &ProtectedError{Addr: addr, Reason: "an address of this machine (ignoreself)"}
			}
		}
	}
	if p.IgnoreCommand != nil {
		ignore, err := p.IgnoreCommand.Ignore(addr, m.now())
		if err != nil {
			m.Stats[jail].IgnoreCommandErrors.Add(1)
		}
		if ignore {
			return &ProtectedError{Addr: addr, Reason: "ignorecommand said so"}
		}
	}
	return nil
}

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

// protectedInside reports whether a protected range (loopback, ignoreip, ignoreself) overlaps pfx,
// so that banning the whole of pfx would ban a protected address too.
func (m *Manager) protectedInside(jail uint16, pfx netip.Prefix) bool {
	if pfx.Overlaps(loopback4) || pfx.Contains(netip.IPv6Loopback()) {
		return true
	}
	p := &m.pols[jail]
	for _, pr := range p.IgnoreIP {
		if pr.Overlaps(pfx) {
			return true
		}
	}
	if p.IgnoreSelf {
		for _, pr := range m.self {
			if pr.Overlaps(pfx) {
				return true
			}
		}
	}
	return false
}
