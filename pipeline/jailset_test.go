package pipeline

import (
	"encoding/json"
	"testing"
)

// fail2ban-client's run-time changes take effect at once and last until a reload: maxretry
// lowered bans on one failure, an address added to ignoreip is refused, an idle jail counts
// nothing until set off, and a reload brings the configured values back.
func TestSetJailAtRunTime(t *testing.T) {
	u := startUnit(t, unitJail, "")
	value := func(args ...string) []string {
		t.Helper()
		r := u.call(t, args...)
		if !r.OK {
			t.Fatalf("%v: %s", args, r.Error)
		}
		var vs []string
		json.Unmarshal(r.Data, &vs)
		return vs
	}
	if got := value("set", "sshd", "maxretry", "1"); len(got) != 1 || got[0] != "1" {
		t.Fatalf("set maxretry: %v", got)
	}
	u.fail(t, "203.0.113.70", 1)
	waitFor(t, "a ban on one failure", func() bool { return u.inSet(t, "sshd", "203.0.113.70/32") })

	value("set", "sshd", "addignoreip", "203.0.113.71")
	if r := u.call(t, "ban", "sshd", "203.0.113.71"); !r.OK || !json.Valid(r.Data) || u.inSet(t, "sshd", "203.0.113.71/32") {
		t.Fatalf("an address added to ignoreip was banned: %+v", r)
	}

	if got := value("set", "sshd", "idle", "on"); got[0] != "true" {
		t.Fatalf("idle on: %v", got)
	}
	matched := func() uint64 { return u.current().m.Stats[0].Matched.Load() }
	before := matched()
	u.fail(t, "203.0.113.72", 1)
	// The line is matched (the matcher runs) before its jail's failures are left out.
	waitFor(t, "the idle jail's line to be read", func() bool { return matched() > before })
	u.applier.flush()
	if u.inSet(t, "sshd", "203.0.113.72/32") {
		t.Fatal("an idle jail counted a failure")
	}
	value("set", "sshd", "idle", "off")
	u.fail(t, "203.0.113.74", 1)
	waitFor(t, "a ban once the jail is not idle", func() bool { return u.inSet(t, "sshd", "203.0.113.74/32") })

	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := value("get", "sshd", "maxretry"); got[0] != "3" {
		t.Fatalf("after a reload maxretry is %v, want the configured 3", got)
	}
}
