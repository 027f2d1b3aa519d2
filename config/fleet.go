package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Fleet is how this node joins the fleet (portcullis.conf's fleet_* keys; docs/fleet.md).
type Fleet struct {
	// Mode (fleet): "" (off), "embedded" (this node runs a NATS server with JetStream; others
	// connect to Listen) or nats:// URLs, comma-separated, of an existing cluster.
	Mode string
	// Name (fleet_name) names this node in the fleet and its embedded server; the host name
	// when empty.
	Name string
	// Listen (fleet_listen) is the embedded server's client address; 127.0.0.1:4222 when not
	// set.
	Listen string
	// ClusterListen (fleet_cluster_listen) and Routes (fleet_routes): the embedded server's
	// cluster address and the other servers' (host:port), when three embedded servers make one
	// cluster.
	ClusterListen string
	Routes        []string
	// Replicas (fleet_replicas) of the bucket and the failures stream: 3 when clustered, else 1.
	Replicas int
	// Failures (fleet_failures): off, publish (this node's failures go to the fleet's stream),
	// decide (this node counts the fleet's failures of the partitions it holds) or both.
	Publish, Decide bool
	// Partitions (fleet_partitions) of the failures stream, by address hash: 16 by default.
	Partitions int
	// Credentials: a NATS creds file (fleet_creds), an nkey seed file (fleet_nkey); TLS: the CA
	// that signs the servers (fleet_tls_ca) and this node's certificate (fleet_tls_cert,
	// fleet_tls_key), which an embedded server also presents.
	Creds, NKey, TLSCA, TLSCert, TLSKey string
	// ServerConf (fleet_server_conf) is a NATS server configuration file the embedded server
	// starts from (accounts, authorization); the keys above override its listen, cluster and
	// store.
	ServerConf string
}

// On reports whether the node is in a fleet.
func (f *Fleet) On() bool { return f.Mode != "" }

var fleetKeys = []string{"fleet", "fleet_name", "fleet_listen", "fleet_cluster_listen", "fleet_routes",
	"fleet_replicas", "fleet_failures", "fleet_partitions", "fleet_creds", "fleet_nkey", "fleet_tls_ca",
	"fleet_tls_cert", "fleet_tls_key", "fleet_server_conf"}

// key reads one fleet_* key; the error says what the value should be.
func (f *Fleet) key(k, v string) error {
	v = strings.TrimSpace(v)
	switch k {
	case "fleet":
		switch {
		case v == "" || strings.EqualFold(v, "off"):
			f.Mode = ""
		case strings.EqualFold(v, "embedded"):
			f.Mode = "embedded"
		default:
			for _, u := range strings.Split(v, ",") {
				u = strings.TrimSpace(u)
				if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
					return fmt.Errorf("%q: off, embedded, or nats:// (tls://) URLs separated by commas", v)
				}
			}
			f.Mode = v
		}
	case "fleet_name":
		if strings.ContainsAny(v, " \t.*>") {
			return fmt.Errorf("%q: a node name has no blanks, dots, * or >", v)
		}
		f.Name = v
	case "fleet_listen", "fleet_cluster_listen":
		if err := checkListen(v); err != nil {
			return err
		}
		if k == "fleet_listen" {
			f.Listen = v
		} else {
			f.ClusterListen = v
		}
	case "fleet_routes":
		f.Routes = nil
		for _, r := range listFields(v) {
			if err := checkListen(r); err != nil {
				return err
			}
			f.Routes = append(f.Routes, r)
		}
	case "fleet_replicas", "fleet_partitions":
		n, err := strconv.Atoi(v)
		lim := map[string]int{"fleet_replicas": 5, "fleet_partitions": 1024}[k]
		if err != nil || n < 1 || n > lim {
			return fmt.Errorf("%q: a number from 1 to %d", v, lim)
		}
		if k == "fleet_replicas" {
			f.Replicas = n
		} else {
			f.Partitions = n
		}
	case "fleet_failures":
		switch strings.ToLower(v) {
		case "", "off":
			f.Publish, f.Decide = false, false
		case "publish":
			f.Publish, f.Decide = true, false
		case "decide":
			f.Publish, f.Decide = false, true
		case "both":
			f.Publish, f.Decide = true, true
		default:
			return fmt.Errorf("%q: off, publish, decide or both", v)
		}
	default:
		*map[string]*string{"fleet_creds": &f.Creds, "fleet_nkey": &f.NKey, "fleet_tls_ca": &f.TLSCA,
			"fleet_tls_cert": &f.TLSCert, "fleet_tls_key": &f.TLSKey, "fleet_server_conf": &f.ServerConf}[k] = v
	}
	return nil
}

// finish fills the defaults and checks what only the whole set can say.
func (f *Fleet) finish() error {
	if f.Partitions == 0 {
		f.Partitions = 16
	}
	if f.Mode == "embedded" && f.Listen == "" {
		f.Listen = "127.0.0.1:4222"
	}
	if f.Replicas == 0 {
		f.Replicas = 1
		if len(f.Routes) > 0 {
			f.Replicas = 3
		}
	}
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return fmt.Errorf("fleet_tls_cert and fleet_tls_key go together")
	}
	if len(f.Routes) > 0 && f.Mode != "embedded" {
		return fmt.Errorf("fleet_routes clusters embedded servers: set fleet = embedded")
	}
	if len(f.Routes) > 0 && f.ClusterListen == "" {
		return fmt.Errorf("fleet_routes needs fleet_cluster_listen, this server's cluster address")
	}
	return nil
}
