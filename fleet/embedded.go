package fleet

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream run inside the daemon (fleet = embedded): its file
// store under the state folder, listening on loopback unless told otherwise.
type Embedded struct {
	s *server.Server
}

// EmbeddedOptions configure StartEmbedded.
type EmbeddedOptions struct {
	Name     string // the server's name in the cluster; the node's name
	Listen   string // host:port for clients; 127.0.0.1 and a free port when empty
	StoreDir string // JetStream's file store
}

// StartEmbedded starts the server and waits until it takes connections.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	host, port := "127.0.0.1", -1
	if o.Listen != "" {
		h, p, err := splitHostPort(o.Listen)
		if err != nil {
			return nil, err
		}
		host, port = h, p
	}
	s, err := server.NewServer(&server.Options{ServerName: o.Name, Host: host, Port: port,
		JetStream: true, StoreDir: o.StoreDir, NoSigs: true, NoLog: true})
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
