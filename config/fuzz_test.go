package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: any jail.conf either loads or returns config.Errors; it never panics or hangs.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/jail.conf")
	seeds = append(seeds, "testdata/layered/jail.conf", "../configs/jail.conf")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[a]\nenabled=true\nx=%(x)s\nlogpath=%(x)s\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
		os.WriteFile(filepath.Join(dir, "filter.d", "a.conf"), []byte("[Definition]\nfailregex = ^x <HOST>$\n"), 0o644)
		if err := os.WriteFile(filepath.Join(dir, "jail.conf"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(dir, Options{Resolve: noDNS})
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T", err)
			}
		}
	})
}
