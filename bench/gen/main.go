// Command gen writes deterministic benchmark logs (same flags, same bytes).
//
//	go run ./bench/gen -lines 1000000 -fail 5 -o /tmp/auth.log
//	go run ./bench/gen -kind web -lines 1000000 -bad 1 -o /tmp/access.log
//	go run ./bench/gen -kind mixed -lines 1000000 -o /tmp/mixed.log
//	go run ./bench/gen -fetch-fail2ban    # unpack Debian's fail2ban package into .cache/ and print its root
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/portcullis/portcullis/bench"
	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

func main() {
	lines := flag.Int("lines", 1_000_000, "lines to write")
	fail := flag.Int("fail", 5, "percent of lines that are authentication failures")
	attackers := flag.Int("attackers", 20000, "distinct attacking addresses")
	seed := flag.Uint64("seed", 1, "random seed")
	start := flag.String("start", "2026-03-01T00:00:00Z", "time of the first line (RFC 3339)")
	out := flag.String("o", "-", "output file, - for standard output")
	fetch := flag.Bool("fetch-fail2ban", false, "unpack Debian's fail2ban package into .cache/fail2ban and print its root")
	kind := flag.String("kind", "sshd", "sshd (auth.log), web (nginx access log, -bad percent from scanners), mixed (web with 10% auth and mail lines), nginx-error (-fail percent auth failures and limit_req) or syslog5424 (an RFC 5424 stream from many hosts, -fail percent sshd failures)")
	bad := flag.Float64("bad", 1, "web, mixed: percent of web lines from scanners")
	flag.Parse()
	if *fetch {
		if err := f2bcorpus.Ensure(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(f2bcorpus.Root())
		return
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "-start:", err)
		os.Exit(2)
	}
	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	switch *kind {
	case "sshd":
		err = bench.WriteSSHD(w, bench.SSHDOptions{Lines: *lines, FailPct: *fail, Attackers: *attackers, Start: t0, Seed: *seed})
	case "web", "mixed":
		auth := 0
		if *kind == "mixed" {
			auth = 10
		}
		err = bench.WriteWeb(w, bench.WebOptions{Lines: *lines, BadPct: *bad, AuthPct: auth, Attackers: *attackers, Start: t0, Seed: *seed})
	case "nginx-error":
		err = bench.WriteNginxError(w, *lines, *fail, *attackers, t0, *seed)
	case "syslog5424":
		err = bench.WriteSyslog5424(w, *lines, *fail, 100, t0, *seed)
	default:
		fmt.Fprintln(os.Stderr, "-kind: sshd, web, mixed, nginx-error or syslog5424")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
