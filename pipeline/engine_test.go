package pipeline

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis/portcullis/config"
)

// Sources read by a jail with multi-line state are pinned to one worker (lines in file order);
// the others are shared by every worker.
func TestStatefulSourcesAreOrdered(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "plain.conf"), []byte("[Definition]\nfailregex = ^\\s*\\S+ app: denied <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "filter.d", "conn.conf"), []byte(
		"[Definition]\nprefregex = ^\\s*\\S+ <F-MLFID>app\\[\\d+\\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$\n"+
			"failregex = ^denied <HOST>$\n            ^<F-NOFAIL>hello</F-NOFAIL> <HOST>$\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(`[plain]
enabled = true
logpath = `+filepath.Join(dir, "a.log")+`
[conn]
enabled = true
logpath = `+filepath.Join(dir, "b.log")+`
`), 0o644)
	cfg, err := config.Load(dir, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := &Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e, err := newEngine(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.m.Close()
	got := map[string]bool{}
	for _, s := range e.sources {
		got[filepath.Base(s.pattern)] = e.needsOrder(s)
	}
	if got["a.log"] || !got["b.log"] {
		t.Fatalf("ordered sources %v; want only b.log (the multi-line jail's)", got)
	}
}

// A backend = auto jail whose log file is missing reads the journal when its filter has a
// journalmatch and journalctl exists (Debian 12 without rsyslog); otherwise it waits for the file.
func TestJournalFallback(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "journalctl")
	os.WriteFile(fake, []byte("#!/bin/sh\nexec sleep 3600\n"), 0o755)
	f := &config.Filter{Name: "sshd", JournalMatch: "_COMM=sshd", FailRegex: []config.Regex{{Text: "^x <HOST>$"}}}
	missing := &config.Jail{Name: "a", Backend: "auto", Filter: f, LogPaths: []config.LogPath{{Pattern: filepath.Join(dir, "nope.log")}}}
	if !journalFallback(missing, fake) {
		t.Fatal("missing log file with a journalmatch: want the journal")
	}
	present := filepath.Join(dir, "auth.log")
	os.WriteFile(present, nil, 0o644)
	if journalFallback(&config.Jail{Name: "b", Backend: "auto", Filter: f, LogPaths: []config.LogPath{{Pattern: present}}}, fake) {
		t.Fatal("the log file exists: read it, not the journal")
	}
	if journalFallback(missing, filepath.Join(dir, "no-journalctl")) {
		t.Fatal("no journalctl: wait for the file")
	}
	if journalFallback(&config.Jail{Name: "c", Backend: "polling", Filter: f, LogPaths: missing.LogPaths}, fake) {
		t.Fatal("an explicit file backend never switches")
	}
}

// A backend = auto jail whose file is missing reads the journal instead of the file — not both,
// which would count each event twice once the file appears.
func TestJournalFallbackReplacesTheFile(t *testing.T) {
	jc := filepath.Join(t.TempDir(), "journalctl")
	os.WriteFile(jc, []byte("#!/bin/sh\nexec sleep 3600\n"), 0o755)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "filter.d", "app.conf"), []byte("[Definition]\nfailregex = ^\\s*\\S+ app: denied <HOST>$\njournalmatch = _COMM=app\n"), 0o644)
	missing := filepath.Join(dir, "missing.log")
	os.WriteFile(filepath.Join(dir, "jail.conf"), []byte("[app]\nenabled = true\nlogpath = "+missing+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "portcullis.conf"), []byte("[Definition]\njournalctl = "+jc+"\n"), 0o644)
	cfg, err := config.Load(dir, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(cfg, &Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.m.Close()
	var names []string
	for _, s := range e.sources {
		names = append(names, s.pattern)
	}
	if len(names) != 1 || names[0] != "journal:app" {
		t.Fatalf("sources %v, want the journal alone", names)
	}
}
