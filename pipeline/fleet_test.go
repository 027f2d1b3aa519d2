package pipeline

import (
	"net"
	"testing"
)

// Two daemons in one fleet (one runs the embedded NATS server, the other joins it): a ban either
// decides is applied by the other; an unban on either lifts it on both; a ban of an address the
// applying node protects is not applied there.
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

	if r := b.call(t, "unban", "sshd", "203.0.113.90"); !r.OK {
		t.Fatal(r.Error)
	}
	waitFor(t, "b's unban on a", func() bool { return !a.inSet(t, "sshd", "203.0.113.90/32") })
	if !a.inSet(t, "sshd", "203.0.113.91/32") || !b.inSet(t, "sshd", "203.0.113.92/32") {
		t.Fatal("an unban lifted other bans")
	}
}
