// Package packaging holds what `make install` puts on a host besides the binary: the systemd
// unit, man pages, completions and the logrotate file. Its test installs into a staging tree.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make install DESTDIR=… PREFIX=/usr lays out what a Debian admin expects, with the unit's
// ExecStart pointing at the installed binary, man pages groff reads without a warning, a bash
// completion bash parses, and an admin's edited configuration left alone by a second install.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is missing")
	}
	dest := t.TempDir()
	install := func() {
		t.Helper()
		cmd := exec.Command("make", "-s", "install", "DESTDIR="+dest, "PREFIX=/usr")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install()
	for _, f := range []string{
		"usr/sbin/portcullis", "etc/portcullis/portcullis.conf", "etc/portcullis/jail.conf",
		"etc/portcullis/filter.d/sshd.conf", "etc/portcullis/action.d/webhook.conf",
		"lib/systemd/system/portcullis.service", "usr/share/man/man8/portcullis.8",
		"usr/share/man/man5/portcullis.conf.5", "usr/share/man/man5/portcullis-jail.conf.5",
		"usr/share/bash-completion/completions/portcullis", "usr/share/zsh/vendor-completions/_portcullis",
		"etc/logrotate.d/portcullis", "etc/default/portcullis",
	} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %s", f)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "lib/systemd/system/portcullis.service"))
	for _, want := range []string{"ExecStart=/usr/sbin/portcullis run -c ${PORTCULLIS_CONFIG}", "EnvironmentFile=-/etc/default/portcullis", "Conflicts=fail2ban.service", "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_ADMIN"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	for _, m := range []string{"man8/portcullis.8", "man5/portcullis.conf.5", "man5/portcullis-jail.conf.5"} {
		out, err := exec.Command("groff", "-man", "-ww", "-z", filepath.Join(dest, "usr/share/man", m)).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("%s: %v %s", m, err, out)
		}
	}
	if out, err := exec.Command("bash", "-n", filepath.Join(dest, "usr/share/bash-completion/completions/portcullis")).CombinedOutput(); err != nil {
		t.Errorf("bash completion: %v %s", err, out)
	}
	if out, err := exec.Command(filepath.Join(dest, "usr/sbin/portcullis"), "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "portcullis ") {
		t.Errorf("the installed binary: %v %s", err, out)
	}
	if out, err := exec.Command(filepath.Join(dest, "usr/sbin/fail2ban-client"), "-V").CombinedOutput(); err != nil || string(out) != "1.0.2\n" {
		t.Errorf("the installed fail2ban-client: %v %q", err, out)
	}
	conf := filepath.Join(dest, "etc/portcullis/portcullis.conf")
	os.WriteFile(conf, []byte("[Definition]\n# the admin's\n"), 0o644)
	install()
	if b, _ := os.ReadFile(conf); string(b) != "[Definition]\n# the admin's\n" {
		t.Errorf("a second install overwrote the admin's portcullis.conf:\n%s", b)
	}
}
