package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/web"
)

// The status page and its API on the metrics listener: behind the token, read-only, under the
// CSP; a ban shows with its evidence, and the attacker's text in it is escaped in the page; the
// per-minute rings and the top list count it.
func TestStatusPage(t *testing.T) {
	u := startUnit(t, unitJail, "metrics_token = s3cret\n")
	addr := freeAddr(t)
	u.opts.Metrics = addr
	u.restart(t)
	f, err := os.OpenFile(u.log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		fmt.Fprintf(f, "%s host sshd[%d]: Failed password for invalid user <script>alert(1)</script> from 203.0.113.80 port %d ssh2\n", time.Now().Format(time.Stamp), 100+i, 5000+i)
	}
	f.Close()
	waitFor(t, "the ban", func() bool { return u.inSet(t, "sshd", "203.0.113.80/32") })
	u.applier.flush()

	get := func(method, path, auth string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, p := range []string{"/", "/api/bans", "/metrics"} {
		if r, _ := get("GET", p, ""); r.StatusCode != 401 {
			t.Errorf("%s without the token: %d", p, r.StatusCode)
		}
		if r, _ := get("GET", p, "Bearer wrong"); r.StatusCode != 401 {
			t.Errorf("%s with a wrong token: %d", p, r.StatusCode)
		}
	}
	bearer := "Bearer s3cret"
	r, page := get("GET", "/", bearer)
	if r.StatusCode != 200 || r.Header.Get("Content-Security-Policy") != web.CSP {
		t.Fatalf("page: %d, CSP %q", r.StatusCode, r.Header.Get("Content-Security-Policy"))
	}
	if strings.Contains(page, "<script>alert(1)") || !strings.Contains(page, "user &lt;script&gt;alert(1)&lt;/script&gt; from 203.0.113.80") {
		t.Fatalf("the evidence is not escaped in the page:\n%s", page)
	}
	if !strings.Contains(page, `<td class="addr">203.0.113.80</td>`) {
		t.Fatalf("the ban is not in the page's table (no script needed):\n%s", page)
	}
	if r, _ := get("POST", "/", bearer); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.StatusCode)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/summary", nil)
	req.SetBasicAuth("anyone", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var s web.Summary
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("summary with basic auth: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	j := s.Jails[0]
	if len(j.Failures) != 24*60 || j.Failures[len(j.Failures)-1] != 3 || j.Bans[len(j.Bans)-1] != 1 || j.Banned != 1 || s.Summary.Bans != 1 {
		t.Fatalf("summary: %+v (last minute: %d failures, %d bans)", s.Summary, j.Failures[len(j.Failures)-1], j.Bans[len(j.Bans)-1])
	}
	var bans []web.Ban
	_, body := get("GET", "/api/bans", bearer)
	if err := json.Unmarshal([]byte(body), &bans); err != nil || len(bans) != 1 || len(bans[0].Evidence) != 3 ||
		!strings.Contains(bans[0].Evidence[0], "invalid user <script>alert(1)</script> from 203.0.113.80") {
		t.Fatalf("bans: %v %s", err, body)
	}
	var top web.Top
	_, body = get("GET", "/api/top", bearer)
	if err := json.Unmarshal([]byte(body), &top); err != nil || len(top.Addresses) != 1 || top.Addresses[0].Key != "203.0.113.80" || top.Networks[0].Key != "203.0.113.0/24" {
		t.Fatalf("top: %v %s", err, body)
	}
}

// The per-minute rings: a minute's failures land in its slot when the minute is over, minutes
// without a tick count nothing, the minute in progress is last, and a gap of more than a day
// empties the ring.
func TestActivityRings(t *testing.T) {
	u := startUnit(t, unitJail, "")
	eng := u.current()
	var a activity
	t0 := time.Unix(1_800_000_000/60*60, 0)
	a.tick(t0, eng)
	u.fail(t, "203.0.113.1", 2)
	waitFor(t, "two lines", func() bool { return u.LinesProcessed() == 2 })
	a.tick(t0.Add(30*time.Second), eng) // the same minute
	a.tick(t0.Add(61*time.Second), eng)
	u.fail(t, "203.0.113.2", 1)
	waitFor(t, "three lines", func() bool { return u.LinesProcessed() == 3 })
	a.tick(t0.Add(5*time.Minute), eng)
	a.put(readCounters(eng))
	got := a.ordered(a.failures["sshd"])
	if want := []uint64{2, 1, 0, 0, 0, 0}; !slices.Equal(got[len(got)-6:], want) || len(got) != ringMinutes {
		t.Fatalf("the last six minutes: %v, want %v", got[len(got)-6:], want)
	}
	if l := a.ordered(&a.lines); l[len(l)-6] != 2 || l[len(l)-5] != 1 {
		t.Fatalf("lines: %v", l[len(l)-6:])
	}
	a.tick(t0.Add(49*time.Hour), eng)
	if got := a.ordered(a.failures["sshd"]); slices.Max(got) != 0 {
		t.Fatalf("after two days: %v", got[len(got)-6:])
	}
}

// metrics_tls_cert and _key: the page and /metrics over TLS only.
func TestStatusPageTLS(t *testing.T) {
	pki := testpki.New(t)
	u := startUnit(t, unitJail, "metrics_tls_cert = "+pki.ServerCert+"\nmetrics_tls_key = "+pki.ServerKey+"\n")
	addr := freeAddr(t)
	u.opts.Metrics = addr
	u.restart(t)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.Client("")}}
	for _, p := range []string{"/", "/metrics", "/api/summary"} {
		resp, err := c.Get("https://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s over TLS: %d", p, resp.StatusCode)
		}
	}
	if resp, err := http.Get("http://" + addr + "/"); err == nil && resp.StatusCode == 200 {
		t.Fatal("the page answered plain HTTP")
	}
}
