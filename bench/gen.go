// Package bench holds whole-system workloads: a deterministic log generator and end-to-end
// benchmarks of the daemon. Micro benchmarks live beside the code they measure.
package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// SSHDOptions describe a generated sshd auth log.
type SSHDOptions struct {
	Lines     int
	FailPct   int       // percent of lines that are authentication failures
	Attackers int       // distinct attacking addresses (a quarter of them IPv6)
	Start     time.Time // stamp of the first line; lines advance by a few ms each
	Seed      uint64
}

// WriteSSHD writes a realistic auth log: failures of several kinds from a pool of attackers, among
// cron, logind, sudo, accepted logins and preauth disconnects. The same options give the same bytes.
func WriteSSHD(w io.Writer, o SSHDOptions) error {
	if o.Attackers <= 0 {
		o.Attackers = 1000
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	bw := bufio.NewWriterSize(w, 256*1024)
	t := o.Start
	attacker := func() string {
		i := r.IntN(o.Attackers)
		if i%4 == 3 {
			return fmt.Sprintf("2001:db8:%x:%x::%x", i>>16, i&0xffff, r.IntN(3)+1)
		}
		return fmt.Sprintf("%d.%d.%d.%d", 11+i>>16%200, i>>8&0xff, i&0xff, 1+i%250)
	}
	users := []string{"root", "admin", "test", "oracle", "ubuntu", "git", "postgres", "user1", "support"}
	for n := 0; n < o.Lines; n++ {
		t = t.Add(time.Duration(r.IntN(5)) * time.Millisecond)
		stamp := t.Format(time.Stamp)
		// Every line is its own connection (pids are never reused within a run, as on a real
		// host within fail2ban's 5-minute multi-line window).
		pid := 1000 + n%4_000_000
		port := 1024 + r.IntN(64000)
		var err error
		if r.IntN(100) < o.FailPct {
			a, u := attacker(), users[r.IntN(len(users))]
			switch r.IntN(5) {
			case 0, 1:
				_, err = fmt.Fprintf(bw, "%s host1 sshd[%d]: Failed password for invalid user %s from %s port %d ssh2\n", stamp, pid, u, a, port)
			case 2:
				_, err = fmt.Fprintf(bw, "%s host1 sshd[%d]: Invalid user %s from %s port %d\n", stamp, pid, u, a, port)
			case 3:
				_, err = fmt.Fprintf(bw, "%s host1 sshd[%d]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=%s\n", stamp, pid, a, u)
			default:
				_, err = fmt.Fprintf(bw, "%s host1 sshd[%d]: Connection closed by authenticating user %s %s port %d [preauth]\n", stamp, pid, u, a, port)
			}
		} else {
			switch r.IntN(6) {
			case 0:
				_, err = fmt.Fprintf(bw, "%s host1 CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n", stamp, pid)
			case 1:
				_, err = fmt.Fprintf(bw, "%s host1 sshd[%d]: Accepted publickey for deploy from 198.51.100.%d port %d ssh2: ED25519 SHA256:kq3Yp0r8m9Vb\n", stamp, pid, r.IntN(250), port)
			case 2:
				_, err = fmt.Fprintf(bw, "%s host1 systemd-logind[412]: New session %d of user deploy.\n", stamp, r.IntN(100000))
			case 3:
				_, err = fmt.Fprintf(bw, "%s host1 sudo[%d]:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart app\n", stamp, pid)
			case 4:
				_, err = fmt.Fprintf(bw, "%s host1 sshd[%d]: Connection closed by 198.51.100.%d port %d [preauth]\n", stamp, pid, r.IntN(250), port)
			default:
				_, err = fmt.Fprintf(bw, "%s host1 sshd[%d]: Received disconnect from 198.51.100.%d port %d:11: disconnected by user\n", stamp, pid, r.IntN(250), port)
			}
		}
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}
