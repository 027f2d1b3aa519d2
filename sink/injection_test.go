package sink

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
	"github.com/portcullis/portcullis/internal/samples"
	"github.com/portcullis/portcullis/matcher"
)

// Attacker text never reaches a shell as code, through any shipped filter: in every sample of
// configs/filter.d, each attacker-written field (the sample's "user" and "inject" strings) is
// replaced by shell payloads (command substitution, backticks, ; | & chains, quotes, mailx's ~!
// escape, a glob); every variant the filter still counts becomes a line of one ban, and that ban
// runs Debian's stock sendmail-whois-matches actionban (which pipes <matches> into the mail) and a
// curl-style command line as abuseipdb writes it, with mailcmd and curl replaced by cat into a
// file. No payload may run; the lines must arrive whole.
func TestActionsInjectionCorpus(t *testing.T) {
	if err := f2bcorpus.Ensure(); err != nil {
		t.Fatalf("fail2ban's package: %v", err)
	}
	dir := t.TempDir()
	mark := filepath.Join(dir, "PWNED")
	payloads := []string{
		"$(touch " + mark + ")", "`touch " + mark + "`", "x;touch " + mark + ";", "x|touch " + mark, "x&&touch " + mark,
		"x' ; touch " + mark + " ; '", "x\" ; touch " + mark + " ; \"", "~! touch " + mark, "${IFS}$(touch${IFS}" + mark + ")", "*",
	}
	// Debian's own sendmail-whois-matches, its mailcmd a file.
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(filepath.Join(etc, "filter.d"), 0o755)
	os.MkdirAll(filepath.Join(etc, "action.d"), 0o755)
	stock := filepath.Join(f2bcorpus.Root(), "etc", "fail2ban", "action.d")
	for _, f := range []string{"sendmail-whois-matches.conf", "sendmail-common.conf", "mail-whois-common.conf", "helpers-common.conf"} {
		if b, err := os.ReadFile(filepath.Join(stock, f)); err == nil {
			os.WriteFile(filepath.Join(etc, "action.d", f), b, 0o644)
		}
	}
	mailOut := filepath.Join(dir, "mail")
	os.WriteFile(filepath.Join(etc, "action.d", "sendmail-common.local"), []byte("[Init]\nmailcmd = cat >> "+mailOut+"\n"), 0o644)
	curlOut := filepath.Join(dir, "curl")
	os.WriteFile(filepath.Join(etc, "action.d", "report.conf"), []byte("[Definition]\nactionban = printf '%%s\\n' --data-urlencode \"comment=<matches>\" --data-urlencode \"ip=<ip>\" >> "+curlOut+"\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "filter.d", "x.conf"), []byte("[Definition]\nfailregex = ^x <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "jail.conf"), []byte("[x]\nenabled = true\nlogpath = /var/log/x.log\naction = sendmail-whois-matches[dest=\"a@example.org\"]\n         report\n"), 0o644)
	cfg, err := config.Load(etc, config.Options{Resolve: func(string) ([]netip.Addr, error) { return nil, fmt.Errorf("no DNS") }})
	if err != nil {
		t.Fatal(err)
	}
	actions := cfg.Jail("x").Actions
	if len(actions) != 2 || actions[0].Kind != config.ActionExec {
		t.Fatalf("actions: %+v", actions)
	}
	e, _ := NewExec(nil, ExecOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})

	filterDir := filepath.Join("..", "configs", "filter.d")
	entries, _ := os.ReadDir(filterDir)
	var names []string
	for _, en := range entries {
		if n, ok := strings.CutSuffix(en.Name(), ".conf"); ok && !strings.HasSuffix(n, "common") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	now := time.Unix(1124013600, 0)
	total := 0
	for _, name := range names {
		f, errs := config.LoadFilter(filterDir, name, nil)
		if errs != nil {
			t.Fatalf("%s: %v", name, errs)
		}
		m, err := matcher.New([]matcher.JailSpec{{ID: 0, Name: name, Filter: f}}, matcher.Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w, _ := m.NewWorker()
		injections, _ := samples.Injections(filepath.Join("..", "testdata", "filters", name+".log"))
		var counted []string
		for _, in := range injections {
			for _, target := range in.Targets {
				for _, p := range payloads {
					variant := strings.Replace(in.Line, target, p, 1)
					if r, err := w.Explain(0, []byte(variant)); err == nil && r.Matched {
						counted = append(counted, variant)
					}
				}
			}
		}
		w.Close()
		m.Close()
		if len(counted) == 0 {
			continue
		}
		total += len(counted)
		c := banChange("192.0.2.99", now.Unix())
		c.Ban.Jail = "x"
		c.Evidence = &ban.Evidence{Failures: len(counted), Matches: counted}
		tags := TagsOf(c, false)
		for _, a := range actions {
			if err := e.exec("x/"+a.Name, "actionban", a.Commands["actionban"], tags, 30*time.Second); err != nil {
				t.Fatalf("%s through %s: %v", name, a.Name, err)
			}
		}
		if _, err := os.Stat(mark); err == nil {
			t.Fatalf("%s: a payload in a log line ran as a shell command", name)
		}
		mail, _ := os.ReadFile(mailOut)
		curl, _ := os.ReadFile(curlOut)
		for _, l := range counted {
			if !strings.Contains(string(mail), l) || !strings.Contains(string(curl), l) {
				t.Fatalf("%s: a line did not arrive whole:\n%s", name, l)
			}
		}
	}
	if total < 200 {
		t.Fatalf("only %d stuffed lines were still counted by the filters: the corpus proves little", total)
	}
	t.Logf("%d stuffed lines over %d filters through Debian's sendmail-whois-matches and a curl-style report: none ran", total, len(names))
}
