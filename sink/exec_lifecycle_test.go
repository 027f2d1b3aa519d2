package sink

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/store"
)

// liveBan is a ban in force for the next hour.
func liveBan(ip string) Change {
	p := netip.MustParsePrefix(ip)
	now := time.Now().Unix()
	return Change{Ban: store.Ban{Jail: "sshd", Prefix: p, Start: now, End: now + 3600, Count: 1}, Kernel: true, Reason: "failures"}
}

// commit stores the batch's bans with their jobs, as the applier does, and wakes the queues.
func commit(t *testing.T, st *store.Store, e *Exec, batch []Change) {
	t.Helper()
	var changes []store.Change
	for _, c := range batch {
		changes = append(changes, store.Change{Unban: c.Unban, Ban: c.Ban})
	}
	if err := st.CommitWith(changes, e.Stage(batch)); err != nil {
		t.Fatal(err)
	}
	e.Apply(batch, 0)
}

func lifecycleExec(t *testing.T, a config.Action) (*store.Store, *Exec) {
	t.Helper()
	st, _ := execFixture(t, nil, time.Minute)
	a.Name, a.Kind, a.Timeout, a.Args = "rec", config.ActionExec, 10*time.Second, map[string]string{"actname": "rec"}
	e, _ := NewExec(st, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := e.SetJails([]*config.Jail{{Name: "sshd", Actions: []config.Action{a}}}); err != nil {
		t.Fatal(err)
	}
	return st, e
}

func readFile(path string) string { b, _ := os.ReadFile(path); return string(b) }

// As fail2ban 1.0: actioncheck runs after a command fails, not before each ban; a failed check
// repairs the action (actionstop, actionstart), the command runs again, and the other bans in
// force are put back through actionreban.
func TestExecCheckRepairsAndRebans(t *testing.T) {
	dir := t.TempDir()
	out, ok := filepath.Join(dir, "out"), filepath.Join(dir, "ok")
	st, e := lifecycleExec(t, config.Action{Commands: map[string]string{
		"actionstart": "touch " + ok + "; echo start <family> >> " + out,
		"actionstop":  "rm -f " + ok + "; echo stop <family> >> " + out,
		"actioncheck": "test -e " + ok,
		"actionban":   "test -e " + ok + " && echo ban <ip> >> " + out,
		"actionreban": "echo reban <ip> >> " + out,
	}})
	commit(t, st, e, []Change{liveBan("192.0.2.1/32"), liveBan("192.0.2.2/32")})
	waitFile(t, out, "ban 192.0.2.2")
	os.Remove(ok) // the action's state is lost behind its back
	commit(t, st, e, []Change{liveBan("192.0.2.3/32")})
	waitFile(t, out, "reban 192.0.2.2")
	e.Close()
	want := "start inet4\nban 192.0.2.1/32\nban 192.0.2.2/32\nstop inet4\nstart inet4\nban 192.0.2.3/32\n" +
		"reban 192.0.2.1/32\nreban 192.0.2.2/32\nstop inet4\n"
	if got := readFile(out); got != strings.ReplaceAll(want, "/32", "") {
		t.Fatalf("runs:\n%s\nwant:\n%s", got, strings.ReplaceAll(want, "/32", ""))
	}
}

// Stopping is fail2ban's jail stop for each action: actionflush once where it has one, else
// actionunban for each ban in force, then actionstop.
func TestExecStopFlushesOrUnbans(t *testing.T) {
	for _, flush := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "out")
		cmds := map[string]string{
			"actionban":   "echo ban <ip> >> " + out,
			"actionunban": "echo unban <ip> >> " + out,
			"actionstop":  "echo stop >> " + out,
		}
		if flush {
			cmds["actionflush"] = "echo flush >> " + out
		}
		st, e := lifecycleExec(t, config.Action{Commands: cmds})
		commit(t, st, e, []Change{liveBan("192.0.2.1/32"), liveBan("2001:db8::1/128")})
		waitFile(t, out, "ban 2001:db8::1")
		e.Close()
		want := "ban 192.0.2.1\nban 2001:db8::1\nunban 192.0.2.1\nunban 2001:db8::1\nstop\n"
		if flush {
			want = "ban 192.0.2.1\nban 2001:db8::1\nflush\nstop\n"
		}
		if got := readFile(out); got != want {
			t.Errorf("flush=%v: runs:\n%s\nwant:\n%s", flush, got, want)
		}
	}
}

// IPv6 bans run the [Init?family=inet6] commands; actionstart_on_demand starts each family at its
// first ban; a prolonged ban runs actionprolong and nothing else.
func TestExecFamiliesAndProlong(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	st, e := lifecycleExec(t, config.Action{StartOnDemand: true,
		Commands: map[string]string{
			"actionstart": "echo start4 >> " + out, "actionban": "echo v4 <ip> >> " + out,
			"actionprolong": "echo prolong <ip> <bantime> >> " + out},
		Commands6: map[string]string{
			"actionstart": "echo start6 >> " + out, "actionban": "echo v6 [<ip>] >> " + out,
			"actionprolong": "echo prolong <ip> <bantime> >> " + out},
	})
	commit(t, st, e, []Change{liveBan("2001:db8::7/128")})
	waitFile(t, out, "v6 [2001:db8::7]")
	b := liveBan("192.0.2.9/32")
	commit(t, st, e, []Change{b})
	waitFile(t, out, "v4 192.0.2.9")
	longer := b
	longer.Ban.End += 3600
	longer.Reason = ban.Prolonged
	gone := b
	gone.Unban, gone.Reason = true, ban.Prolonged
	commit(t, st, e, []Change{gone, longer})
	waitFile(t, out, "prolong 192.0.2.9 7200")
	e.Close()
	if got, want := readFile(out), "start6\nv6 [2001:db8::7]\nstart4\nv4 192.0.2.9\nprolong 192.0.2.9 7200\n"; got != want {
		t.Fatalf("runs:\n%s\nwant:\n%s", got, want)
	}
}
