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
	"syscall"
	"time"
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

// ensure unpacks under an exclusive lock into a temporary folder that is renamed into place, so
// test binaries of several packages running at once never see a half-unpacked tree.
func ensure() error {
	root := Root()
	marker := filepath.Join(root, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(root+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("cannot lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(marker); err == nil {
		return nil // another process finished it while we waited
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	dl := filepath.Join(tmp, "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return err
	}
	download := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "download", "fail2ban")
		cmd.Dir = dl
		return cmd.CombinedOutput()
	}
	// A copy of the package kept in the user's cache from an earlier download (another clone, an
	// earlier CI step) spares the network; a fresh download is kept there too.
	kept := ""
	if d, err := os.UserCacheDir(); err == nil {
		kept = filepath.Join(d, "portcullis", "debs")
	}
	var out []byte
	if old, _ := filepath.Glob(filepath.Join(kept, "fail2ban_*.deb")); kept != "" && len(old) > 0 {
		if data, rerr := os.ReadFile(old[len(old)-1]); rerr == nil {
			err = os.WriteFile(filepath.Join(dl, filepath.Base(old[len(old)-1])), data, 0o644)
		} else {
			err = rerr
		}
	} else {
		err = fmt.Errorf("no kept copy")
	}
	// Otherwise a few attempts: a mirror or DNS hiccup (seen in CI: "Temporary failure resolving",
	// for a minute at a time) must not fail the suite. Between attempts, as root, the package lists
	// are refreshed.
	for attempt := 0; err != nil && attempt < 6; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 2 * time.Second)
			if os.Getuid() == 0 {
				if o2, e2 := exec.Command("apt-get", "update", "-qq").CombinedOutput(); e2 != nil {
					out, err = o2, fmt.Errorf("apt-get update: %w", e2)
					continue
				}
			}
		}
		if out, err = download(); err == nil && kept != "" {
			if got, _ := filepath.Glob(filepath.Join(dl, "fail2ban_*.deb")); len(got) > 0 {
				if data, rerr := os.ReadFile(got[0]); rerr == nil && os.MkdirAll(kept, 0o755) == nil {
					_ = os.WriteFile(filepath.Join(kept, filepath.Base(got[0])), data, 0o644)
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("apt-get download fail2ban: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "fail2ban_*.deb"))
	if len(debs) == 0 {
		return fmt.Errorf("apt-get download fail2ban left no .deb in %s", dl)
	}
	if out, err := exec.Command("dpkg", "-x", debs[0], tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg -x %s: %v\n%s", debs[0], err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return err
	}
	os.RemoveAll(root)
	return os.Rename(tmp, root)
}
