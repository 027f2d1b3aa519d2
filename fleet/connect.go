package fleet

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnOptions are a node's credentials and TLS towards the fleet's servers.
type ConnOptions struct {
	Name  string // the node, shown by the servers
	Creds string // a NATS creds file (JWT and nkey seed)
	NKey  string // an nkey seed file
	// TLSCA verifies the servers; TLSCert and TLSKey are this node's client certificate.
	TLSCA, TLSCert, TLSKey string
}

// Connect connects to urls (comma-separated) and keeps reconnecting for as long as the node
// runs: a node whose link is down bans locally and catches up when it returns.
func Connect(urls string, o ConnOptions) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("portcullis " + o.Name), nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond), nats.RetryOnFailedConnect(false)}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("fleet: fleet_nkey: %w", err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", urls, err)
	}
	return nc, nil
}
