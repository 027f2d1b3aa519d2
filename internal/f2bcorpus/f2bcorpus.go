// Package f2bcorpus fetches Debian's fail2ban package without installing it and unpacks it into a
// git-ignored cache folder, for the conformance test and the side-by-side benchmarks. fail2ban's
// files are read from there at test time and never committed.
package f2bcorpus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Root is where the package is unpacked: <repo>/.cache/fail2ban.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".cache", "fail2ban")
}

// FilterDir is fail2ban's filter.d inside the unpacked package.
func FilterDir() string { return filepath.Join(Root(), "etc", "fail2ban", "filter.d") }

// LogsDir is fail2ban's sample log corpus inside the unpacked package.
func LogsDir() string {
	return filepath.Join(Root(), "usr", "lib", "python3", "dist-packages", "fail2ban", "tests", "files", "logs")
}

var (
	once   sync.Once
	getErr error
)

// Ensure unpacks the package into Root unless it is there already. It runs `apt-get download
// fail2ban` (after `apt-get update` when the package lists are empty) and `dpkg -x`.
func Ensure() error {
	once.Do(func() { getErr = ensure() })
	return getErr
}

func ensure() error {
	root := Root()
	if _, err := os.Stat(LogsDir()); err == nil {
		return nil
	}
	dl := filepath.Join(root, "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return err
	}
	download := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "download", "fail2ban")
		cmd.Dir = dl
		return cmd.CombinedOutput()
	}
	out, err := download()
	if err != nil && os.Getuid() == 0 {
		if o2, e2 := exec.Command("apt-get", "update", "-qq").CombinedOutput(); e2 != nil {
			return fmt.Errorf("apt-get update: %v\n%s", e2, o2)
		}
		out, err = download()
	}
	if err != nil {
		return fmt.Errorf("apt-get download fail2ban: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "fail2ban_*.deb"))
	if len(debs) == 0 {
		return fmt.Errorf("apt-get download fail2ban left no .deb in %s", dl)
	}
	if out, err := exec.Command("dpkg", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg -x %s: %v\n%s", debs[0], err, out)
	}
	return nil
}
