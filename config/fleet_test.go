package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fleet keys read with their defaults filled (partitions 16, replicas 1, or 3 when
// clustered); bad values and sets that do not go together are errors at their line.
func TestFleetConf(t *testing.T) {
	load := func(conf string) (Daemon, error) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "portcullis.conf"), []byte("[Definition]\n"+conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return LoadDaemon(dir)
	}
	d, err := load("fleet = embedded\nfleet_name = web1\nfleet_failures = publish\n")
	if err != nil || d.Fleet.Mode != "embedded" || d.Fleet.Partitions != 16 || d.Fleet.Replicas != 1 || !d.Fleet.Publish || d.Fleet.Decide || d.Fleet.Listen != "127.0.0.1:4222" {
		t.Fatalf("%+v %v", d.Fleet, err)
	}
	d, err = load("fleet = embedded\nfleet_cluster_listen = 10.0.0.1:6222\nfleet_routes = 10.0.0.1:6222, 10.0.0.2:6222 10.0.0.3:6222\n")
	if err != nil || d.Fleet.Replicas != 3 || len(d.Fleet.Routes) != 3 {
		t.Fatalf("%+v %v", d.Fleet, err)
	}
	if d, _ := load(""); d.Fleet.On() {
		t.Fatal("the fleet is on by default")
	}
	for conf, want := range map[string]string{
		"fleet = http://x\n":                       "nats://",
		"fleet = embedded\nfleet_name = a.b\n":     "node name",
		"fleet = embedded\nfleet_failures = yes\n": "publish, decide or both",
		"fleet = embedded\nfleet_partitions = 0\n": "from 1 to 1024",
		"fleet = nats://a:4222\nfleet_cluster_listen = 10.0.0.1:6222\nfleet_routes = 10.0.0.2:6222\n": "set fleet = embedded",
		"fleet = embedded\nfleet_routes = 10.0.0.2:6222\n":                                            "needs fleet_cluster_listen",
		"fleet = embedded\nfleet_tls_cert = /c\n":                                                     "go together",
		"fleet = embedded\nfleet_lsiten = x\n":                                                        "did you mean",
	} {
		if _, err := load(conf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", conf, err, want)
		}
	}
}
