// Package web is the daemon's status page and its JSON API (docs/status-page.md), served on the
// metrics listener: read-only, every value attacker-written text is escaped where it is shown
// (html/template on the server, textContent in the page's script), a strict
// Content-Security-Policy, and optionally a token and TLS. It knows nothing of the daemon: Data
// is what the daemon gives it.
package web

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Data is what the page shows; the daemon implements it. Each call returns values the caller
// owns.
type Data interface {
	Summary() Summary
	Bans() []Ban
	Events(limit int) []Event
	Top() Top
}

// Summary is the page's head: jails with their per-minute activity, sources, the fleet.
type Summary struct {
	Node    string    `json:"node"`
	Now     int64     `json:"now"` // unix seconds
	Uptime  int64     `json:"uptime_seconds"`
	Jails   []Jail    `json:"jails"`
	Sources []Source  `json:"sources"`
	Fleet   *Fleet    `json:"fleet,omitempty"`
	Minutes []int64   `json:"minutes"` // the start of each ring slot, oldest first (unix seconds)
	Lines   []uint64  `json:"lines_per_minute"`
	Summary SumCounts `json:"totals"`
}

// SumCounts are totals over every jail.
type SumCounts struct {
	Lines, Failures, Bans, Banned uint64
}

// Jail is one jail's counters and its rings (one value per minute of the last day, the last one
// the minute in progress).
type Jail struct {
	Name     string   `json:"name"`
	Failures []uint64 `json:"failures_per_minute"`
	Bans     []uint64 `json:"bans_per_minute"`
	Banned   int      `json:"banned"` // in force
	Total    struct {
		Failures uint64 `json:"failures"`
		Bans     uint64 `json:"bans"`
	} `json:"total"`
}

// Source is a log source with its counters (drops included).
type Source struct {
	Name      string `json:"name"`
	Lines     uint64 `json:"lines"`
	Bytes     uint64 `json:"bytes"`
	Skipped   uint64 `json:"skipped"` // over-long, binary or malformed lines
	Dropped   uint64 `json:"dropped"` // syslog: lines lost to a full queue
	Connected int64  `json:"connections,omitempty"`
}

// Fleet is the node's fleet state, in short.
type Fleet struct {
	Connected bool   `json:"connected"`
	Server    string `json:"server"`
	Published uint64 `json:"bans_published"`
	Applied   uint64 `json:"bans_applied"`
	Decided   uint64 `json:"bans_decided"`
}

// Ban is a ban in force, with what it was for.
type Ban struct {
	Jail     string   `json:"jail"`
	Prefix   string   `json:"prefix"`
	Start    int64    `json:"start"`
	End      int64    `json:"end"` // 0: forever
	Count    uint32   `json:"count"`
	Origin   string   `json:"origin"`   // this node, or the fleet node that decided it
	Evidence []string `json:"evidence"` // the failures' log lines, as written: attacker text
}

// Event is a ban or an unban on the timeline.
type Event struct {
	Time   int64  `json:"time"`
	Op     string `json:"op"`
	Jail   string `json:"jail"`
	Prefix string `json:"prefix"`
	Reason string `json:"reason"`
}

// Top are the addresses and networks banned most over the last day.
type Top struct {
	Addresses []Count `json:"addresses"`
	Networks  []Count `json:"networks"` // /24 and /64
}

// Count is one row of Top.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

//go:embed static page.html
var assets embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"time": func(t int64) string {
		if t == 0 {
			return "forever"
		}
		return time.Unix(t, 0).UTC().Format("2006-01-02 15:04:05Z")
	},
	"spark": spark,
}).ParseFS(assets, "page.html"))

// CSP allows the page's own script, style and requests only: no inline script, no inline
// style, nothing from elsewhere, no frames, no forms.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options are the page's access rules.
type Options struct {
	// Token, when set, is required: as a bearer token (Authorization: Bearer TOKEN) or as the
	// password of basic auth (any user name).
	Token string
}

// Register adds the page (/), its assets (/static/) and the API (/api/...) to mux. Every
// handler answers GET and HEAD only.
func Register(mux *http.ServeMux, d Data, o Options) {
	static, _ := fs.Sub(assets, "static")
	files := http.FileServerFS(static)
	handle := func(path string, h http.HandlerFunc) {
		mux.Handle(path, Guard(o, h))
	}
	handle("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		view := struct {
			S    Summary
			Bans []Ban
			Ev   []Event
			Top  Top
		}{d.Summary(), d.Bans(), d.Events(50), d.Top()}
		_ = page.Execute(w, view)
	})
	handle("/static/", http.StripPrefix("/static/", files).ServeHTTP)
	api := map[string]func() any{
		"/api/summary": func() any { return d.Summary() },
		"/api/bans":    func() any { return d.Bans() },
		"/api/events":  func() any { return d.Events(500) },
		"/api/top":     func() any { return d.Top() },
	}
	for path, f := range api {
		handle(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(f())
		})
	}
}

// Guard applies the rules every response shares: read-only methods, the token, the security
// headers.
func Guard(o Options, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		if !Authorized(o.Token, r) {
			hd.Set("WWW-Authenticate", `Basic realm="portcullis"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Authorized reports whether r carries token (always, when token is empty), compared in
// constant time.
func Authorized(token string, r *http.Request) bool {
	if token == "" {
		return true
	}
	given := ""
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		given = strings.TrimPrefix(a, "Bearer ")
	} else if _, p, ok := r.BasicAuth(); ok {
		given = p
	}
	return subtle.ConstantTimeCompare([]byte(given), []byte(token)) == 1
}

// spark is a small chart of vs (the last n of them) as SVG polyline points in a 120×24 box.
func spark(vs []uint64, n int) string {
	if len(vs) > n {
		vs = vs[len(vs)-n:]
	}
	hi := slices.Max(append([]uint64{1}, vs...)) // 1 at least: no division by 0
	var b strings.Builder
	for i, v := range vs {
		x := 0.0
		if len(vs) > 1 {
			x = float64(i) * 120 / float64(len(vs)-1)
		}
		y := 24 - float64(v)*22/float64(hi) - 1
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}
