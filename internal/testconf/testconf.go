// Package testconf builds configuration folders for tests and benchmarks from the shipped configs/.
package testconf

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Shipped is the repository's configs/ folder, wherever the calling test runs from.
func Shipped() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "configs")
}

// Write makes dir a configuration folder: the shipped sshd and common filters in filter.d and
// jail.conf holding jailConf.
func Write(tb testing.TB, dir, jailConf string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, f := range []string{"sshd.conf", "common.conf"} {
		data, err := os.ReadFile(filepath.Join(Shipped(), "filter.d", f))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "filter.d", f), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "jail.conf"), []byte(jailConf), 0o644); err != nil {
		tb.Fatal(err)
	}
}
