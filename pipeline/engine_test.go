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
