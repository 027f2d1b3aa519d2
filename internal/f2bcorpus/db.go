package f2bcorpus

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// DBBan is one ban as fail2ban's server records it: BanTime -1 is permanent.
type DBBan struct {
	Jail     string `json:"jail"`
	IP       string `json:"ip"`
	Time     int64  `json:"time"`
	BanTime  int64  `json:"bantime"`
	BanCount int    `json:"bancount"`
}

// WriteDB writes a fail2ban database at path with fail2ban's own code (its Fail2BanDb and
// BanTicket, from the unpacked package), one addBan per ban in order, as its server does.
func WriteDB(path string, bans []DBBan) error {
	if err := Ensure(); err != nil {
		return err
	}
	spec, err := json.Marshal(bans)
	if err != nil {
		return err
	}
	specPath := path + ".spec.json"
	if err := os.WriteFile(specPath, spec, 0o600); err != nil {
		return err
	}
	defer os.Remove(specPath)
	_, file, _, _ := runtime.Caller(0)
	lib := filepath.Join(Root(), "usr", "lib", "python3", "dist-packages")
	out, err := exec.Command("/usr/bin/python3", filepath.Join(filepath.Dir(file), "f2bdb.py"), lib, path, specPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fail2ban's Fail2BanDb: %v\n%s", err, out)
	}
	return nil
}

// CopyEtc copies Debian's /etc/fail2ban from the unpacked package to dst (which must not exist):
// a configuration a test may change.
func CopyEtc(dst string) error {
	if err := Ensure(); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(Root(), "etc", "fail2ban"), dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copying fail2ban's etc: %v %s", err, out)
	}
	return nil
}
