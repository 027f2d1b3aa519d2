// Package testpki makes throwaway certificates for tests of TLS listeners.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway CA, a server certificate for 127.0.0.1 and client certificates it signs,
// as PEM files in a test's temporary folder.
type PKI struct {
	t                     testing.TB
	Dir                   string
	ca                    *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	Pool                  *x509.CertPool
	CAFile                string
	ServerCert, ServerKey string
	serial                int64
}

// New makes the CA and the server certificate.
func New(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{t: t, Dir: t.TempDir(), Pool: x509.NewCertPool()}
	p.caKey = p.key()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.Pool.AddCert(p.ca)
	p.CAFile = p.write("ca.pem", "CERTIFICATE", der)
	p.ServerCert, p.ServerKey = p.Issue("server", &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return p
}

func (p *PKI) key() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return k
}

func (p *PKI) write(name, kind string, der []byte) string {
	f := filepath.Join(p.Dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return f
}

// Issue signs a certificate from tmpl and writes it and its key; it returns the two files.
func (p *PKI) Issue(name string, tmpl *x509.Certificate) (string, string) {
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial + 1)
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	k := p.key()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &k.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	return p.write(name+".pem", "CERTIFICATE", der), p.write(name+".key", "EC PRIVATE KEY", kder)
}

// Client is a TLS client configuration trusting the CA, presenting a certificate for name (none
// when name is empty).
func (p *PKI) Client(name string) *tls.Config {
	conf := &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1"}
	if name != "" {
		cf, kf := p.Issue(name, &x509.Certificate{DNSNames: []string{name}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		cert, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			p.t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf
}
