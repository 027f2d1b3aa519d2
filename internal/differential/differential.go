// Package differential compares portcullis with fail2ban's own engine on generated logs: seeded
// generators write what fail2ban's short sample corpus lacks (reused connection ids, IPv6 forms,
// interleaved connections), and Fail2ban runs fail2ban's Filter on them (f2bfailures.py) so a
// test can hold every failure portcullis reports against the one fail2ban reports.
package differential

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// Failure is one failure an engine reported: the 1-based line that completed it, the address
// (or other id) and the event time.
type Failure struct {
	Line int    `json:"line"`
	ID   string `json:"id"`
	Time int64  `json:"time"`
}

// Fail2ban runs fail2ban's Filter (the package unpacked under root, Debian's layout) with filter
// spec (sshd, sshd[mode=aggressive]) from its etc/fail2ban over log, stamps without a zone read
// as UTC, year-less ones against the wall clock.
func Fail2ban(root, spec, log string) ([]Failure, error) {
	fs, err := Fail2banBatch(root, []Job{{Spec: spec, Log: log, TZ: "UTC"}})
	if err != nil {
		return nil, err
	}
	return fs[0], nil
}

// Decision is one ban, prolong or unban an engine decided: a ban's start and duration (-1:
// forever), its end (-1: never; an unban's: when the ban ended) and its ban count in the jail.
type Decision struct {
	Op       string `json:"op"`
	Jail     string `json:"jail"`
	Address  string `json:"address"`
	Start    int64  `json:"start"`
	Duration int64  `json:"duration"`
	End      int64  `json:"end"`
	Count    int    `json:"bancount"`
}

func (d Decision) String() string {
	switch d.Op {
	case "ban":
		return fmt.Sprintf("ban %s %s at %d for %d until %d, ban %d", d.Jail, d.Address, d.Start, d.Duration, d.End, d.Count)
	default:
		return fmt.Sprintf("%s %s %s until %d", d.Op, d.Jail, d.Address, d.End)
	}
}

// Fail2banBans runs fail2ban's server code (f2bbans.py) with the configuration in confdir over
// log, year-less stamps read as of now, and returns its decisions and the time of the last line
// that held a failure. exact holds portcullis's deliberate differences at the ban level (see
// f2bbans.py): failures counted exactly within findtime, and a ban over at its end time.
func Fail2banBans(root, confdir string, now time.Time, log string, exact bool) ([]Decision, int64, error) {
	_, self, _, _ := runtime.Caller(0)
	args := []string{filepath.Join(filepath.Dir(self), "f2bbans.py"), filepath.Join(root, "usr", "lib", "python3", "dist-packages"),
		confdir, fmt.Sprint(now.Unix()), log}
	if exact {
		args = append(args, "exact")
	}
	cmd := exec.Command("python3", args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("fail2ban's engine: %v: %s", err, stderr.String())
	}
	var ds []Decision
	last := int64(-1)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var d Decision
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, 0, fmt.Errorf("fail2ban's engine printed %q: %w", sc.Text(), err)
		}
		if d.Op == "last" {
			last = d.End
			continue
		}
		ds = append(ds, d)
	}
	return ds, last, nil
}

// Offenders writes an sshd auth log of n lines from seed for the ban level: a few attackers (IPv4
// and IPv6) come back in bursts whose gaps sit at the edges that matter -- findtime and bantime
// one second short, exact, one second over, and twice over -- beside a crowd of single failures
// and the successful logins around them. Each connection has its own PID. With shuffle, a line's
// stamp may be up to 3 seconds older than the one before (two writers to one log).
func Offenders(seed uint64, n int, start time.Time, findtime, bantime int, shuffle bool) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x0ffe))
	attackers := make([]string, 6)
	for i := range attackers {
		if i%3 == 2 {
			attackers[i] = fmt.Sprintf("2001:db8:%x::%x", seed%16, i+1)
		} else {
			attackers[i] = fmt.Sprintf("203.0.113.%d", 10*i+int(seed%10)+1)
		}
	}
	next := make([]time.Time, len(attackers)) // when each attacker writes its next failure
	for i := range next {
		next[i] = start.Add(time.Duration(rng.IntN(20)) * time.Second)
	}
	edges := []int{findtime - 1, findtime, findtime + 1, bantime - 1, bantime, bantime + 1, 2 * findtime, 2 * bantime, 1, 0}
	var b bytes.Buffer
	pid := 10000
	t := start
	for range n {
		i := 0
		for j := range next {
			if next[j].Before(next[i]) {
				i = j
			}
		}
		stamp := t
		if next[i].After(t) && rng.IntN(3) == 0 {
			// Noise while everyone waits: a login, or a single failure from a passer-by.
			t = t.Add(time.Duration(rng.IntN(3)) * time.Second)
			stamp = t
			pid++
			if rng.IntN(2) == 0 {
				fmt.Fprintf(&b, "%s srv sshd[%d]: Accepted publickey for deploy from 198.51.100.%d port %d ssh2\n", stamp.Format(time.Stamp), pid, 1+rng.IntN(250), 1024+rng.IntN(60000))
			} else {
				fmt.Fprintf(&b, "%s srv sshd[%d]: Failed password for root from 198.51.100.%d port %d ssh2\n", stamp.Format(time.Stamp), pid, 1+rng.IntN(250), 1024+rng.IntN(60000))
			}
			continue
		}
		if next[i].After(t) {
			t = next[i]
		}
		stamp = t
		if shuffle && rng.IntN(4) == 0 {
			stamp = t.Add(-time.Duration(1+rng.IntN(3)) * time.Second)
		}
		pid++
		fmt.Fprintf(&b, "%s srv sshd[%d]: Failed password for invalid user admin from %s port %d ssh2\n", stamp.Format(time.Stamp), pid, attackers[i], 1024+rng.IntN(60000))
		// The next failure: soon within a burst, or after an edge gap.
		gap := rng.IntN(3)
		if rng.IntN(3) == 0 {
			gap = max(0, edges[rng.IntN(len(edges))])
		}
		next[i] = t.Add(time.Duration(gap) * time.Second)
	}
	return b.Bytes()
}

// Job is one log for Fail2banBatch: fail2ban's filter spec over Log, its clock at Now (the wall
// clock when zero) and stamps without a zone read in time zone TZ.
type Job struct {
	Spec, Log string
	Now       time.Time
	TZ        string
}

// Fail2banBatch runs the jobs in one Python interpreter (f2bfailures.py --batch) and returns each
// job's failures: importing fail2ban costs more than reading a short log.
func Fail2banBatch(root string, jobs []Job) ([][]Failure, error) {
	_, self, _, _ := runtime.Caller(0)
	dir, err := os.MkdirTemp("", "f2bbatch")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var list bytes.Buffer
	for i, j := range jobs {
		var now int64
		if !j.Now.IsZero() {
			now = j.Now.Unix()
		}
		line, _ := json.Marshal(map[string]any{"spec": j.Spec, "log": j.Log, "now": now, "tz": j.TZ,
			"out": filepath.Join(dir, fmt.Sprint(i))})
		list.Write(append(line, '\n'))
	}
	jobsFile := filepath.Join(dir, "jobs")
	if err := os.WriteFile(jobsFile, list.Bytes(), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("python3", filepath.Join(filepath.Dir(self), "f2bfailures.py"),
		filepath.Join(root, "usr", "lib", "python3", "dist-packages"), filepath.Join(root, "etc", "fail2ban"), "--batch", jobsFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fail2ban's engine: %v: %s", err, stderr.String())
	}
	out := make([][]Failure, len(jobs))
	for i := range jobs {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			return nil, err
		}
		if out[i], err = parseFailures(data); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseFailures(data []byte) ([]Failure, error) {
	var fs []Failure
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var f Failure
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return nil, fmt.Errorf("fail2ban's engine printed %q: %w", sc.Text(), err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// SSHD writes an auth log of n lines from seed: up to 20 connections at a time, interleaved,
// from IPv4 and IPv6 clients (compressed and IPv4-mapped forms), under PIDs from a small pool
// that a new connection reuses once the old one is over — also when the old one ended without a
// closing line (a timeout), which is what makes a reused id dangerous. Stamps are year-less and
// one or two seconds apart, starting at start.
func SSHD(seed uint64, n int, start time.Time) []byte { return SSHDConns(seed, n, start, 20) }

// SSHDConns is SSHD with up to conns connections at a time, under PIDs from a pool twice that
// size: above 100 (a busy host), more than fail2ban's multi-line cache holds.
func SSHDConns(seed uint64, n int, start time.Time, conns int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	type conn struct {
		pid, port  int
		addr, user string
		invalid    bool
		steps      int // failures still to write
	}
	var b bytes.Buffer
	var active []*conn
	free := make([]int, 0, 2*conns)
	for pid := 4000; pid < 4000+2*conns; pid++ {
		free = append(free, pid)
	}
	users := []string{"root", "admin", "ubuntu", "git", "oracle", "test"}
	addr := func() string {
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprintf("2001:db8:%x::%x", rng.IntN(4), 1+rng.IntN(200))
		case 1:
			return fmt.Sprintf("::ffff:198.51.100.%d", 1+rng.IntN(250))
		default:
			return fmt.Sprintf("203.0.113.%d", 1+rng.IntN(250))
		}
	}
	t := start
	line := func(c *conn, format string, args ...any) {
		t = t.Add(time.Duration(rng.IntN(2)) * time.Second)
		fmt.Fprintf(&b, "%s srv sshd[%d]: %s\n", t.Format(time.Stamp), c.pid, fmt.Sprintf(format, args...))
	}
	for written := 0; written < n; written = strings.Count(b.String(), "\n") {
		if len(active) < conns && len(free) > 0 && (len(active) == 0 || rng.IntN(3) == 0) {
			i := rng.IntN(len(free))
			c := &conn{pid: free[i], port: 1024 + rng.IntN(60000), addr: addr(), user: users[rng.IntN(len(users))],
				invalid: rng.IntN(2) == 0, steps: rng.IntN(5)}
			free = append(free[:i], free[i+1:]...)
			active = append(active, c)
			line(c, "Connection from %s port %d on 10.0.0.1 port 22 rdomain \"\"", c.addr, c.port)
			if c.invalid && rng.IntN(2) == 0 {
				line(c, "Invalid user %s from %s port %d", c.user, c.addr, c.port)
			}
			continue
		}
		i := rng.IntN(len(active))
		c := active[i]
		inv := ""
		if c.invalid {
			inv = "invalid user "
		}
		if c.steps > 0 {
			c.steps--
			line(c, "Failed password for %s%s from %s port %d ssh2", inv, c.user, c.addr, c.port)
			continue
		}
		kind := "authenticating"
		if c.invalid {
			kind = "invalid"
		}
		switch rng.IntN(5) {
		case 0:
			line(c, "Connection closed by %s user %s %s port %d [preauth]", kind, c.user, c.addr, c.port)
		case 1:
			line(c, "Disconnected from %s user %s %s port %d [preauth]", kind, c.user, c.addr, c.port)
		case 2:
			line(c, "Received disconnect from %s port %d:11: Bye Bye [preauth]", c.addr, c.port)
		case 3:
			if !c.invalid {
				line(c, "Accepted password for %s from %s port %d ssh2", c.user, c.addr, c.port)
			}
		default: // a timeout: nothing closes the connection in the log
		}
		active = append(active[:i], active[i+1:]...)
		free = append(free, c.pid)
	}
	return b.Bytes()
}

var (
	sshdPID = regexp.MustCompile(`[A-Za-z][\w.-]*\[(\d+)\]: `) // a program's process id
	anyAddr = regexp.MustCompile(`[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]+`)
)

// FreshIDs rewrites a log so that no connection id (a program's PID: sshd's, sendmail's) serves
// two clients: a line whose id last served another address gets a new id from then on. It
// returns the lines rewritten.
//
// This is the one deliberate difference at the failure level, held here as a transformation:
// portcullis takes a line naming an address other than its connection's as a new connection (an
// sshd PID is reused on a busy host), and never reports an address the line does not name;
// fail2ban merges such a line into the earlier client's connection (unless its 100-entry cache
// has dropped it). fail2ban over the rewritten log is what portcullis must match exactly.
func FreshIDs(log []byte) ([]byte, int) {
	type session struct {
		addr  netip.Addr
		alias int
	}
	sessions := map[string]*session{}
	next, rewritten := 900000, 0
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(log, []byte("\n")) {
		m := sshdPID.FindSubmatchIndex(line)
		if m == nil {
			out.Write(line)
			continue
		}
		pid := string(line[m[2]:m[3]])
		var addr netip.Addr
		for _, cand := range anyAddr.FindAll(line[m[1]:], -1) {
			if a, err := netip.ParseAddr(string(cand)); err == nil {
				addr = a.Unmap()
				break
			}
		}
		s := sessions[pid]
		switch {
		case s == nil:
			s = &session{addr: addr}
			sessions[pid] = s
		case addr.IsValid() && s.addr.IsValid() && addr != s.addr:
			next++
			s.addr, s.alias = addr, next
		case addr.IsValid() && !s.addr.IsValid():
			s.addr = addr
		}
		if s.alias == 0 {
			out.Write(line)
			continue
		}
		rewritten++
		out.Write(line[:m[2]])
		fmt.Fprint(&out, s.alias)
		out.Write(line[m[3]:])
	}
	return out.Bytes(), rewritten
}

// NginxHTTPAuth writes an nginx error log of n lines from seed: basic-auth failures (unknown
// users, password mismatches) from IPv4 and IPv6 clients with hostile user names and requests
// (quotes, blanks, "client: ADDR" written into them), TLS handshake failures, and the noise
// around them (missing files, rate limiting). Stamps are nginx's, one or two seconds apart.
func NginxHTTPAuth(seed uint64, n int, start time.Time) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x9e11))
	users := []string{"admin", "xyz", "scriben dio", `a"b`, "x\", client: 203.0.113.77, server: y", "root: password mismatch"}
	paths := []string{"/", "/admin", "/wp-login.php", "/a?b=client:%20203.0.113.77", "/%22quoted%22"}
	addr := func() string {
		if rng.IntN(3) == 0 {
			return fmt.Sprintf("2001:db8:%x::%x", rng.IntN(4), 1+rng.IntN(200))
		}
		return fmt.Sprintf("198.51.100.%d", 1+rng.IntN(250))
	}
	var b bytes.Buffer
	t := start
	for i := range n {
		t = t.Add(time.Duration(rng.IntN(2)) * time.Second)
		stamp := t.Format("2006/01/02 15:04:05")
		pid, conn, a := 2000+rng.IntN(4), 1+rng.IntN(100000), addr()
		req := fmt.Sprintf(`"GET %s HTTP/1.1"`, paths[rng.IntN(len(paths))])
		switch rng.IntN(6) {
		case 0:
			fmt.Fprintf(&b, "%s [error] %d#0: *%d user \"%s\" was not found in \"/etc/nginx/.htpasswd\", client: %s, server: www.example.org, request: %s, host: \"www.example.org\"\n",
				stamp, pid, conn, users[rng.IntN(len(users))], a, req)
		case 1:
			fmt.Fprintf(&b, "%s [error] %d#0: *%d user \"%s\": password mismatch, client: %s, server: , request: %s, host: \"localhost:8443\", referrer: \"https://example.org/admin\"\n",
				stamp, pid, conn, users[rng.IntN(len(users))], a, req)
		case 2:
			fmt.Fprintf(&b, "%s [crit] %d#0: *%d SSL_do_handshake() failed (SSL: error:141CF06C:SSL routines:tls_parse_ctos_key_share:bad key share) while SSL handshaking, client: %s, server: 0.0.0.0:443\n",
				stamp, pid, conn, a)
		case 3:
			fmt.Fprintf(&b, "%s [crit] %d#0: *%d SSL_do_handshake() failed (SSL: error:1408F10B:SSL routines:ssl3_get_record:packet length too long) while SSL handshaking, client: %s, server: 0.0.0.0:443\n",
				stamp, pid, conn, a)
		case 4:
			fmt.Fprintf(&b, "%s [error] %d#0: *%d open() \"/var/www/html/favicon.ico\" failed (2: No such file or directory), client: %s, server: www.example.org, request: %s, host: \"www.example.org\"\n",
				stamp, pid, conn, a, req)
		default:
			fmt.Fprintf(&b, "%s [error] %d#0: *%d limiting requests, excess: 10.%03d by zone \"one\", client: %s, server: www.example.org, request: %s, host: \"www.example.org\"\n",
				stamp, pid, conn, i%1000, a, req)
		}
	}
	return b.Bytes()
}

// Shrink returns a short part of lines for which differs still holds: it removes chunks of half,
// a quarter, … down to single lines, keeping each removal after which the difference stays
// (a simplified delta debugging). differs must hold for lines themselves; the order of the lines
// kept is theirs.
func Shrink(lines []string, differs func([]string) bool) []string {
	for chunk := len(lines) / 2; chunk >= 1; chunk /= 2 {
		for at := 0; at < len(lines); {
			end := min(at+chunk, len(lines))
			try := append(append([]string(nil), lines[:at]...), lines[end:]...)
			if len(try) > 0 && differs(try) {
				lines = try
				continue // the same position now holds the next chunk
			}
			at = end
		}
	}
	return lines
}

// MutateOptions shape a log Mutate writes.
type MutateOptions struct {
	// Start, when set, re-stamps every line that starts with a syslog stamp ("Mar  1 00:00:00"),
	// from Start on, a second or two apart: a New Year's Eve or a DST change in Location.
	Start    time.Time
	Location *time.Location
	// Journal writes the stamps as the daemon's journal source renders an entry's time (ISO
	// 8601 with microseconds and the zone), for a filter read with logtype = journal.
	Journal bool
}

var bracketPID = regexp.MustCompile(`\[[0-9]+\]`)

var syslogStamp = regexp.MustCompile(`^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}`)

// Mutate writes a log of about n lines from a filter's own sample lines (fail2ban's corpus):
// runs of up to eight consecutive samples, so a multi-line filter sees its connections whole,
// interleaved in random order, process ids ("[1234]") fresh for each run, every address in a
// run replaced by a generated one (the same
// one throughout the run: IPv4 and IPv6, IPv4-mapped, and an IPv4 sample given an IPv6 address
// now and then). With opts.Start, syslog stamps are rewritten to run across it.
func Mutate(samples []string, seed uint64, n int, opts MutateOptions) []byte {
	log, _ := MutateOrigins(samples, seed, n, opts)
	return log
}

// MutateOrigins is Mutate, also returning the index of the sample each line was made from.
func MutateOrigins(samples []string, seed uint64, n int, opts MutateOptions) ([]byte, []int) {
	rng := rand.New(rand.NewPCG(seed, 0x3a7e))
	var b bytes.Buffer
	var origins []int
	if len(samples) == 0 {
		return nil, nil
	}
	t := opts.Start
	if opts.Location != nil && !t.IsZero() {
		t = t.In(opts.Location)
	}
	genAddr := func(orig netip.Addr) string {
		switch r := rng.IntN(10); {
		case orig.Is4() && r == 0:
			return fmt.Sprintf("::ffff:198.51.100.%d", 1+rng.IntN(250))
		case orig.Is4() && r == 1, orig.Is6() && r < 8:
			return fmt.Sprintf("2001:db8:%x::%x", rng.IntN(16), 1+rng.IntN(500))
		default:
			return fmt.Sprintf("203.0.113.%d", 1+rng.IntN(250))
		}
	}
	pid := 20000
	for lines := 0; lines < n; {
		at := rng.IntN(len(samples))
		run := samples[at:min(at+1+rng.IntN(8), len(samples))]
		mapped := map[string]string{}
		pids := map[string]string{}
		for k, line := range run {
			origins = append(origins, at+k)
			// Process ids are the connection ids of multi-line filters: each run has its own, so
			// runs from different places never share one (a reused id: see FreshIDs).
			line = bracketPID.ReplaceAllStringFunc(line, func(s string) string {
				if _, ok := pids[s]; !ok {
					pid++
					pids[s] = fmt.Sprintf("[%d]", pid)
				}
				return pids[s]
			})
			line = anyAddr.ReplaceAllStringFunc(line, func(s string) string {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return s
				}
				if m, ok := mapped[s]; ok {
					return m
				}
				mapped[s] = genAddr(a)
				return mapped[s]
			})
			if !opts.Start.IsZero() && syslogStamp.MatchString(line) {
				t = t.Add(time.Duration(rng.IntN(3)) * time.Second)
				layout := time.Stamp
				if opts.Journal {
					layout = "2006-01-02T15:04:05.000000Z07:00"
				}
				line = t.Format(layout) + line[len(time.Stamp):]
			}
			b.WriteString(line)
			b.WriteByte('\n')
			lines++
		}
	}
	return b.Bytes(), origins
}
