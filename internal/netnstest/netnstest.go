// Package netnstest runs a test binary inside a private network namespace, so system tests can
// create nftables tables and sockets without touching the host's firewall.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

const envMark = "PORTCULLIS_TEST_NETNS"

// Main is MainWith without a cleanup.
func Main(m *testing.M) { MainWith(m, nil) }

// Outside reports whether this process is the one MainWith will re-run under `unshare -n`: the
// place for work that needs the host's network (a package download) before the tests move into a
// namespace that has only loopback.
func Outside() bool { return os.Getuid() == 0 && os.Getenv(envMark) == "" }

// MainWith is called from TestMain; cleanup (if any) runs after the tests, in the process that ran
// them. As root, outside a namespace, it re-runs the test binary under
// `unshare -n` (loopback brought up) and exits with its status; otherwise it runs the tests here.
func MainWith(m *testing.M, cleanup func()) {
	if Outside() {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "netnstest: cannot find the test binary:", err)
			os.Exit(2)
		}
		script := `if command -v ip >/dev/null; then ip link set lo up; fi; exec "$@"`
		args := append([]string{"-n", "--", "sh", "-c", script, "sh", self}, os.Args[1:]...)
		cmd := exec.Command("unshare", args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), envMark+"=1")
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			fmt.Fprintln(os.Stderr, "netnstest: cannot run unshare -n (util-linux):", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

// Require skips t when not root and fails it when root but not inside the private namespace
// (TestMain forgot to call Main): a system test must never touch the host's firewall.
func Require(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("system test: needs root to create a private network namespace (CI runs as root)")
	}
	if os.Getenv(envMark) != "1" {
		t.Fatal("system test run outside a private network namespace; call netnstest.Main from TestMain")
	}
}
