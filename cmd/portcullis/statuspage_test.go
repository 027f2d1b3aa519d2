package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/portcullis/portcullis/internal/netnstest"
)

// artifactDir is where tests leave files for people (the status page's screenshot):
// PORTCULLIS_ARTIFACTS, else build/test-artifacts in the repository.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("PORTCULLIS_ARTIFACTS")
	if dir == "" {
		abs, err := filepath.Abs("../../build/test-artifacts")
		if err != nil {
			t.Fatal(err)
		}
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The status page in Debian's Chromium, headless, driven by chromedp: the daemon runs in the
// test's network namespace with a token; the page loads, then an attack is written to the log
// and its ban appears in the page without a reload, the jail's failures chart moves, and the
// attacker's text in the evidence (a user name that is a script, an image with an onerror) is
// shown as text: no dialog opens, no element is made of it. The screenshot is saved as an
// artifact.
func TestSystemStatusPageInBrowser(t *testing.T) {
	netnstest.Require(t)
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: make deps installs Debian's")
	}
	e := newEnv(t, systemJails)
	conf := fmt.Sprintf("[Definition]\nsocket = %s\nauditlog = %s\nmetrics_token = t0ken\n", e.socket, filepath.Join(e.dir, "audit.log"))
	if err := os.WriteFile(filepath.Join(e.cfg, "portcullis.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := e.start()

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	var dialogs atomic.Int32
	if err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer t0ken"}}); err != nil {
		t.Fatal(err)
	}
	chart := chromedp.AttributeValue(chromedp.CSS(`#jails tr[data-jail="sshd"] polyline.f`), "points")
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+e.metrics+"/"), chromedp.WaitVisible(chromedp.CSS("#live.on"))); err != nil {
		t.Fatalf("loading the page: %v\n%s", err, d.stderr)
	}
	before, err := chromedp.Run(ctx, chart)
	if err != nil {
		t.Fatal(err)
	}

	// The attack, after the page is up: the page must show it by itself.
	var lines []string
	for i, user := range []string{"<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "\"><svg onload=alert(3)>"} {
		lines = append(lines, fmt.Sprintf("%s testhost sshd[%d]: Failed password for invalid user %s from 203.0.113.90 port %d ssh2", stamp(), 700+i, user, 6000+i))
	}
	e.appendLog(lines...)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(`//table[@id="bans"]//td[text()="203.0.113.90"]`))); err != nil {
		t.Fatalf("the ban did not appear without a reload: %v\n%s", err, d.stderr)
	}
	evidence, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#bans tbody td.ev`)))
	if err != nil {
		t.Fatal(err)
	}
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#bans img, #bans svg, #bans script, #timeline img").length`))
	if err != nil {
		t.Fatal(err)
	}
	after, err := chromedp.Run(ctx, chart)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"invalid user <script>alert(1)</script> from", "invalid user <img src=x onerror=alert(2)> from", `invalid user "><svg onload=alert(3)> from`} {
		if !strings.Contains(evidence, want) {
			t.Errorf("the evidence does not show %q as text:\n%s", want, evidence)
		}
	}
	if injected != 0 || dialogs.Load() != 0 {
		t.Fatalf("attacker text became markup: %d elements, %d dialogs", injected, dialogs.Load())
	}
	if before.Value == after.Value {
		t.Fatalf("the failures chart did not move: %q", after.Value)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifactDir(t), "status-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}
