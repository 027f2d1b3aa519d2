package matcher

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis/portcullis/ingest"
)

// The compiled database is cached: a second matcher over the same filters loads it and finds the
// same failures; a damaged cache file is ignored and replaced.
func TestDBCache(t *testing.T) {
	dir := t.TempDir()
	spec := JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(t)}
	lines := []string{failLine(0), failLine(1), failLine(2), "Nov 24 10:02:00 web1 CRON[1]: nothing"}
	count := func(m *Matcher) int {
		t.Helper()
		w, err := m.NewWorker()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		evs, err := w.Match(block(ingest.NewJailSet(0), lines...), nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	m1, err := New([]JailSpec{spec}, Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "hs-*.db"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	m2, err := New([]JailSpec{spec}, Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if a, b := count(m1), count(m2); a != 3 || b != a {
		t.Fatalf("compiled: %d failures, from the cache: %d", a, b)
	}
	os.WriteFile(files[0], []byte("not a database"), 0o600)
	m3, err := New([]JailSpec{spec}, Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	if n := count(m3); n != 3 {
		t.Fatalf("after a damaged cache: %d failures", n)
	}
	if data, _ := os.ReadFile(files[0]); string(data) == "not a database" {
		t.Fatal("the damaged cache file was not replaced")
	}
}
