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
	t := o.Start
	attacker := func() string {
		i := r.IntN(o.Attackers)
		if i%4 == 3 {
			return fmt.Sprintf("2001:db8:%x:%x::%x", i>>16, i&0xffff, r.IntN(3)+1)
		}
		return fmt.Sprintf("%d.%d.%d.%d", 11+i>>16%200, i>>8&0xff, i&0xff, 1+i%250)
	}
	users := []string{"root", "admin", "test", "oracle", "ubuntu", "git", "postgres", "user1", "support"}
	return writeLines(w, o.Lines, func(bw *bufio.Writer, n int) error {
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
		return err
	})
}

// WebOptions describe a generated web access log (nginx/Apache combined format).
type WebOptions struct {
	Lines  int
	BadPct float64 // percent of lines from scanners: probes for admin panels (404), junk (400), attack tools' user agents
	// AuthPct is the percent of lines, among the rest, that are auth.log and mail.log lines
	// (sshd, postfix, dovecot) instead of web requests: a mixed collector stream (0: web only).
	AuthPct   int
	Attackers int
	Start     time.Time
	Seed      uint64
}

// WriteWeb writes a web access log, optionally mixed with auth and mail lines: the same options
// give the same bytes.
func WriteWeb(w io.Writer, o WebOptions) error {
	if o.Attackers <= 0 {
		o.Attackers = 1000
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5851f42d4c957f2d))
	t := o.Start
	client := func() string {
		i := r.IntN(50000)
		if i%5 == 4 {
			return fmt.Sprintf("2001:db8:%x::%x", i>>8, i&0xff+1)
		}
		return fmt.Sprintf("%d.%d.%d.%d", 23+i>>16%150, i>>8&0xff, i&0xff, 1+i%250)
	}
	attacker := func() string {
		i := r.IntN(o.Attackers)
		return fmt.Sprintf("%d.%d.%d.%d", 45+i>>16%100, i>>8&0xff, i&0xff, 1+i%250)
	}
	pages := []string{"/", "/index.html", "/blog/2024/05/hello-world/", "/static/css/site.css", "/static/js/app.js",
		"/images/logo.png", "/api/v1/items?page=2", "/about", "/contact", "/feed.xml", "/favicon.ico", "/search?q=nginx+tuning"}
	uas := []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.5.0"}
	probes := []string{"/wp-login.php", "/phpmyadmin/index.php", "/.env", "/.git/config", "/xmlrpc.php", "/cgi-bin/luci", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php"}
	users := []string{"root", "admin", "test", "info", "support"}
	return writeLines(w, o.Lines, func(bw *bufio.Writer, n int) error {
		t = t.Add(time.Duration(r.IntN(3)) * time.Millisecond)
		var err error
		if o.AuthPct > 0 && r.IntN(100) < o.AuthPct {
			stamp, pid := t.Format(time.Stamp), 1000+n%4_000_000
			switch r.IntN(6) {
			case 0:
				_, err = fmt.Fprintf(bw, "%s mx1 sshd[%d]: Failed password for invalid user %s from %s port %d ssh2\n", stamp, pid, users[r.IntN(len(users))], attacker(), 1024+r.IntN(60000))
			case 1:
				_, err = fmt.Fprintf(bw, "%s mx1 sshd[%d]: Accepted publickey for deploy from 198.51.100.%d port %d ssh2: ED25519 SHA256:kq3Yp0r8m9Vb\n", stamp, pid, r.IntN(250), 1024+r.IntN(60000))
			case 2:
				_, err = fmt.Fprintf(bw, "%s mx1 postfix/smtpd[%d]: NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 <user@example.org>: Relay access denied; from=<spam@example.net> to=<user@example.org> proto=ESMTP helo=<x>\n", stamp, pid, attacker())
			case 3:
				_, err = fmt.Fprintf(bw, "%s mx1 postfix/smtpd[%d]: connect from mail.example.net[198.51.100.%d]\n", stamp, pid, r.IntN(250))
			case 4:
				_, err = fmt.Fprintf(bw, "%s mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<%s>, method=PLAIN, rip=%s, lip=192.0.2.1, TLS, session=<Ab%06d>\n", stamp, users[r.IntN(len(users))], attacker(), n%1000000)
			default:
				_, err = fmt.Fprintf(bw, "%s mx1 dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip=198.51.100.%d, lip=192.0.2.1, mpid=%d, TLS, session=<Q%06d>\n", stamp, r.IntN(250), pid, n%1000000)
			}
		} else {
			stamp := t.Format("02/Jan/2006:15:04:05 -0700")
			if r.Float64()*100 < o.BadPct {
				switch r.IntN(3) {
				case 0:
					_, err = fmt.Fprintf(bw, "%s - - [%s] \"GET %s HTTP/1.1\" 404 162 \"-\" \"%s\"\n", attacker(), stamp, probes[r.IntN(len(probes))], uas[3])
				case 1:
					_, err = fmt.Fprintf(bw, "%s - - [%s] \"\\x16\\x03\\x01\\x00\\xF7\\x01\" 400 157 \"-\" \"-\"\n", attacker(), stamp)
				default:
					_, err = fmt.Fprintf(bw, "%s - - [%s] \"GET / HTTP/1.1\" 200 612 \"-\" \"sqlmap/1.7.2#stable (https://sqlmap.org)\"\n", attacker(), stamp)
				}
			} else {
				_, err = fmt.Fprintf(bw, "%s - - [%s] \"GET %s HTTP/1.1\" 200 %d \"https://example.org/\" \"%s\"\n", client(), stamp, pages[r.IntN(len(pages))], 200+r.IntN(50000), uas[r.IntN(len(uas))])
			}
		}
		return err
	})
}

// WriteNginxError writes an nginx error log: basic-auth failures (wrong password, unknown user)
// and limit_req rejections from attackers among ordinary errors (missing files, upstream
// timeouts). failPct percent of the lines are failures. The same arguments give the same bytes.
func WriteNginxError(w io.Writer, lines, failPct, attackers int, start time.Time, seed uint64) error {
	if attackers <= 0 {
		attackers = 1000
	}
	r := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	t := start
	return writeLines(w, lines, func(bw *bufio.Writer, n int) error {
		t = t.Add(time.Duration(r.IntN(5)) * time.Millisecond)
		stamp := t.Format("2006/01/02 15:04:05")
		i := r.IntN(attackers)
		addr := fmt.Sprintf("%d.%d.%d.%d", 60+i>>16%100, i>>8&0xff, i&0xff, 1+i%250)
		var err error
		if r.IntN(100) < failPct {
			switch r.IntN(3) {
			case 0:
				_, err = fmt.Fprintf(bw, "%s [error] 1234#1234: *%d user \"admin\": password mismatch, client: %s, server: example.org, request: \"GET /admin/ HTTP/1.1\", host: \"example.org\"\n", stamp, n, addr)
			case 1:
				_, err = fmt.Fprintf(bw, "%s [error] 1234#1234: *%d user \"test%d\" was not found in \"/etc/nginx/.htpasswd\", client: %s, server: example.org, request: \"GET /private/ HTTP/1.1\", host: \"example.org\"\n", stamp, n, i%50, addr)
			default:
				_, err = fmt.Fprintf(bw, "%s [error] 1234#1234: *%d limiting requests, excess: 5.%03d by zone \"login\", client: %s, server: example.org, request: \"POST /login HTTP/1.1\", host: \"example.org\"\n", stamp, n, r.IntN(1000), addr)
			}
		} else if r.IntN(2) == 0 {
			_, err = fmt.Fprintf(bw, "%s [error] 1234#1234: *%d open() \"/srv/www/favicon.ico\" failed (2: No such file or directory), client: 198.51.100.%d, server: example.org, request: \"GET /favicon.ico HTTP/1.1\", host: \"example.org\"\n", stamp, n, r.IntN(250))
		} else {
			_, err = fmt.Fprintf(bw, "%s [error] 1234#1234: *%d upstream timed out (110: Connection timed out) while reading response header from upstream, client: 198.51.100.%d, server: example.org, request: \"GET /api HTTP/1.1\", upstream: \"http://127.0.0.1:8080/api\", host: \"example.org\"\n", stamp, n, r.IntN(250))
		}
		return err
	})
}

// WriteSyslog5424 writes an RFC 5424 syslog stream, one message per line as a collector receives
// it over TCP with newline framing, from hosts web1…webN: sshd failures (failPct percent) among
// cron, sudo and accepted logins.
func WriteSyslog5424(w io.Writer, lines, failPct, hosts int, start time.Time, seed uint64) error {
	if hosts <= 0 {
		hosts = 100
	}
	r := rand.New(rand.NewPCG(seed, seed^0x94d049bb133111eb))
	t := start
	return writeLines(w, lines, func(bw *bufio.Writer, n int) error {
		t = t.Add(time.Duration(r.IntN(3)) * time.Millisecond)
		host := fmt.Sprintf("web%d", 1+r.IntN(hosts))
		stamp := t.UTC().Format("2006-01-02T15:04:05.000000Z")
		var err error
		if r.IntN(100) < failPct {
			i := r.IntN(20000)
			_, err = fmt.Fprintf(bw, "<38>1 %s %s sshd %d - - Failed password for invalid user admin from %d.%d.%d.%d port %d ssh2\n",
				stamp, host, 1000+n%30000, 70+i>>16%100, i>>8&0xff, i&0xff, 1+i%250, 1024+r.IntN(60000))
		} else {
			switch r.IntN(3) {
			case 0:
				_, err = fmt.Fprintf(bw, "<86>1 %s %s CRON %d - - pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n", stamp, host, 1000+n%30000)
			case 1:
				_, err = fmt.Fprintf(bw, "<85>1 %s %s sudo %d - [origin software=\"sudo\"] deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/true\n", stamp, host, 1000+n%30000)
			default:
				_, err = fmt.Fprintf(bw, "<38>1 %s %s sshd %d - - Accepted publickey for deploy from 198.51.100.%d port %d ssh2\n", stamp, host, 1000+n%30000, r.IntN(250), 1024+r.IntN(60000))
			}
		}
		return err
	})
}

// writeLines is the generators' frame: one buffered writer, line called for n = 0…lines-1, the
// first error returned.
func writeLines(w io.Writer, lines int, line func(bw *bufio.Writer, n int) error) error {
	bw := bufio.NewWriterSize(w, 256*1024)
	for n := range lines {
		if err := line(bw, n); err != nil {
			return err
		}
	}
	return bw.Flush()
}
