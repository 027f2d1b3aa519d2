package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

// stockEtc copies Debian's /etc/fail2ban into a folder of the test's and writes jail.local.
func stockEtc(t *testing.T, jailLocal string) string {
	t.Helper()
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	dir := t.TempDir()
	etc := filepath.Join(dir, "fail2ban")
	if err := f2bcorpus.CopyEtc(etc); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "auth.log")
	os.WriteFile(log, nil, 0o644)
	if err := os.WriteFile(filepath.Join(etc, "jail.local"), []byte(strings.ReplaceAll(jailLocal, "@LOG@", log)), 0o644); err != nil {
		t.Fatal(err)
	}
	return etc
}

func actionSummary(j *Jail) string {
	var parts []string
	for _, a := range j.Actions {
		parts = append(parts, a.Name+":"+a.Kind.String())
	}
	return strings.Join(parts, " ")
}

// The most common jail.local, on Debian's stock jail.conf: every action is accounted
// for, the firewall one is native with the jail's ports, mail and the web APIs are executed.
func TestStockActions(t *testing.T) {
	etc := stockEtc(t, `
[DEFAULT]
banaction = iptables-multiport
action = %(action_mwl)s
destemail = admin@example.org
[sshd]
enabled = true
backend = auto
logpath = @LOG@
[nginx-http-auth]
enabled = true
logpath = @LOG@
action = %(action_)s
         cloudflare[cfuser="u@example.org", cftoken="t0ken"]
         abuseipdb[abuseipdb_apikey="k3y", abuseipdb_category="18"]
[mail-only]
enabled = true
filter = sshd
logpath = @LOG@
action = sendmail-whois[dest="admin@example.org"]
[docker]
enabled = true
filter = sshd
logpath = @LOG@
port = 2222
action = nftables[type=allports, chain="DOCKER-USER", blocktype=drop]
[py]
enabled = true
filter = sshd
logpath = @LOG@
action = smtp.py[host="localhost"]
`)
	cfg, err := Load(etc, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sshd":            "iptables-multiport:native nftables sendmail-whois-lines:executed",
		"nginx-http-auth": "iptables-multiport:native nftables cloudflare:executed abuseipdb:executed",
		"mail-only":       "sendmail-whois:executed",
		"docker":          "nftables:native nftables",
	}
	for name, w := range want {
		j := cfg.Jail(name)
		if j == nil {
			t.Fatalf("no jail %s", name)
		}
		if got := actionSummary(j); got != w {
			t.Errorf("%s: %s, want %s", name, got, w)
		}
	}
	ssh := cfg.Jail("sshd")
	if !ssh.Firewall || ssh.Protocol != "tcp" || ssh.BlockType != "reject" || !ssh.ChainHookInput || ssh.ChainHookForward {
		t.Errorf("sshd's firewall: %+v %s %s input=%v forward=%v", ssh.Ports, ssh.Protocol, ssh.BlockType, ssh.ChainHookInput, ssh.ChainHookForward)
	}
	if len(ssh.Ports) != 1 || ssh.Ports[0].From != 22 || ssh.Ports[0].To != 22 {
		t.Errorf("sshd blocks ports %+v, want 22", ssh.Ports)
	}
	mail := ssh.Actions[1]
	ban := mail.Commands["actionban"]
	for _, s := range []string{"admin@example.org", "<ip>", "banned <ip> from <fq-hostname>", "attempts against sshd", "grep -m 1000 -wF"} {
		if !strings.Contains(ban, s) {
			t.Errorf("sendmail-whois-lines actionban lacks %q:\n%s", s, ban)
		}
	}
	if strings.Contains(ban, "<dest>") || strings.Contains(ban, "%(") {
		t.Errorf("sendmail-whois-lines actionban keeps a load-time tag:\n%s", ban)
	}
	if cfg.Jail("mail-only").Firewall {
		t.Error("a jail with only a mail action bans in the kernel (fail2ban does not)")
	}
	dk := cfg.Jail("docker")
	if !dk.Firewall || dk.Ports != nil || dk.BlockType != "drop" || dk.ChainHookInput || !dk.ChainHookForward {
		t.Errorf("docker's firewall: ports %v %s input=%v forward=%v", dk.Ports, dk.BlockType, dk.ChainHookInput, dk.ChainHookForward)
	}
	py := cfg.Jail("py")
	if len(py.Actions) != 1 || py.Actions[0].Kind != ActionRefused || !strings.Contains(py.Actions[0].Reason, "smtp action") {
		t.Errorf("a Python action: %+v", py.Actions)
	}
	// A jail that names no action keeps portcullis's own meaning: nftables with its keys.
	own := t.TempDir()
	os.MkdirAll(filepath.Join(own, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(own, "filter.d", "x.conf"), []byte("[Definition]\nfailregex = ^fail <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(own, "jail.conf"), []byte("[x]\nenabled = true\nlogpath = /var/log/x.log\n"), 0o644)
	c2, err := Load(own, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	if j := c2.Jail("x"); !j.Firewall || len(j.Actions) != 0 {
		t.Errorf("a jail without an action key: firewall %v, actions %v", j.Firewall, j.Actions)
	}
}

// A missing action, bad arguments and a chain we cannot map are errors naming file, line and key.
func TestActionErrors(t *testing.T) {
	etc := stockEtc(t, `
[sshd]
enabled = true
logpath = @LOG@
action = no-such-action
         iptables-multiport[chain="MYCHAIN"]
         mail[dest="a@b"
`)
	_, err := Load(etc, Options{Resolve: noDNS})
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{`no action "no-such-action"`, `chain "MYCHAIN"`, "jail.local:5: action:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// An entry ends at a line break outside brackets and quotes only: a logpath list passed as an
// argument spans lines.
func TestSplitActions(t *testing.T) {
	got := splitActions("iptables-multiport[port=\"ssh\"]\nmail-whois-lines[logpath=\"/var/log/a\n /var/log/b\", dest=x]\n\n abuseipdb\n")
	want := []string{`iptables-multiport[port="ssh"]`, "mail-whois-lines[logpath=\"/var/log/a\n /var/log/b\", dest=x]", "abuseipdb"}
	if !slices.Equal(got, want) {
		t.Fatalf("%q", got)
	}
}

// shippedActionDir is a configuration folder with a one-line filter, our shipped action.d/NAME.conf
// and a jail x whose action is action.
func shippedActionDir(t *testing.T, name, action string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.MkdirAll(filepath.Join(dir, "action.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "x.conf"), []byte("[Definition]\nfailregex = ^fail <HOST>$\n"), 0o644)
	shipped, err := os.ReadFile(filepath.Join("..", "configs", "action.d", name+".conf"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "action.d", name+".conf"), shipped, 0o644)
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[x]\nenabled = true\nlogpath = /var/log/x.log\naction = "+action+"\n"), 0o644)
	return dir
}

// The shipped webhook action is native: read with its arguments, and refused with a bad URL or
// preset, naming file, line and key.
func TestShippedWebhookAction(t *testing.T) {
	dir := shippedActionDir(t, "webhook", `webhook[url="https://ntfy.sh/bans", preset=ntfy, secret=k]`)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jail("x")
	if len(j.Actions) != 1 || j.Actions[0].Kind != ActionWebhook || *j.Actions[0].Webhook != (Webhook{URL: "https://ntfy.sh/bans", Preset: "ntfy", Secret: "k"}) || j.Firewall {
		t.Fatalf("%+v firewall=%v", j.Actions, j.Firewall)
	}
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[x]\nenabled = true\nlogpath = /var/log/x.log\naction = webhook[url=\"ftp://x\", preset=telex]\n"), 0o644)
	_, err = Load(dir, Options{Resolve: noDNS})
	if err == nil || !strings.Contains(err.Error(), `"ftp://x": the webhook needs an http:// or https:// URL`) || !strings.Contains(err.Error(), `"telex": use generic`) {
		t.Fatalf("bad webhook: %v", err)
	}
}

// digest is read on the native notifications, and a bad one is an error.
func TestDigestOption(t *testing.T) {
	dir := shippedActionDir(t, "smtp", `smtp[dest="a@example.org", digest=10m]`)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Jail("x").Actions[0]; a.Kind != ActionSMTP || a.Digest != 10*time.Minute || a.SMTP.To[0] != "a@example.org" {
		t.Fatalf("%+v", a)
	}
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[x]\nenabled = true\nlogpath = /var/log/x.log\naction = smtp[digest=soon]\n"), 0o644)
	if _, err := Load(dir, Options{Resolve: noDNS}); err == nil || !strings.Contains(err.Error(), `"soon": a time such as 10m`) {
		t.Fatalf("bad digest: %v", err)
	}
}

// [Init?family=inet6] gives IPv6 bans their own commands (hostsdeny writes [<ip>], cloudflare's
// target is ip6), and a tag the action does not define is the jail's own option, as fail2ban's
// getCombOption resolves it.
func TestActionFamiliesAndJailTags(t *testing.T) {
	etc := stockEtc(t, `
[sshd]
enabled = true
logpath = @LOG@
action = hostsdeny[file="/tmp/hosts.deny"]
         cloudflare-token[cfzone="z", cftoken="t"]
         mine
myowntag = from-the-jail
`)
	os.WriteFile(filepath.Join(etc, "action.d", "mine.conf"), []byte(`[Definition]
actionban = echo <ip> <myowntag> <maxretry> <logpath> <name> <F-USER>
`), 0o644)
	cfg, err := Load(etc, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jail("sshd")
	hd, cf, mine := j.Actions[0], j.Actions[1], j.Actions[2]
	if got := hd.Command("actionban", "inet4"); got != `printf %b "ALL: <ip>\n" >> /tmp/hosts.deny` {
		t.Errorf("hostsdeny inet4: %q", got)
	}
	if got := hd.Command("actionban", "inet6"); got != `printf %b "ALL: [<ip>]\n" >> /tmp/hosts.deny` {
		t.Errorf("hostsdeny inet6: %q", got)
	}
	if !strings.Contains(cf.Command("actionban", "inet4"), `"target":"ip"`) || !strings.Contains(cf.Command("actionban", "inet6"), `"target":"ip6"`) {
		t.Errorf("cloudflare-token:\n%s\n%s", cf.Command("actionban", "inet4"), cf.Command("actionban", "inet6"))
	}
	if mine.Commands6 != nil {
		t.Errorf("an action without [Init?family=inet6] has IPv6 commands: %v", mine.Commands6)
	}
	want := "echo <ip> from-the-jail 5 " + j.LogPaths[0].Pattern + " sshd <F-USER>"
	if got := mine.Command("actionban", "inet6"); got != want {
		t.Errorf("jail options as tags:\n got %q\nwant %q", got, want)
	}
	if !j.UsesFields() || cfg.Jail("sshd").Actions[0].Kind != ActionExec {
		t.Error("a jail whose action uses <F-USER> does not ask for captures")
	}
}
