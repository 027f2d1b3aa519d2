package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

func (s *SyslogServer) allowed(a netip.Addr) bool {
	if len(s.opts.Allow) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range s.opts.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// serverTLS is the listener's TLS configuration: its certificate, and with a client CA, client
// certificates required and verified against it.
func serverTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("needs a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s / %s: %w", certFile, keyFile, err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("cannot read the client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", clientCA)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// peerIdentities are the names of a TLS peer's verified certificate: DNS SANs, then the CN.
func peerIdentities(cs tls.ConnectionState) []string {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	c := cs.PeerCertificates[0]
	ids := append([]string(nil), c.DNSNames...)
	if c.Subject.CommonName != "" {
		ids = append(ids, c.Subject.CommonName)
	}
	return ids
}

// senderMatches reports whether a route's sender lists take a message from sender, whose
// connection proved the identities ids (nil: none).
func (r *SyslogRoute) senderMatches(sender netip.Addr, ids []string) bool {
	if len(r.Senders) == 0 && len(r.Identities) == 0 {
		return true
	}
	for _, p := range r.Senders {
		if p.Contains(sender.Unmap()) {
			return true
		}
	}
	for _, want := range r.Identities {
		for _, id := range ids {
			if want == "*" || strings.EqualFold(want, id) {
				return true
			}
		}
	}
	return false
}

// routeMask is the set of routes (bit i = Routes[i]) that take a message.
func (s *SyslogServer) routeMask(prog []byte, sender netip.Addr, ids []string) uint64 {
	var mask uint64
	for i, r := range s.opts.Routes {
		if len(r.Programs) > 0 {
			ok := false
			for _, p := range r.Programs {
				if string(prog) == p {
					ok = true
					break
				}
			}
			if !ok {
				continue
			}
		}
		if !r.senderMatches(sender, ids) {
			continue
		}
		mask |= 1 << i
	}
	return mask
}
