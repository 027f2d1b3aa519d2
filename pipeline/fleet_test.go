package pipeline

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/fleet"
	"github.com/portcullis/portcullis/internal/testpki"
)

// writeConf replaces u's portcullis.conf with extra (and its audit log), for its next start.
func writeConf(t *testing.T, u *unitDaemon, extra string) {
	t.Helper()
	conf := "[Definition]\nauditlog = " + filepath.Join(u.dir, "audit.log") + "\n" + extra
	if err := os.WriteFile(filepath.Join(u.opts.ConfigDir, "portcullis.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Two daemons in one fleet (one runs the embedded NATS server, the other joins it): a ban either
// decides is applied by the other, one from failures with the deciding node's evidence; an unban
// on either lifts it on both; a ban of an address the applying node protects is not applied there.
func TestFleetSharesBans(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a := startUnit(t, unitJail, "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = a\n")
	b := startUnit(t, unitJail+"ignoreip = 198.51.100.0/24\n", "fleet = nats://"+addr+"\nfleet_name = b\n")

	if r := a.call(t, "ban", "sshd", "203.0.113.90"); !r.OK {
		t.Fatal(r.Error)
	}
	waitFor(t, "a's ban on b", func() bool { return b.inSet(t, "sshd", "203.0.113.90/32") })
	if r := b.call(t, "ban", "sshd", "203.0.113.91"); !r.OK {
		t.Fatal(r.Error)
	}
	waitFor(t, "b's ban on a", func() bool { return a.inSet(t, "sshd", "203.0.113.91/32") })

	// b protects 198.51.100.0/24: a's ban of one of them stays a's. The ban after it, once on b,
	// says b has seen both.
	a.call(t, "ban", "sshd", "198.51.100.5")
	a.call(t, "ban", "sshd", "203.0.113.92")
	waitFor(t, "a's next ban on b", func() bool { return b.inSet(t, "sshd", "203.0.113.92/32") })
	if b.inSet(t, "sshd", "198.51.100.5/32") {
		t.Fatal("b applied a ban of an address it protects")
	}
	if !a.inSet(t, "sshd", "198.51.100.5/32") {
		t.Fatal("a did not ban what it decided")
	}

	// A ban from failures carries its evidence: b's audit log shows a's lines.
	a.fail(t, "203.0.113.93", 3)
	waitFor(t, "a's ban from failures on b", func() bool { return b.inSet(t, "sshd", "203.0.113.93/32") })
	b.applier.flush()
	var rec map[string]any
	for _, r := range readAudit(t, filepath.Join(b.dir, "audit.log")) {
		if r["prefix"] == "203.0.113.93" {
			rec = r
		}
	}
	if m, _ := rec["matches"].([]any); rec["reason"] != "fleet" || rec["failures"] != 3.0 || len(m) != 3 ||
		!strings.Contains(m[2].(string), "from 203.0.113.93 port 40002") {
		t.Fatalf("b's audit of a's ban from failures: %v", rec)
	}

	if r := b.call(t, "unban", "sshd", "203.0.113.90"); !r.OK {
		t.Fatal(r.Error)
	}
	waitFor(t, "b's unban on a", func() bool { return !a.inSet(t, "sshd", "203.0.113.90/32") })
	if !a.inSet(t, "sshd", "203.0.113.91/32") || !b.inSet(t, "sshd", "203.0.113.92/32") {
		t.Fatal("an unban lifted other bans")
	}
}

// freeAddr is a loopback address no one listens on, for an embedded server.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// An attacker spread across three nodes, under maxretry on each (two failures on each of b and c,
// one on a; maxretry 3), is banned by the decider (a) from the failures the others publish, and
// the ban reaches every node. A node that does not publish adds nothing to the count.
func TestFleetCountsAcrossHosts(t *testing.T) {
	addr := freeAddr(t)
	a := startUnit(t, unitJail, "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = a\nfleet_failures = both\nfleet_partitions = 4\n")
	b := startUnit(t, unitJail, "fleet = nats://"+addr+"\nfleet_name = b\nfleet_failures = publish\nfleet_partitions = 4\n")
	c := startUnit(t, unitJail, "fleet = nats://"+addr+"\nfleet_name = c\nfleet_failures = publish\nfleet_partitions = 4\n")
	quiet := startUnit(t, unitJail, "fleet = nats://"+addr+"\nfleet_name = quiet\n")

	// Not published: quiet's failures stay quiet's, so 198.51.100.9 stays one short.
	quiet.fail(t, "198.51.100.9", 2)
	waitFor(t, "quiet's lines read", func() bool { return quiet.LinesProcessed() == 2 })

	b.fail(t, "203.0.113.60", 2)
	c.fail(t, "203.0.113.60", 2)
	waitFor(t, "the spread attacker banned on a", func() bool { return a.inSet(t, "sshd", "203.0.113.60/32") })
	for _, u := range []*unitDaemon{b, c, quiet} {
		waitFor(t, "the spread attacker banned everywhere", func() bool { return u.inSet(t, "sshd", "203.0.113.60/32") })
	}
	// The decider's counts survive its reload: two failures before, one after, make a ban.
	b.fail(t, "203.0.113.62", 2)
	waitFor(t, "two failures of .62 counted", func() bool { return a.fleet.Load().stats.failuresIn.Load() >= 6 })
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	c.fail(t, "203.0.113.62", 1)
	waitFor(t, ".62 banned across the decider's reload", func() bool { return a.inSet(t, "sshd", "203.0.113.62/32") })

	c.fail(t, "198.51.100.9", 1)
	b.fail(t, "203.0.113.61", 1) // a marker: once it is counted, c's failure of .9 was too
	waitFor(t, "the marker counted", func() bool { return a.fleet.Load().stats.failuresIn.Load() >= 9 })
	a.applier.flush()
	if a.inSet(t, "sshd", "198.51.100.9/32") {
		t.Fatal("a failure of a node that does not publish was counted")
	}
	// Each node banned it once: the decider's ban is the only one, so no node holds a ban of its
	// own origin.
	if n := a.fleet.Load().stats.decided.Load(); n != 2 {
		t.Fatalf("decided %d bans, want 2", n)
	}

	// fleet status: the bucket, the stream, four partitions all held by a (the one decider).
	var st fleet.Status
	if r := a.call(t, "fleet", "status"); !r.OK || json.Unmarshal(r.Data, &st) != nil {
		t.Fatalf("fleet status: %+v", r)
	}
	held := 0
	for _, p := range st.Parts {
		if p.Here {
			held++
		}
	}
	if st.Node != "a" || st.Server == "" || st.Bucket.Messages < 1 || st.Stream == nil || st.Stream.Messages < 3 ||
		len(st.Parts) != 4 || held == 0 || st.Counters.Decided != 2 || st.Unhealthy != "" {
		t.Fatalf("fleet status: %+v", st)
	}
	// fleet status on a publisher names the decider.
	waitFor(t, "b's fleet status naming a as a decider", func() bool {
		var st fleet.Status
		r := b.call(t, "fleet", "status")
		if !r.OK || json.Unmarshal(r.Data, &st) != nil {
			return false
		}
		return slices.ContainsFunc(st.Parts, func(p fleet.PartState) bool { return p.Decider == "a" && !p.Here })
	})
	// banned --fleet on another node: the ban with the node that decided it.
	var bans []control.Banned
	if r := quiet.call(t, "banned", "--fleet"); !r.OK || json.Unmarshal(r.Data, &bans) != nil {
		t.Fatalf("banned --fleet: %+v", r)
	}
	if len(bans) != 2 || bans[0].Prefix != "203.0.113.60" || bans[0].Origin != "a" {
		t.Fatalf("banned --fleet: %+v", bans)
	}
	var m bytes.Buffer
	b.writeMetrics(&m)
	for _, want := range []string{"portcullis_fleet_failures_published_total 5\n", "portcullis_fleet_connected 1\n", "portcullis_fleet_bans_applied_total 2\n"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("b's metrics lack %q", want)
		}
	}
	if r := startUnit(t, unitJail, "").call(t, "fleet", "status"); r.OK {
		t.Fatal("fleet status on a node in no fleet succeeded")
	}
}

// fleet_share = false keeps a jail's bans on the node; fleet_apply = false keeps the fleet's
// bans of a jail off it; a ban held before joining is published when the node joins, one applied
// from the fleet is not published again by a restart, nor one of its own the fleet lifted while
// it was away.
func TestFleetShareApplyAndHeldBans(t *testing.T) {
	addr := freeAddr(t)
	a := startUnit(t, unitJail, "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = a\n")
	b := startUnit(t, unitJail+"fleet_share = false\n", "fleet = nats://"+addr+"\nfleet_name = b\n")
	c := startUnit(t, unitJail+"fleet_apply = false\n", "fleet = nats://"+addr+"\nfleet_name = c\n")
	late := startUnit(t, unitJail, "")

	b.call(t, "ban", "sshd", "203.0.113.70")
	a.call(t, "ban", "sshd", "203.0.113.71")
	waitFor(t, "a's ban on b", func() bool { return b.inSet(t, "sshd", "203.0.113.71/32") })
	if a.inSet(t, "sshd", "203.0.113.70/32") {
		t.Fatal("a ban of a jail with fleet_share = false left its node")
	}
	// c publishes but applies nothing: its ban reaches a, a's never reaches c.
	c.call(t, "ban", "sshd", "203.0.113.72")
	waitFor(t, "c's ban on a", func() bool { return a.inSet(t, "sshd", "203.0.113.72/32") })
	if c.inSet(t, "sshd", "203.0.113.71/32") {
		t.Fatal("a jail with fleet_apply = false applied a fleet ban")
	}

	// late banned before it joined; it publishes that ban when it joins, and takes the fleet's.
	late.call(t, "ban", "sshd", "203.0.113.73")
	writeConf(t, late, "fleet = nats://"+addr+"\nfleet_name = late\n")
	late.restart(t)
	waitFor(t, "late's held ban on a", func() bool { return a.inSet(t, "sshd", "203.0.113.73/32") })
	if !late.inSet(t, "sshd", "203.0.113.71/32") {
		t.Fatal("a node joining did not apply the fleet's bans before it started")
	}

	// The fleet lifts a's ban while late is down; late's restart must not bring it back, though
	// late holds it in its store.
	late.Daemon.Close()
	late.Daemon = nil
	a.call(t, "unban", "sshd", "203.0.113.71")
	late.restart(t)
	a.call(t, "ban", "sshd", "203.0.113.74")
	waitFor(t, "late rejoined", func() bool { return late.inSet(t, "sshd", "203.0.113.74/32") })
	<-late.fleet.Load().synced
	late.applier.flush()
	// late's next ban is a marker: publishing is in order, so a has what late converged with.
	late.call(t, "ban", "sshd", "203.0.113.75")
	waitFor(t, "late's marker on a", func() bool { return a.inSet(t, "sshd", "203.0.113.75/32") })
	if late.inSet(t, "sshd", "203.0.113.71/32") {
		t.Fatal("a fleet ban lifted while the node was away stayed on it")
	}
	if a.inSet(t, "sshd", "203.0.113.71/32") {
		t.Fatal("a lifted fleet ban came back with a restarted node")
	}

	// late's own ban, shared, is lifted by a while late is down: late lifts it when it comes
	// back (the bucket remembers the unban), and does not publish it again.
	late.call(t, "ban", "sshd", "203.0.113.76")
	waitFor(t, "late's ban on a", func() bool { return a.inSet(t, "sshd", "203.0.113.76/32") })
	late.Daemon.Close()
	late.Daemon = nil
	a.call(t, "unban", "sshd", "203.0.113.76")
	late.restart(t)
	<-late.fleet.Load().synced
	late.applier.flush()
	late.call(t, "ban", "sshd", "203.0.113.77")
	waitFor(t, "late's next marker on a", func() bool { return a.inSet(t, "sshd", "203.0.113.77/32") })
	if late.inSet(t, "sshd", "203.0.113.76/32") || a.inSet(t, "sshd", "203.0.113.76/32") {
		t.Fatal("a node's own ban, lifted in the fleet while it was away, came back with it")
	}

	// late lifts its own ban while out of the fleet (its queue gone with the restart): when it
	// joins again, the fleet lifts it too.
	late.Daemon.Close()
	late.Daemon = nil
	writeConf(t, late, "")
	late.restart(t)
	late.call(t, "unban", "sshd", "203.0.113.73")
	late.Daemon.Close()
	late.Daemon = nil
	writeConf(t, late, "fleet = nats://"+addr+"\nfleet_name = late\n")
	late.restart(t)
	waitFor(t, "the unban made away from the fleet on a", func() bool { return !a.inSet(t, "sshd", "203.0.113.73/32") })
}

// TLS between nodes: the embedded server presents its certificate and, with fleet_tls_ca,
// requires the nodes' client certificates; a node with one shares bans, a node without one
// cannot join.
func TestFleetTLS(t *testing.T) {
	pki := testpki.New(t)
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	aCert, aKey := pki.Issue("a", &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: both})
	bCert, bKey := pki.Issue("b", &x509.Certificate{DNSNames: []string{"b"}, ExtKeyUsage: both})
	addr := freeAddr(t)
	tls := func(cert, key string) string {
		return "fleet_tls_ca = " + pki.CAFile + "\nfleet_tls_cert = " + cert + "\nfleet_tls_key = " + key + "\n"
	}
	a := startUnit(t, unitJail, "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = a\n"+tls(aCert, aKey))
	b := startUnit(t, unitJail, "fleet = tls://"+addr+"\nfleet_name = b\n"+tls(bCert, bKey))
	a.call(t, "ban", "sshd", "203.0.113.95")
	waitFor(t, "a's ban on b over TLS", func() bool { return b.inSet(t, "sshd", "203.0.113.95/32") })

	c := startUnit(t, unitJail, "")
	writeConf(t, c, "fleet = tls://"+addr+"\nfleet_name = c\nfleet_tls_ca = "+pki.CAFile+"\n")
	c.Daemon.Close()
	c.Daemon = nil
	d, err := Start(c.opts)
	if err == nil {
		d.Close()
		t.Fatal("a node without a client certificate joined")
	}
	if !strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "tls") {
		t.Fatalf("c failed for another reason: %v", err)
	}
	t.Log(err)
}

// NATS credentials: an embedded server started from fleet_server_conf (its authorization: two
// nkey users) takes only nodes that sign with one of them (fleet_nkey, a seed file).
func TestFleetNKeys(t *testing.T) {
	dir := t.TempDir()
	user := func(name string) (seedFile, public string) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		public, _ = kp.PublicKey()
		seedFile = filepath.Join(dir, name+".nk")
		if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		return seedFile, public
	}
	aSeed, aPub := user("a")
	bSeed, bPub := user("b")
	strangerSeed, _ := user("stranger")
	conf := filepath.Join(dir, "nats.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("authorization {\n  users = [ { nkey: %s }, { nkey: %s } ]\n}\n", aPub, bPub)), 0o600)
	addr := freeAddr(t)
	a := startUnit(t, unitJail, "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = a\nfleet_server_conf = "+conf+"\nfleet_nkey = "+aSeed+"\n")
	b := startUnit(t, unitJail, "fleet = nats://"+addr+"\nfleet_name = b\nfleet_nkey = "+bSeed+"\n")
	a.call(t, "ban", "sshd", "203.0.113.96")
	waitFor(t, "a's ban on b, signed", func() bool { return b.inSet(t, "sshd", "203.0.113.96/32") })

	for _, extra := range []string{"", "fleet_nkey = " + strangerSeed + "\n"} {
		c := startUnit(t, unitJail, "")
		writeConf(t, c, "fleet = nats://"+addr+"\nfleet_name = c\n"+extra)
		c.Daemon.Close()
		c.Daemon = nil
		d, err := Start(c.opts)
		if err == nil {
			d.Close()
			t.Fatalf("a node with %q joined", extra)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("c failed for another reason: %v", err)
		}
	}
}

// A decider's ban from the fleet's failures carries what the publishers shared: the lines of a
// jail with fleet_share_lines (and no line of one without), and the captures of its first failure
// that had any, for actions' <F-*> tags; the ban's evidence reaches the other nodes' audit logs.
func TestFleetDeciderEvidence(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	ad := filepath.Join(dir, "actions")
	os.MkdirAll(ad, 0o755)
	os.WriteFile(filepath.Join(ad, "record.conf"), []byte(fmt.Sprintf("[Definition]\nactionban = printf '%%s [%%s] {%%s}\\n' <ip> \"<matches>\" \"<F-USER>\" >> %s\n", ran)), 0o644)
	withAction := func(cfg string) { os.Rename(ad, filepath.Join(cfg, "action.d")) }
	addr := freeAddr(t)
	a := startUnitWith(t, unitJail+"action = record\n", "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = a\nfleet_failures = decide\nfleet_partitions = 2\n", withAction)
	os.MkdirAll(ad, 0o755)
	os.WriteFile(filepath.Join(ad, "record.conf"), []byte("[Definition]\nactionban = echo <F-USER> > /dev/null\n"), 0o644)
	b := startUnitWith(t, unitJail+"action = record\nfleet_share_lines = true\n", "fleet = nats://"+addr+"\nfleet_name = b\nfleet_failures = publish\nfleet_partitions = 2\n", withAction)
	c := startUnit(t, unitJail, "fleet = nats://"+addr+"\nfleet_name = c\nfleet_failures = publish\nfleet_partitions = 2\n")

	userFail := func(u *unitDaemon, user, addr string) {
		f, _ := os.OpenFile(u.log, os.O_APPEND|os.O_WRONLY, 0)
		fmt.Fprintf(f, "%s host sshd[77]: Failed password for invalid user %s from %s port 4000 ssh2\n", time.Now().Format(time.Stamp), user, addr)
		f.Close()
	}
	userFail(b, "alice", "203.0.113.70")
	userFail(b, "bob", "203.0.113.70")
	waitFor(t, "b's failures counted on a", func() bool { return a.fleet.Load().stats.failuresIn.Load() >= 2 })
	userFail(c, "carol", "203.0.113.70")
	waitFor(t, "the action on a", func() bool { got, _ := os.ReadFile(ran); return len(got) > 0 })
	got, _ := os.ReadFile(ran)
	line := string(got)
	if !strings.HasPrefix(line, "203.0.113.70 [") || !strings.Contains(line, "invalid user alice from") || !strings.Contains(line, "invalid user bob from") ||
		strings.Contains(line, "carol") || !strings.HasSuffix(line, "] {alice}\n") {
		t.Fatalf("a's action for the fleet's ban: %q", line)
	}
	// b applies a's ban (its jail's only action is not a firewall's: the audit log says it) with
	// a's evidence: the failures counted and b's own lines.
	var rec map[string]any
	waitFor(t, "a's ban in b's audit log", func() bool {
		for _, r := range readAudit(t, filepath.Join(b.dir, "audit.log")) {
			if r["prefix"] == "203.0.113.70" {
				rec = r
			}
		}
		return rec != nil
	})
	if m, _ := rec["matches"].([]any); rec["reason"] != "fleet" || rec["failures"] != 3.0 || len(m) != 2 || !strings.Contains(m[0].(string), "alice") {
		t.Fatalf("b's audit of a's ban: %v", rec)
	}
}

// A partition's counts go with it when its decider stops: the decider taking it over counts the
// failures the other had counted (replayed), so the attacker's next failure bans; a ban the other
// decided already is not decided again (no prolongation) by the replay. The attacker is spread
// over two publishers, under maxretry on each.
func TestFleetDeciderHandsOverCounts(t *testing.T) {
	addr := freeAddr(t)
	conf := func(name, role string) string {
		return "fleet = nats://" + addr + "\nfleet_name = " + name + "\nfleet_failures = " + role + "\nfleet_partitions = 1\n"
	}
	p1 := startUnit(t, unitJail, "fleet = embedded\nfleet_listen = "+addr+"\nfleet_name = p1\nfleet_failures = publish\nfleet_partitions = 1\n")
	p2 := startUnit(t, unitJail, conf("p2", "publish"))
	// The partition's owner starts first, alone: it holds the partition from the start, and the
	// other, starting next, never pulls it while the owner lives.
	ownerName := fleet.Owner(0, []string{"a", "b"})
	otherName := map[string]string{"a": "b", "b": "a"}[ownerName]
	owner := startUnit(t, unitJail, conf(ownerName, "decide"))
	other := startUnit(t, unitJail, conf(otherName, "decide"))

	p1.fail(t, "203.0.113.80", 2) // banned by the owner
	p2.fail(t, "203.0.113.80", 1)
	p1.fail(t, "203.0.113.81", 1) // one short
	p2.fail(t, "203.0.113.81", 1)
	waitFor(t, "the owner's ban", func() bool { return other.inSet(t, "sshd", "203.0.113.80/32") })
	waitFor(t, "the owner counting all", func() bool { return owner.fleet.Load().stats.failuresIn.Load() == 5 })
	if n := other.fleet.Load().stats.failuresIn.Load(); n != 0 {
		t.Fatalf("the decider that does not own the partition received %d failures", n)
	}
	owner.Daemon.Close()
	owner.Daemon = nil
	p1.fail(t, "203.0.113.81", 1)
	waitFor(t, "the third failure banned by the decider that took over", func() bool { return p2.inSet(t, "sshd", "203.0.113.81/32") })
	if n := other.fleet.Load().stats.decided.Load(); n != 1 {
		t.Fatalf("the decider that took over decided %d bans, want 1", n)
	}
	other.applier.flush()
	for _, r := range readAudit(t, filepath.Join(other.dir, "audit.log")) {
		if r["prefix"] == "203.0.113.80" && r["reason"] != "fleet" {
			t.Fatalf("the replay decided the owner's ban again: %v", r)
		}
	}
}
