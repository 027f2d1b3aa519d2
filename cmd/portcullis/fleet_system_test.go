package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/netnstest"
)

// fleetNode is one daemon of a fleet in a network namespace of its own.
type fleetNode struct {
	*env
	name string // fleet_name, also its NATS server's
	ns   string
	link string // its end of the veth pair in the test's namespace
	d    *daemon
}

// newFleetNamespaces makes n network namespaces joined by a bridge in the test's own namespace,
// node i at 10.77.0.(i+1)/24.
func newFleetNamespaces(t *testing.T, n int) (names, links []string) {
	t.Helper()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	br := "pcbr" + strconv.Itoa(os.Getpid()%10000)
	ip("link", "add", br, "type", "bridge")
	ip("link", "set", br, "up")
	for i := range n {
		name := fmt.Sprintf("pcf%d-%d", os.Getpid(), i)
		link := fmt.Sprintf("pcv%d-%d", os.Getpid()%10000, i)
		ip("netns", "add", name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
		ip("link", "set", link, "master", br, "up")
		ip("-n", name, "addr", "add", fmt.Sprintf("10.77.0.%d/24", i+1), "dev", "eth0")
		ip("-n", name, "link", "set", "eth0", "up")
		ip("-n", name, "link", "set", "lo", "up")
		names, links = append(names, name), append(links, link)
	}
	return names, links
}

func (n *fleetNode) banned(addr string) bool {
	_, ok := netnstest.NFTSetVia(n.t, []string{"ip", "netns", "exec", n.ns}, "portcullis", "sshd-v4")[addr]
	return ok
}

// Three daemons in three network namespaces, their embedded NATS servers clustered (R3): an
// attacker spread across them (one failure on each, maxretry 3) is banned on all three; a ban
// made on one reaches the others. Then the node whose NATS server leads the bans bucket's stream
// is killed with it while bans flow: the other two elect a new leader and go on sharing bans and
// counting, a decider taking over the partitions the dead node held; it restarts and converges
// (bans made while it was away are in its kernel, a ban lifted meanwhile is not). Then another
// node's link is cut while the fleet bans and unbans and it bans from its own failures: it
// converges when the link returns, and its ban reaches the others.
func TestSystemFleet(t *testing.T) {
	netnstest.Require(t)
	names, links := newFleetNamespaces(t, 3)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("10.77.0.%d:6222", i+1))
	}
	nodes := make([]*fleetNode, 3)
	for i := range nodes {
		e := newEnv(t, `
[DEFAULT]
ignoreip = 127.0.0.1/8
maxretry = 3
findtime = 10m
bantime = 1h
[sshd]
enabled = true
port = ssh
logpath = @DIR@/auth.log
`)
		e.wrap = []string{"ip", "netns", "exec", names[i]}
		conf := fmt.Sprintf("[Definition]\nsocket = %s\nauditlog = "+filepath.Join(e.dir, "audit.log")+"\nfleet = embedded\nfleet_name = n%d\nfleet_listen = 10.77.0.%d:4222\n"+
			"fleet_cluster_listen = 10.77.0.%d:6222\nfleet_routes = %s\nfleet_failures = both\n",
			e.socket, i, i+1, i+1, strings.Join(routes, ","))
		if err := os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		nodes[i] = &fleetNode{env: e, name: fmt.Sprintf("n%d", i), ns: names[i], link: links[i]}
	}
	// A clustered server waits for its peers before JetStream answers: start all, then wait.
	for _, n := range nodes {
		n.d = n.launch()
	}
	up := func(n *fleetNode) {
		t.Helper()
		n.waitUpTo(90*time.Second, "the node to join the fleet", func() bool { _, _, code := n.cli("status"); return code == 0 }, n.d)
	}
	for _, n := range nodes {
		up(n)
	}
	start := time.Now()
	everywhere := func(what, addr string, on []*fleetNode) {
		t.Helper()
		for _, n := range on {
			n.waitUpTo(60*time.Second, what+" on "+n.ns, func() bool { return n.banned(addr) }, n.d)
		}
		t.Logf("%5.1fs %s", time.Since(start).Seconds(), what)
	}

	for _, n := range nodes {
		n.appendLog(failures("203.0.113.50", 1)...)
	}
	everywhere("the spread attacker", "203.0.113.50", nodes)
	nodes[1].mustCLI("ban", "sshd", "203.0.113.51")
	everywhere("node 1's ban", "203.0.113.51", nodes)
	// A loaded cluster may be electing a leader for a moment: the CLI says so, and is asked again.
	answer := func(n *fleetNode, args ...string) string {
		t.Helper()
		var out string
		n.waitUpTo(60*time.Second, strings.Join(args, " ")+" answered", func() bool {
			var code int
			out, _, code = n.cli(args...)
			return code == 0
		}, n.d)
		return out
	}
	if out := answer(nodes[2], "banned", "--fleet"); !strings.Contains(out, "sshd\t203.0.113.51\tuntil ") || !strings.Contains(out, "from n1\n") {
		t.Fatalf("banned --fleet:\n%s", out)
	}
	if out := answer(nodes[0], "fleet", "status"); !strings.Contains(out, "Bucket portcullis_bans: ") || !strings.Contains(out, ", leader n") ||
		!strings.Contains(out, "Stream portcullis_failures: ") || !strings.Contains(out, "  partition 15: lag ") {
		t.Fatalf("fleet status:\n%s", out)
	}

	// From here nodes[0] is the bucket stream's leader, the server killed while bans flow.
	leader := func(n *fleetNode) string {
		out, _, code := n.cli("fleet", "status", "--json")
		var st struct {
			Bucket struct{ Leader string } `json:"bucket"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return ""
		}
		return st.Bucket.Leader
	}
	lead := -1
	nodes[1].waitUpTo(60*time.Second, "a leader of the bucket's stream", func() bool {
		l := leader(nodes[1])
		lead = slices.IndexFunc(nodes, func(n *fleetNode) bool { return n.name == l })
		return lead >= 0
	}, nodes[1].d)
	nodes = []*fleetNode{nodes[lead], nodes[(lead+1)%3], nodes[(lead+2)%3]}
	t.Logf("the bucket's stream leader: %s", nodes[0].name)

	// The leader and its NATS server die while node 1 bans 40 addresses, one by one.
	flowing := make(chan struct{})
	go func() {
		defer close(flowing)
		for i := range 40 {
			if _, _, code := nodes[1].cli("ban", "sshd", fmt.Sprintf("203.0.113.%d", 100+i)); code != 0 {
				t.Errorf("ban %d: exit %d", i, code)
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	nodes[0].d.cmd.Process.Kill()
	<-nodes[0].d.done
	<-flowing
	alive := nodes[1:]
	nodes[1].waitUpTo(60*time.Second, "a new leader of the bucket's stream", func() bool {
		l := leader(nodes[1])
		return l != "" && l != nodes[0].name
	}, nodes[1].d)
	for i := range 40 {
		everywhere("the bans made while a server died", fmt.Sprintf("203.0.113.%d", 100+i), alive)
	}
	nodes[1].mustCLI("ban", "sshd", "203.0.113.52")
	everywhere("a ban with one server down", "203.0.113.52", alive)
	nodes[2].mustCLI("unban", "sshd", "203.0.113.51")
	for _, n := range alive {
		n.waitUpTo(60*time.Second, "the unban", func() bool { return !n.banned("203.0.113.51") }, n.d)
	}
	nodes[1].appendLog(failures("203.0.113.53", 2)...)
	nodes[2].appendLog(failures("203.0.113.53", 1)...)
	everywhere("an attacker spread over the two left", "203.0.113.53", alive)

	nodes[0].d = nodes[0].launch()
	up(nodes[0])
	everywhere("bans made while node 0 was down", "203.0.113.52", nodes[:1])
	everywhere("bans made while node 0 was down", "203.0.113.53", nodes[:1])
	for i := range 40 {
		everywhere("the bans made while a server died", fmt.Sprintf("203.0.113.%d", 100+i), nodes[:1])
	}
	if nodes[0].banned("203.0.113.51") {
		t.Fatal("a ban lifted while node 0 was down came back with it")
	}

	// Node 2 is cut off; the fleet bans and unbans; node 2 converges once it is back.
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("ip", "link", "set", nodes[2].link, "down")
	nodes[0].mustCLI("ban", "sshd", "203.0.113.54")
	nodes[1].mustCLI("unban", "sshd", "203.0.113.52")
	everywhere("a ban while node 2 is cut off", "203.0.113.54", nodes[:2])
	// Cut off, node 2 still bans from its own failures; the others get the ban when it is back.
	nodes[2].appendLog(failures("203.0.113.55", 3)...)
	everywhere("node 2's local ban while cut off", "203.0.113.55", nodes[2:])
	time.Sleep(fleetCut)
	if nodes[0].banned("203.0.113.55") {
		t.Fatal("a cut-off node's ban reached the fleet through the cut")
	}
	run("ip", "link", "set", nodes[2].link, "up")
	everywhere("the ban made while node 2 was cut off", "203.0.113.54", nodes[2:])
	everywhere("node 2's ban made while it was cut off", "203.0.113.55", nodes[:2])
	nodes[2].waitUpTo(60*time.Second, "the unban made while node 2 was cut off", func() bool { return !nodes[2].banned("203.0.113.52") }, nodes[2].d)
	// No ban lost, none applied twice: each node's audit log has one ban of each.
	for _, n := range nodes {
		if !n.banned("203.0.113.50") || !n.banned("203.0.113.53") || !n.banned("203.0.113.139") {
			t.Fatalf("%s lost a ban", n.ns)
		}
		b, err := os.ReadFile(filepath.Join(n.dir, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		bans := map[string]int{}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r struct{ Op, Prefix, Reason string }
			if json.Unmarshal([]byte(l), &r) == nil && r.Op == "ban" && r.Reason != "prolonged" && r.Reason != "fleet prolonged" {
				bans[r.Prefix]++
			}
			lines = append(lines, l)
		}
		for p, c := range bans {
			if c != 1 {
				t.Errorf("%s banned %s %d times; its audit log:\n%s", n.ns, p, c, strings.Join(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.Contains(l, `"`+p+`"`) }), "\n"))
			}
		}
		if bans["203.0.113.50"] != 1 || bans["203.0.113.120"] != 1 {
			t.Errorf("%s's audit log misses bans: %v", n.ns, bans)
		}
	}
}

// fleetCut is how long TestSystemFleet keeps a node cut off: PORTCULLIS_FLEET_CUT (a duration;
// the 30 s: make fleet-test), else 5 s.
var fleetCut = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PORTCULLIS_FLEET_CUT")); err == nil {
		return d
	}
	return 5 * time.Second
}()
