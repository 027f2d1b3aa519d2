package fleet

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream run inside the daemon (fleet = embedded): its file
// store under the state folder, listening on loopback unless told otherwise; with routes, one of
// a cluster of such servers.
type Embedded struct {
	s *server.Server
}

// EmbeddedOptions configure StartEmbedded.
type EmbeddedOptions struct {
	Name     string // the server's name in the cluster; the node's name
	Listen   string // host:port for clients; 127.0.0.1 and a free port when empty
	StoreDir string // JetStream's file store
	// ClusterListen and Routes (host:port each) make the server one of a cluster; Routes may
	// name this server too (every node can share one list).
	ClusterListen string
	Routes        []string
	// TLSCert and TLSKey: the certificate the server presents to clients and routes; TLSCA
	// verifies the routes' (and clients' when given).
	TLSCert, TLSKey, TLSCA string
	// Conf is a NATS server configuration file to start from (accounts, authorization).
	Conf string
}

// StartEmbedded starts the server and waits until it takes connections.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	opts := &server.Options{}
	if o.Conf != "" {
		var err error
		if opts, err = server.ProcessConfigFile(o.Conf); err != nil {
			return nil, fmt.Errorf("fleet: %s: %w", o.Conf, err)
		}
	}
	opts.ServerName, opts.JetStream, opts.StoreDir = o.Name, true, o.StoreDir
	opts.NoSigs, opts.NoLog = true, true
	opts.Host, opts.Port = "127.0.0.1", -1
	if o.Listen != "" {
		h, p, err := splitHostPort(o.Listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = h, p
	}
	if o.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey, CaFile: o.TLSCA, Verify: o.TLSCA != ""})
		if err != nil {
			return nil, fmt.Errorf("fleet: TLS: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify = tc, true, o.TLSCA != ""
		opts.TLSTimeout = 2
	}
	if o.ClusterListen != "" {
		h, p, err := splitHostPort(o.ClusterListen)
		if err != nil {
			return nil, err
		}
		opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = "portcullis", h, p
		scheme := "nats"
		if o.TLSCert != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey, CaFile: o.TLSCA, Verify: true})
			if err != nil {
				return nil, fmt.Errorf("fleet: cluster TLS: %w", err)
			}
			opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tc, 2
			scheme = "tls"
		}
		for _, r := range o.Routes {
			if r == o.ClusterListen {
				continue
			}
			opts.Routes = append(opts.Routes, &url.URL{Scheme: scheme, Host: r})
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("fleet: the embedded NATS server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("fleet: the embedded NATS server did not start")
	}
	return &Embedded{s: s}, nil
}

// URL is where clients connect.
func (e *Embedded) URL() string { return e.s.ClientURL() }

// Server is the running server, for its state (fleet status).
func (e *Embedded) Server() *server.Server { return e.s }

// Close shuts the server down and waits for it.
func (e *Embedded) Close() {
	e.s.Shutdown()
	e.s.WaitForShutdown()
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("fleet: listen %q: HOST:PORT", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("fleet: listen %q: the port is not a number from 0 to 65535", s)
	}
	return h, n, nil
}
