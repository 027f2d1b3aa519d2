package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

func noDNS(name string) ([]netip.Addr, error) { return nil, fmt.Errorf("no DNS in tests") }

func TestShippedConfig(t *testing.T) {
	cfg, err := Load("../configs", Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Jails) != 1 || cfg.Jails[0].Name != "sshd" {
		t.Fatalf("shipped config enables %d jails, want just sshd", len(cfg.Jails))
	}
	j := cfg.Jails[0]
	if j.MaxRetry != 5 || j.FindTime != 10*time.Minute || j.BanTime != 10*time.Minute || !j.IgnoreSelf {
		t.Fatalf("sshd defaults: %+v", j)
	}
	if len(j.Ports) != 1 || j.Ports[0] != (PortRange{From: 22, To: 22}) || j.Protocol != "tcp" {
		t.Fatalf("sshd ports %v %s", j.Ports, j.Protocol)
	}
	if len(j.LogPaths) != 1 || j.LogPaths[0].Pattern != "/var/log/auth.log" {
		t.Fatalf("sshd logpath %v", j.LogPaths)
	}
	if len(j.Filter.FailRegex) < 6 {
		t.Fatalf("sshd filter has %d failregexes", len(j.Filter.FailRegex))
	}
	for _, r := range j.Filter.FailRegex {
		if strings.Contains(r.Text, "%(") || !strings.Contains(r.Text, "<HOST>") || !strings.HasPrefix(r.Text, "^") {
			t.Errorf("failregex not fully interpolated or not anchored: %s", r.Text)
		}
	}
	if cfg.Daemon.Socket != DefaultSocket || cfg.Daemon.DBDir != DefaultDBDir || cfg.Daemon.Metrics != DefaultMetrics {
		t.Fatalf("daemon settings %+v", cfg.Daemon)
	}
}

func TestLayeredConfig(t *testing.T) {
	cfg, err := Load("testdata/layered", Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Jails) != 2 {
		t.Fatalf("want jails sshd and app, got %d", len(cfg.Jails))
	}
	ssh := cfg.Jail("sshd")
	// jail.conf < jail.d/*.conf < jail.local < jail.d/*.local
	if ssh.MaxRetry != 4 {
		t.Errorf("sshd maxretry %d, want 4 (jail.local over jail.d/10-sshd.conf)", ssh.MaxRetry)
	}
	if ssh.BanTime != Forever || ssh.FindTime != 24*time.Hour {
		t.Errorf("sshd bantime %v findtime %v, want forever and 1d from jail.d/20-sshd.local", ssh.BanTime, ssh.FindTime)
	}
	if ssh.LogPaths[0].Pattern != "/var/log/auth.log" {
		t.Errorf("logpath through [INCLUDES] before: %v", ssh.LogPaths)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}
	if fmt.Sprint(ssh.IgnoreIP) != fmt.Sprint(want) {
		t.Errorf("ignoreip %v, want %v (%%(known/ignoreip)s plus the new CIDR, inline comment stripped)", ssh.IgnoreIP, want)
	}
	if got := ssh.Filter.FailRegex[0].Text; got != `^\s*\S+ sshd(?:\[\d+\])?:\s+Failed password for .* from <HOST> port \d+` {
		t.Errorf("sshd failregex[0] = %s", got)
	}
	if r := ssh.Filter.FailRegex[1]; !strings.HasSuffix(r.File, "sshd.conf") || r.Line != 7 {
		t.Errorf("failregex[1] located at %s:%d, want sshd.conf:7", r.File, r.Line)
	}

	app := cfg.Jail("app")
	if len(app.LogPaths) != 2 || app.LogPaths[1] != (LogPath{Pattern: "/var/log/app.log", Head: true}) {
		t.Errorf("app logpaths %+v", app.LogPaths)
	}
	if fmt.Sprint(app.Ports) != "[{80 80} {443 443} {8000 8010}]" {
		t.Errorf("app ports %v", app.Ports)
	}
	// filter = app[mode=%(mode)s] with mode = strict in the jail: <re-<mode>> becomes the strict regex.
	if got := app.Filter.FailRegex[0].Text; got != `^\s*\S+ app(?:\[\d+\])?:\s+(?:denied|refused) (?P<user>\w+) from <HOST>$` {
		t.Errorf("app failregex = %s", got)
	}
	if len(app.Filter.IgnoreRegex) != 2 || !strings.Contains(app.Filter.IgnoreRegex[1].Text, "monitor check") {
		t.Errorf("app ignoreregex (known/ from app.local) = %+v", app.Filter.IgnoreRegex)
	}
	if app.Filter.DatePattern != "{^LN-BEG}" {
		t.Errorf("datepattern %q", app.Filter.DatePattern)
	}
}

// Each folder in testdata/invalid must fail to load with every error in its want.txt, reported
// together.
func TestInvalidConfigs(t *testing.T) {
	dirs, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata/invalid", d.Name())
			wantRaw, err := os.ReadFile(filepath.Join(dir, "want.txt"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(dir, Options{Resolve: noDNS})
			if err == nil {
				t.Fatal("loaded without error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			wants := strings.Split(strings.TrimSpace(string(wantRaw)), "\n")
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors lack %q; got:\n%v", w, err)
				}
			}
			if len(es) < len(wants) {
				t.Errorf("%d errors reported, want at least %d", len(es), len(wants))
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Fatalf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("600", 10*time.Minute)
	f("10m", 10*time.Minute)
	f("1h", time.Hour)
	f("1d", 24*time.Hour)
	f("1h 30m", 90*time.Minute)
	f("2w", 14*24*time.Hour)
	f("1.5h", 90*time.Minute)
	f("30 seconds", 30*time.Second)
	f("-1", Forever)
	for _, bad := range []string{"", "ten", "10 parsecs", "h"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestParsePortsAndFilterSpec(t *testing.T) {
	p, err := ParsePorts("ssh, 2222, 6000:6010", "tcp")
	if err != nil || fmt.Sprint(p) != "[{22 22} {2222 2222} {6000 6010}]" {
		t.Fatalf("%v %v", p, err)
	}
	for _, all := range []string{"0:65535", "all", "any"} {
		if p, err := ParsePorts(all, "tcp"); err != nil || p != nil {
			t.Fatalf("%s: %v %v; want every port", all, p, err)
		}
	}
	if _, err := ParsePorts("10:5", "tcp"); err == nil {
		t.Fatal("backwards range accepted")
	}
	name, args, err := ParseFilterSpec(`sshd[mode=aggressive, port="22,2222", x='a b']`)
	if err != nil || name != "sshd" || args["mode"] != "aggressive" || args["port"] != "22,2222" || args["x"] != "a b" {
		t.Fatalf("%q %v %v", name, args, err)
	}
	if _, _, err := ParseFilterSpec("sshd[mode=x"); err == nil {
		t.Fatal("unterminated arguments accepted")
	}
}

// fail2ban's %(default/x)s names [DEFAULT]'s x even inside a jail that sets x itself (Debian's
// paths-common.conf relies on it).
func TestDefaultPrefixInterpolation(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "x.conf"), []byte("[Definition]\nfailregex = ^x <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(`[DEFAULT]
maxretry = 7
base_retry = %(default/maxretry)s
[x]
enabled = true
filter = x
logpath = /var/log/x.log
maxretry = %(base_retry)s
findtime = %(default/maxretry)sm
`), 0o644)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	if j := cfg.Jails[0]; j.MaxRetry != 7 || j.FindTime != 7*time.Minute {
		t.Fatalf("maxretry %d findtime %v", j.MaxRetry, j.FindTime)
	}
}

func TestUseDNSLogTimezoneAndConditionalSections(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "x.conf"), []byte(`[Init]
word = v4
[Init?family=inet6]
word = v6
[Definition]
failregex = ^<word> <HOST>$
`), 0o644)
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(`[a]
enabled = true
filter = x[family=inet6]
logpath = /var/log/x.log
usedns = no
logtimezone = UTC+0530
[b]
enabled = true
filter = x
logpath = /var/log/x.log
logtimezone = Europe/Berlin
`), 0o644)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Jail("a"), cfg.Jail("b")
	if a.Filter.FailRegex[0].Text != "^v6 <HOST>$" || b.Filter.FailRegex[0].Text != "^v4 <HOST>$" {
		t.Fatalf("conditional [Init?family=inet6]: %q / %q", a.Filter.FailRegex[0].Text, b.Filter.FailRegex[0].Text)
	}
	if a.UseDNS != "no" || b.UseDNS != "warn" {
		t.Fatalf("usedns %q %q", a.UseDNS, b.UseDNS)
	}
	if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, a.LogTimezone).Zone(); off != 5*3600+30*60 {
		t.Fatalf("logtimezone UTC+0530 gave offset %d", off)
	}
	if b.LogTimezone.String() != "Europe/Berlin" {
		t.Fatalf("logtimezone %v", b.LogTimezone)
	}
	for _, bad := range []string{"UTC+99", "UTC*1", "Mars/Olympus"} {
		if _, err := ParseTimezone(bad); err == nil {
			t.Errorf("ParseTimezone(%q) accepted", bad)
		}
	}
	os.WriteFile(filepath.Join(dir, "jail.local"), []byte("[a]\nusedns = maybe\nlogtimezone = Mars/Olympus\n"), 0o644)
	_, err = Load(dir, Options{Resolve: noDNS})
	if err == nil || !strings.Contains(err.Error(), "jail.local:2: usedns") || !strings.Contains(err.Error(), "jail.local:3: logtimezone") {
		t.Fatalf("bad usedns/logtimezone: %v", err)
	}
}

// ignoreip = file:PATH reads a list (fail2ban's syntax): addresses, CIDRs and names, with comments;
// a bad entry is an error naming the jail key, the list file and its line.
func TestIgnoreIPFile(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "trusted.lst")
	os.WriteFile(list, []byte("# office and monitoring\n198.51.100.7, 2001:db8:1::/48  # the v6 office\n\nmonitor.example\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "f.conf"), []byte("[Definition]\nfailregex = ^bad <HOST>$\n"), 0o644)
	jail := "[j]\nenabled = true\nfilter = f\nlogpath = /dev/null\nignoreip = 127.0.0.1/8 file:" + list + "\n"
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(jail), 0o644)
	resolve := func(name string) ([]netip.Addr, error) {
		if name == "monitor.example" {
			return []netip.Addr{netip.MustParseAddr("203.0.113.9")}, nil
		}
		return nil, fmt.Errorf("no such host %s", name)
	}
	cfg, err := Load(dir, Options{Resolve: resolve})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.Jails[0].IgnoreIP); got != "[127.0.0.0/8 198.51.100.7/32 2001:db8:1::/48 203.0.113.9/32]" {
		t.Fatalf("ignoreip %s", got)
	}
	os.WriteFile(list, []byte("198.51.100.7\n\n10.0.0.0/33\n"), 0o644)
	_, err = Load(dir, Options{Resolve: resolve})
	if err == nil || !strings.Contains(err.Error(), "ignoreip") || !strings.Contains(err.Error(), "file:"+list+" line 3") || !strings.Contains(err.Error(), "jail.conf") {
		t.Fatalf("bad list entry: %v", err)
	}
	os.Remove(list)
	if _, err = Load(dir, Options{Resolve: resolve}); err == nil || !strings.Contains(err.Error(), list) {
		t.Fatalf("missing list: %v", err)
	}
}

// ignorecommand is split like a command line (quotes group, no shell), needs an absolute path,
// and a broken one names the key.
func TestIgnoreCommandKey(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "f.conf"), []byte("[Definition]\nfailregex = ^bad <HOST>$\n"), 0o644)
	load := func(cmd string) (*Config, error) {
		os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[j]\nenabled = true\nfilter = f\nlogpath = /dev/null\nignorecommand = "+cmd+"\n"), 0o644)
		return Load(dir, Options{Resolve: noDNS})
	}
	cfg, err := load(`/usr/local/bin/check --mode "a b" '<ip>'`)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%q", cfg.Jails[0].IgnoreCommand); got != `["/usr/local/bin/check" "--mode" "a b" "<ip>"]` {
		t.Fatalf("argv %s", got)
	}
	for _, bad := range []string{"check.sh <ip>", `/bin/check "unclosed`} {
		if _, err := load(bad); err == nil || !strings.Contains(err.Error(), "ignorecommand") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Every jail shipped in configs/jail.conf loads when enabled: its filter exists and compiles into
// a configuration, its ports and paths parse.
func TestShippedJailsAllLoad(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../configs/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	ini := NewINI()
	var errs Errors
	ini.ReadFile(filepath.Join(dir, "jail.conf"), false, &errs)
	var local strings.Builder
	n := 0
	for _, s := range ini.Sections() {
		if s == "DEFAULT" || s == "INCLUDES" {
			continue
		}
		fmt.Fprintf(&local, "[%s]\nenabled = true\n", s)
		n++
	}
	os.WriteFile(filepath.Join(dir, "jail.local"), []byte(local.String()), 0o644)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Jails) != n || n < 40 {
		t.Fatalf("%d of %d shipped jails enabled", len(cfg.Jails), n)
	}
	// The jail.d examples load as they are once copied to .local (the collector's with the TLS
	// listener its comment asks for).
	os.WriteFile(filepath.Join(dir, "portcullis.local"), []byte("[Definition]\nsyslog_tls = 0.0.0.0:6514\nsyslog_tls_cert = /c.pem\nsyslog_tls_key = /k.pem\nsyslog_tls_client_ca = /ca.pem\n"), 0o644)
	examples, _ := filepath.Glob(filepath.Join(dir, "jail.d", "*.example"))
	if len(examples) < 2 {
		t.Fatalf("jail.d examples: %v", examples)
	}
	for _, ex := range examples {
		data, _ := os.ReadFile(ex)
		os.WriteFile(strings.TrimSuffix(strings.TrimSuffix(ex, ".example"), ".conf")+".local", data, 0o644)
	}
	cfg, err = Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatalf("with the jail.d examples: %v", err)
	}
	for _, name := range []string{"sshd-collector", "caddy-auth", "nginx-json-4xx"} {
		if cfg.Jail(name) == nil {
			t.Errorf("example jail %s not loaded", name)
		}
	}
}

// chain_hook, the banprefix escalation rules and maxmatches parse once each, whatever their order.
func TestFirewallAndAggregationKeys(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "f.conf"), []byte("[Definition]\nfailregex = ^bad <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[j]\nenabled = true\nfilter = f\nlogpath = /dev/null\n"+
		"chain_hook = input, forward\nbanprefix6 = 64\nbanprefix6_escalate = 56:3 48:8\nbanprefix4_escalate = 16:4\nmaxmatches = 2\n"), 0o644)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jails[0]
	if !j.ChainHookInput || !j.ChainHookForward || j.MaxMatches != 2 || j.BanPrefix6 != 64 {
		t.Fatalf("jail %+v", j)
	}
	if got := fmt.Sprint(j.Escalate); got != "[{false 16 4} {true 56 3} {true 48 8}]" {
		t.Fatalf("escalation rules %s", got)
	}
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[j]\nenabled = true\nfilter = f\nlogpath = /dev/null\nchain_hook = sideways\nbanprefix6_escalate = 64:1\n"), 0o644)
	if _, err := Load(dir, Options{Resolve: noDNS}); err == nil || !strings.Contains(err.Error(), "chain_hook") || !strings.Contains(err.Error(), "banprefix6_escalate") {
		t.Fatalf("bad keys: %v", err)
	}
}

// The shipped collector example loads once its TLS settings are in portcullis.conf, and its
// jails read only certified senders; without a client CA, cert: senders are an error.
func TestCollectorExampleNeedsClientCertificates(t *testing.T) {
	dir := t.TempDir()
	cp := exec.Command("cp", "-r", "../configs/.", dir)
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.Rename(filepath.Join(dir, "jail.d", "syslog-collector.conf.example"), filepath.Join(dir, "jail.d", "syslog-collector.local")); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "portcullis.local")
	os.WriteFile(local, []byte("[Definition]\nsyslog_tls = 127.0.0.1:6514\nsyslog_tls_cert = /x.crt\nsyslog_tls_key = /x.key\n"), 0o644)
	_, err := Load(dir, Options{Resolve: noDNS})
	if err == nil || !strings.Contains(err.Error(), "syslog_tls_client_ca") || !strings.Contains(err.Error(), "syslog-collector.local:") {
		t.Fatalf("cert: senders without a client CA: %v", err)
	}
	os.WriteFile(local, []byte("[Definition]\nsyslog_tls = 127.0.0.1:6514\nsyslog_tls_cert = /x.crt\nsyslog_tls_key = /x.key\nsyslog_tls_client_ca = /ca.crt\n"), 0o644)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range cfg.Jails {
		if j.Syslog {
			n++
			if len(j.SyslogIdentities) == 0 || len(j.SyslogSenders) != 0 {
				t.Errorf("jail %s reads senders %v / %v; want certificate names only", j.Name, j.SyslogSenders, j.SyslogIdentities)
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d syslog jails, want the example's 3", n)
	}
}

// A key within a typo of a known option is reported with its file and line and the option meant;
// keys a configuration defines for its own interpolation, and Debian's stock jail.conf, are not.
func TestMisspelledKeysWarn(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "app.conf"), []byte("[Definition]\nfailregex = ^x <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[DEFAULT]\nbantme = 1h\nmy_port = 2222\n[app]\nenabled = true\nfilter = app\nlogpath = /var/log/app.log\nmaxretyr = 3\nport = %(my_port)s\nfindtime = 10m\n"), 0o644)
	cfg, err := Load(dir, Options{Resolve: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{
		filepath.Join(dir, "jail.conf") + `:2: [DEFAULT] unknown option "bantme" is ignored; did you mean "bantime"?`,
		filepath.Join(dir, "jail.conf") + `:8: [app] unknown option "maxretyr" is ignored; did you mean "maxretry"?`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "my_port") || strings.Count(got, "did you mean") != 2 {
		t.Errorf("warnings: %s", got)
	}
	// A misspelled daemon option is an error naming the one meant.
	os.WriteFile(filepath.Join(dir, "portcullis.conf"), []byte("[Definition]\nsyslog_tpc = 0.0.0.0:514\n"), 0o644)
	if _, err := Load(dir, Options{Resolve: noDNS}); err == nil || !strings.Contains(err.Error(), `did you mean "syslog_tcp"?`) {
		t.Errorf("misspelled daemon option: %v", err)
	}
}

func TestStockFail2banJailsHaveNoTypos(t *testing.T) {
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	ini := NewINI()
	var errs Errors
	ini.readLayered(filepath.Join(f2bcorpus.Root(), "etc", "fail2ban"), "jail", true, &errs)
	if len(ini.Sections()) < 50 {
		t.Fatalf("read %d sections of Debian's jail.conf", len(ini.Sections()))
	}
	if w := typoWarnings(ini); len(w) != 0 {
		t.Fatalf("Debian's stock jail.conf warns:\n%s", strings.Join(w, "\n"))
	}
}

// Syslog listen addresses are checked when the configuration loads, whether or not a jail reads
// syslog, and each error names its file and line.
func TestSyslogListenAddressesChecked(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "jail.conf"), nil, 0o644)
	for _, bad := range []string{"syslog_udp = garbage", "syslog_tcp = 127.0.0.1:99999", "syslog_tls = example.org:6514", "syslog_udp = :port"} {
		os.WriteFile(filepath.Join(dir, "portcullis.conf"), []byte("[Definition]\n"+bad+"\n"), 0o644)
		_, err := Load(dir, Options{Resolve: noDNS})
		key, _, _ := strings.Cut(bad, " ")
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "portcullis.conf")+":2: "+key) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	for _, good := range []string{"syslog_udp = 0.0.0.0:514", "syslog_tcp = [::]:514", "syslog_tcp = localhost:6514", "syslog_udp = :514"} {
		os.WriteFile(filepath.Join(dir, "portcullis.conf"), []byte("[Definition]\n"+good+"\n"), 0o644)
		if _, err := Load(dir, Options{Resolve: noDNS}); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}
