package sink

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/testsmtp"
	"github.com/portcullis/portcullis/store"
)

func execFixture(t *testing.T, cmds map[string]string, timeout time.Duration) (*store.Store, []*config.Jail) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := config.Action{Name: "rec", Kind: config.ActionExec, Commands: cmds, Timeout: timeout, Args: map[string]string{"actname": "rec"}}
	return st, []*config.Jail{{Name: "sshd", Actions: []config.Action{a}}}
}

func banChange(ip string, start int64) Change {
	return Change{Ban: store.Ban{Jail: "sshd", Prefix: netip.MustParsePrefix(ip + "/32"), Start: start, End: start + 60, Count: 1}, Kernel: true, Reason: "failures"}
}

func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
			return string(b)
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%s never held %q:\n%s", path, want, b)
	return ""
}

// Jobs committed with their bans survive a stop before they run: the next start runs them, in
// order, once each.
func TestExecResumesQueuedRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	st, jails := execFixture(t, map[string]string{"actionban": "echo ban <ip> >> " + out, "actionunban": "echo unban <ip> >> " + out}, time.Minute)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, _ := NewExec(st, ExecOptions{Log: log})
	// Stage and commit as the applier does, but stop before any queue runs.
	e.actions = map[string]config.Action{"sshd/rec": jails[0].Actions[0]}
	batch := []Change{banChange("192.0.2.1", 100), banChange("192.0.2.2", 101)}
	batch = append(batch, Change{Unban: true, Ban: batch[0].Ban, Reason: "expired"})
	if err := st.CommitWith(nil, e.Stage(batch)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a queue ran before it was started")
	}
	e2, _ := NewExec(st, ExecOptions{Log: log})
	if err := e2.SetJails(jails); err != nil {
		t.Fatal(err)
	}
	got := waitFile(t, out, "unban 192.0.2.1")
	e2.Close()
	if got != "ban 192.0.2.1\nban 192.0.2.2\nunban 192.0.2.1\n" {
		t.Fatalf("runs:\n%s", got)
	}
	n := 0
	st.Jobs("sshd/rec", func(store.Job) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d jobs left after they ran", n)
	}
}

// A failing command is retried until it succeeds; one that outlives timeout is killed with its
// children and counts as a failure.
func TestExecRetriesAndTimesOut(t *testing.T) {
	dir := t.TempDir()
	out, flag := filepath.Join(dir, "out"), filepath.Join(dir, "flag")
	// The first run fails (no flag yet, and it makes one), the second succeeds.
	st, jails := execFixture(t, map[string]string{"actionban": fmt.Sprintf("if [ -e %[1]s ]; then echo ok <ip> >> %[2]s; else touch %[1]s; exit 3; fi", flag, out)}, time.Minute)
	e, _ := NewExec(st, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.SetJails(jails)
	if err := st.CommitWith(nil, e.Stage([]Change{banChange("192.0.2.9", 100)})); err != nil {
		t.Fatal(err)
	}
	e.Apply(nil, 0)
	waitFile(t, out, "ok 192.0.2.9")
	e.Close()

	st2, jails2 := execFixture(t, map[string]string{"actionban": "sleep 30 & sleep 30"}, time.Second)
	e2, _ := NewExec(st2, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	start := time.Now()
	err := e2.exec("sshd/rec", "actionban", jails2[0].Actions[0].Commands["actionban"], nil, time.Second)
	if err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 10*time.Second {
		t.Fatalf("a command past its timeout: %v after %v", err, time.Since(start))
	}
	e2.Close()
}

// The tags of a ban reach a command exactly as fail2ban's own CommandAction puts them there
// (its Python module from the fetched package runs the same actionban): attacker text in the
// lines included, which both pass as $f2bV_ variables.
func TestCommandMatchesFail2ban(t *testing.T) {
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	dir := t.TempDir()
	c := banChange("192.0.2.7", 1_790_000_000)
	c.Ban.Count = 2
	c.Evidence = &ban.Evidence{Failures: 3, Matches: []string{
		`Dec  3 10:00:01 h sshd[1]: Invalid user $(touch ` + dir + `/pwned) from 192.0.2.7`,
		"Dec  3 10:00:02 h sshd[2]: Invalid user `id`;x|y&z 'q' \"d\" \\b from 192.0.2.7",
		`Dec  3 10:00:03 h sshd[3]: Invalid user <ip> ~!x * ? [a] {b} ^c #d from 192.0.2.7`,
	}, Fields: map[string]string{"user": "$(touch " + dir + "/pwned2)'`id`", "fid": "conn-7", "fport": "22"}}
	tags := TagsOf(c, false)
	var lines []string
	for _, k := range []string{"ip", "fid", "ip-rev", "failures", "time", "bantime", "bancount", "matches", "ipmatches", "ipjailmatches", "ipfailures", "restored",
		"F-USER", "F-ID", "F-FID", "F-PORT", "F-NONE", "F-user"} {
		lines = append(lines, k+`=[<`+k+`>]`)
	}
	script := func(out string) string {
		return `printf '%s\n' "` + strings.Join(lines, `" "`) + `" > ` + out
	}
	goOut, pyOut := filepath.Join(dir, "go"), filepath.Join(dir, "py")
	e, _ := NewExec(nil, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := e.exec("sshd/x", "actionban", script(goOut), tags, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	info := map[string]string{}
	for k, v := range tags {
		if k != "br" && k != "sp" && k != "fq-hostname" && k != "sh-hostname" && !strings.HasPrefix(k, "F-") {
			info[k] = v
		}
	}
	spec, _ := json.Marshal(map[string]any{"name": "sshd", "actionban": script(pyOut), "info": info, "fields": c.Evidence.Fields})
	specPath := filepath.Join(dir, "spec.json")
	os.WriteFile(specPath, spec, 0o644)
	lib := filepath.Join(f2bcorpus.Root(), "usr", "lib", "python3", "dist-packages")
	_, file, _, _ := runtime.Caller(0)
	py := filepath.Join(filepath.Dir(file), "..", "internal", "differential", "f2baction.py")
	if out, err := exec.Command("python3", py, lib, specPath).CombinedOutput(); err != nil {
		t.Fatalf("fail2ban's CommandAction: %v\n%s", err, out)
	}
	g, _ := os.ReadFile(goOut)
	p, _ := os.ReadFile(pyOut)
	if string(g) != string(p) || len(g) == 0 {
		t.Fatalf("portcullis:\n%s\nfail2ban:\n%s", g, p)
	}
	if !strings.Contains(string(g), "$(touch ") || !strings.Contains(string(g), "F-USER=[$(touch ") || !strings.Contains(string(g), "F-ID=[conn-7]") {
		t.Fatalf("the lines or captures did not arrive whole:\n%s", g)
	}
	for _, f := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Fatal("a log line or a capture ran as a command")
		}
	}
}

// Shutdown does not wait for a long queue: the run in progress finishes, the rest stays stored
// for the next start.
func TestExecCloseLeavesTheQueue(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	st, jails := execFixture(t, map[string]string{"actionban": "echo <ip> >> " + out + "; sleep 1"}, time.Minute)
	e, _ := NewExec(st, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.SetJails(jails)
	var batch []Change
	for i := range 20 {
		batch = append(batch, banChange(fmt.Sprintf("192.0.2.%d", i+1), 100))
	}
	if err := st.CommitWith(nil, e.Stage(batch)); err != nil {
		t.Fatal(err)
	}
	e.Apply(nil, 0)
	waitFile(t, out, "192.0.2.1")
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // 20 runs of a second each: a Close that waits for them
		t.Fatal("Close waits for the whole queue")
	}
	n := 0
	st.Jobs("sshd/rec", func(store.Job) bool { n++; return true })
	if n < 17 {
		t.Fatalf("%d jobs left stored, want the ones not run", n)
	}
}

// The webhook action posts each ban to a real HTTP server on loopback, signs it, carries the
// attacker's lines as JSON strings, and retries a refused post.
func TestWebhookPosts(t *testing.T) {
	type got struct {
		body []byte
		sig  string
	}
	posts := make(chan got, 10)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		posts <- got{b, r.Header.Get("X-Portcullis-Signature")}
	}))
	defer srv.Close()
	st, _ := execFixture(t, nil, time.Minute)
	a := config.Action{Name: "webhook", Kind: config.ActionWebhook, Timeout: 5 * time.Second, Args: map[string]string{"actname": "webhook"},
		Webhook: &config.Webhook{URL: srv.URL, Preset: "generic", Secret: "s3cret"}}
	e, _ := NewExec(st, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.SetJails([]*config.Jail{{Name: "sshd", Actions: []config.Action{a}}})
	c := banChange("192.0.2.44", 1_790_000_000)
	evil := `Invalid user "}],"ip":"10.0.0.1","x":[{" $(id) from 192.0.2.44`
	c.Evidence = &ban.Evidence{Failures: 3, Matches: []string{evil}}
	if err := st.CommitWith(nil, e.Stage([]Change{c})); err != nil {
		t.Fatal(err)
	}
	e.Apply(nil, 0)
	var p got
	select {
	case p = <-posts:
	case <-time.After(20 * time.Second):
		t.Fatal("no post arrived")
	}
	e.Close()
	var m map[string]any
	if err := json.Unmarshal(p.body, &m); err != nil {
		t.Fatalf("%v: %s", err, p.body)
	}
	if m["op"] != "ban" || m["ip"] != "192.0.2.44" || m["jail"] != "sshd" || m["failures"] != 3.0 || m["bantime"] != 60.0 {
		t.Fatalf("body: %s", p.body)
	}
	if ms, _ := m["matches"].([]any); len(ms) != 1 || ms[0] != evil {
		t.Fatalf("matches: %v", m["matches"])
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(p.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); p.sig != want {
		t.Fatalf("signature %q, want %q", p.sig, want)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls, want the refused one and its retry", n)
	}
}

// The smtp action delivers a ban's mail, with its lines, to a real SMTP server on loopback
// (Debian's python3-aiosmtpd, storing what it receives in a Maildir).
func TestSMTPDelivers(t *testing.T) {
	srv := testsmtp.Start(t)
	addr := srv.Addr
	st, _ := execFixture(t, nil, time.Minute)
	a := config.Action{Name: "smtp", Kind: config.ActionSMTP, Timeout: 10 * time.Second, Args: map[string]string{"actname": "smtp"},
		SMTP: &config.SMTP{Host: "127.0.0.1", Port: addr.Port, TLS: "opportunistic", From: "portcullis@example.org", To: []string{"admin@example.org"}}}
	e, _ := NewExec(st, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.SetJails([]*config.Jail{{Name: "sshd", Actions: []config.Action{a}}})
	c := banChange("192.0.2.55", 1_790_000_000)
	evil := "Dec  3 10:00:01 h sshd[1]: Invalid user $(reboot) from 192.0.2.55"
	c.Evidence = &ban.Evidence{Failures: 3, Matches: []string{evil}}
	unban := Change{Unban: true, Ban: c.Ban, Reason: "expired"}
	if err := st.CommitWith(nil, e.Stage([]Change{c, unban})); err != nil {
		t.Fatal(err)
	}
	e.Apply(nil, 0)
	for end := time.Now().Add(20 * time.Second); len(srv.Mails()) == 0 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
	}
	e.Close() // the unban's job has run (it sends nothing) or stays queued
	msgs := srv.Mails()
	if len(msgs) != 1 {
		t.Fatalf("%d mails delivered, want one for the ban and none for the unban", len(msgs))
	}
	raw := []byte(msgs[0])
	body, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw))) // the body is quoted-printable
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Subject: [portcullis] sshd: banned 192.0.2.55 from", "To: <admin@example.org>", "after 3 attempts against sshd", evil} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the mail lacks %q:\n%s", want, body)
		}
	}
}

// A digest action sends one message per interval listing every ban queued in it.
func TestWebhookDigest(t *testing.T) {
	posts := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- b
	}))
	defer srv.Close()
	st, _ := execFixture(t, nil, time.Minute)
	a := config.Action{Name: "webhook", Kind: config.ActionWebhook, Timeout: 5 * time.Second, Digest: time.Second,
		Args: map[string]string{"actname": "webhook"}, Webhook: &config.Webhook{URL: srv.URL, Preset: "generic"}}
	e, _ := NewExec(st, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.SetJails([]*config.Jail{{Name: "sshd", Actions: []config.Action{a}}})
	var batch []Change
	for i := range 3 {
		batch = append(batch, banChange(fmt.Sprintf("192.0.2.%d", 60+i), 1_790_000_000))
	}
	if err := st.CommitWith(nil, e.Stage(batch)); err != nil {
		t.Fatal(err)
	}
	e.Apply(nil, 0)
	var body []byte
	select {
	case body = <-posts:
	case <-time.After(20 * time.Second):
		t.Fatal("no digest arrived")
	}
	e.Close()
	if len(posts) != 0 {
		t.Fatalf("%d more posts: a digest is one message", len(posts))
	}
	var m struct {
		Op   string
		Bans []struct{ IP string }
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Op != "digest" || len(m.Bans) != 3 || m.Bans[2].IP != "192.0.2.62" {
		t.Fatalf("digest %s (%v)", body, err)
	}
}
