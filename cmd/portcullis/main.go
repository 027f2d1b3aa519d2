// Command portcullis is the daemon and its command-line client in one binary.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // zone names (logtimezone, TZ) work even where the system has no tzdata

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/fleet"
	"github.com/portcullis/portcullis/internal/tzenv"
	"github.com/portcullis/portcullis/migrate"
	"github.com/portcullis/portcullis/pipeline"
)

const usage = `portcullis — ban addresses that keep failing to authenticate (fail2ban-compatible)

Usage:
  portcullis run [-c DIR] [--socket PATH] [--db DIR] [--metrics ADDR|off] [--workers N]
                 [--poll DUR] [--check-every DUR] [--debug] [--dry-run]
  portcullis status [JAIL] [--json]
  portcullis ban JAIL IP...
  portcullis unban [JAIL] IP...        (no jail: unban in every jail)
  portcullis unban --all
  portcullis banned [JAIL] [--json]
  portcullis banned --fleet [--json]   (the fleet's bans in force and the node that decided each)
  portcullis fleet status [--json]     (servers, bucket, stream, partitions and their deciders)
  portcullis reload [JAIL]
  portcullis get JAIL banip [--with-time]          (fail2ban-client style)
  portcullis get JAIL maxretry|findtime|bantime|ignoreip|ignoreself|logpath|failregex|ignoreregex|journalmatch
  portcullis set JAIL banip|unbanip IP...
  portcullis regex [--json] [--now TIME] [--config DIR] LOG FILTER [IGNOREREGEX]
  portcullis replay -c DIR [--json] [--from T] [--to T] LOG...
  portcullis import-fail2ban [--from PATH] [--dry-run] [-c DIR] [--db DIR] [--json]
                 (fail2ban's bans in force and ban counts; default PATH ` + migrate.DefaultDB + `)
  portcullis version
  portcullis fail2ban-client ARGS...   (or the binary named fail2ban-client: fail2ban-client's
                                        commands and output, for scripts and monitoring)

Client commands accept --socket PATH, or -c DIR to take the socket from DIR/portcullis.conf
(default ` + config.DefaultSocket + `).
`

func main() {
	// TZ as the C library reads it: Go alone ignores POSIX rules like CET-01CEST-02,M3.5.0,M10.5.0.
	if loc := tzenv.FromEnv(); loc != nil {
		time.Local = loc
	}
	if isF2bClient(os.Args[0]) {
		os.Exit(runF2bClient(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "status", "ban", "unban", "banned", "reload", "ping", "get", "set", "fleet":
		return cmdClient(cmd, rest, stdout, stderr)
	case "regex":
		return cmdRegex(rest, os.Stdin, stdout, stderr)
	case "replay":
		return cmdReplay(rest, os.Stdin, stdout, stderr)
	case "import-fail2ban":
		return cmdImport(rest, stdout, stderr)
	case "fail2ban-client":
		return runF2bClient(rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "portcullis %s (%s)\n", pipeline.Version, runtime.Version())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// parseInterspersed parses flags wherever they appear among the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("c", "/etc/portcullis", "configuration folder (ours or an existing /etc/fail2ban)")
	socket := fs.String("socket", "", "control socket path (default from portcullis.conf, else "+config.DefaultSocket+")")
	db := fs.String("db", "", "state folder (default from portcullis.conf, else "+config.DefaultDBDir+")")
	metricsAddr := fs.String("metrics", "", "metrics listen address, or off (default from portcullis.conf, else "+config.DefaultMetrics+")")
	workers := fs.Int("workers", 0, "matching goroutines (default: one per core)")
	debug := fs.Bool("debug", false, "log debug messages")
	checkEvery := fs.Duration("check-every", 5*time.Second, "how often to check that the nftables table is intact")
	poll := fs.Duration("poll", 250*time.Millisecond, "log file poll interval")
	dryRun := fs.Bool("dry-run", false, "block nothing and run no action: log bans as \"would ban\" (beside fail2ban, before switching)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "portcullis run: unexpected argument %q\n", pos[0])
		return 2
	}
	log, logLevel, logOut, err := daemonLogger(*dir, *debug, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis: %v\n", err)
		return 1
	}
	defer logOut.Close()
	// Signals are caught before the daemon starts: a SIGTERM that arrives while it starts (the
	// control socket already answering) is a clean stop once the start is done, never a kill
	// that saves no position and no count.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	d, err := pipeline.Start(pipeline.Options{
		ConfigDir: *dir, Socket: *socket, DBDir: *db, Metrics: *metricsAddr, Workers: *workers, Log: log,
		CheckEvery: *checkEvery, Poll: *poll, DryRun: *dryRun,
		Stop:      func() { sigs <- syscall.SIGTERM }, // fail2ban-client stop: as a SIGTERM
		FlushLogs: logOut.Reopen, LogLevel: logLevel, SetLogTarget: logOut.SetTarget,
	})
	if err != nil {
		var ce config.Errors
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "portcullis: the configuration has %d error(s):\n%v\n", len(ce), err)
		} else {
			fmt.Fprintf(stderr, "portcullis: cannot start: %v\n", err)
		}
		return 1
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			log.Info("SIGHUP: reloading the configuration")
			_ = d.Reload()
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}
	if err := d.Close(); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func cmdClient(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "control socket path (default: from -c DIR's portcullis.conf, else "+config.DefaultSocket+")")
	dir := fs.String("c", "", "configuration folder whose portcullis.conf names the socket")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "unban: every ban of every jail")
	withTime := fs.Bool("with-time", false, "get JAIL banip: with each ban's start, length and end")
	fromFleet := fs.Bool("fleet", false, "banned: the fleet's bans in force, with the node that decided each")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the daemon")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	switch cmd {
	case "ban":
		if len(pos) < 2 {
			fmt.Fprintln(stderr, "usage: portcullis ban JAIL IP...")
			return 2
		}
	case "unban":
		if *all && len(pos) == 0 {
			pos = []string{"--all"}
		} else if len(pos) < 1 || *all {
			fmt.Fprintln(stderr, "usage: portcullis unban [JAIL] IP... | portcullis unban --all")
			return 2
		}
	case "status", "banned", "reload":
		if len(pos) > 1 || (*fromFleet && (cmd != "banned" || len(pos) > 0)) {
			fmt.Fprintf(stderr, "usage: portcullis %s [JAIL]%s\n", cmd, map[bool]string{true: " | portcullis banned --fleet"}[cmd == "banned"])
			return 2
		}
		if *fromFleet {
			pos = []string{"--fleet"}
		}
	case "fleet":
		if len(pos) != 1 || pos[0] != "status" {
			fmt.Fprintln(stderr, "usage: portcullis fleet status")
			return 2
		}
	case "set":
		// fail2ban-client set JAIL banip|unbanip IP...: the same requests as ban and unban.
		if len(pos) < 3 || (pos[1] != "banip" && pos[1] != "unbanip") {
			fmt.Fprintln(stderr, "usage: portcullis set JAIL banip|unbanip IP...")
			return 2
		}
		cmd = map[string]string{"banip": "ban", "unbanip": "unban"}[pos[1]]
		pos = append([]string{pos[0]}, pos[2:]...)
	case "get":
		if len(pos) != 2 {
			fmt.Fprintln(stderr, "usage: portcullis get JAIL PARAM")
			return 2
		}
		if pos[1] == "banip" {
			cmd, pos = "banip", pos[:1]
		}
	}
	if *socket == "" {
		*socket = config.DefaultSocket
		if *dir != "" {
			d, err := config.LoadDaemon(*dir)
			if err != nil {
				fmt.Fprintf(stderr, "portcullis: %v\n", err)
				return 1
			}
			*socket = d.Socket
		}
	}
	wire := cmd
	if cmd == "banip" {
		wire = "banned" // get JAIL banip is answered from the list of bans
	}
	rep, ok := callDaemon(*socket, control.Request{Cmd: wire, Args: pos}, *timeout, stderr)
	if !ok {
		return 1
	}
	if *asJSON {
		var v any
		_ = json.Unmarshal(rep.Data, &v)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return exitForResults(cmd, rep.Data)
	}
	return printReply(cmd, pos, rep.Data, *withTime, stdout, stderr)
}

// printFleetStatus prints fleet status for a person; --json gives the same as JSON.
func printFleetStatus(w io.Writer, st fleet.Status) {
	server := st.Server
	if server == "" {
		server = "none (reconnecting)"
	}
	role := map[[2]bool]string{{false, false}: "bans only", {true, false}: "publishes failures",
		{false, true}: "decides", {true, true}: "publishes failures and decides"}[[2]bool{st.Publish, st.Decide}]
	fmt.Fprintf(w, "Node %s (%s), connected to %s\n", st.Node, role, server)
	fmt.Fprintf(w, "Servers: %s\n", strings.Join(st.Servers, ", "))
	asset := func(what string, a fleet.Asset) {
		fmt.Fprintf(w, "%s %s: %d messages, %d bytes", what, a.Name, a.Messages, a.Bytes)
		if a.Leader != "" {
			fmt.Fprintf(w, ", leader %s, replicas %s", a.Leader, strings.Join(a.Replicas, ", "))
		}
		fmt.Fprintln(w)
	}
	asset("Bucket", st.Bucket)
	if st.Stream != nil {
		asset("Stream", *st.Stream)
		for _, p := range st.Parts {
			held := p.PinnedID
			switch {
			case held == "":
				held = "no decider"
			case p.Here:
				held = st.Node + " (this node)"
			case p.Decider != "":
				held = p.Decider
			}
			fmt.Fprintf(w, "  partition %d: lag %d, unacknowledged %d, decider %s\n", p.Part, p.Lag, p.AckPending, held)
		}
	}
	c := st.Counters
	fmt.Fprintf(w, "Bans: %d published, %d applied from the fleet, %d refused here (protected), %d decided from fleet failures\n",
		c.Published, c.Applied, c.Refused, c.Decided)
	fmt.Fprintf(w, "Failures: %d published, %d dropped, %d received; %d publish retries, %d bad values, %d bad messages\n",
		c.FailuresOut, c.FailuresDropped, c.FailuresIn, c.PublishErrors, c.BadValues, c.BadBatches)
	if st.Unhealthy != "" {
		fmt.Fprintf(w, "Error: %s\n", st.Unhealthy)
	}
}

// callDaemon sends one request; a failure to reach the daemon or a refused request is said on
// stderr and gives false.
func callDaemon(socket string, req control.Request, timeout time.Duration, stderr io.Writer) (control.Reply, bool) {
	rep, err := control.Call(socket, req, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis: %v\n", err)
		return rep, false
	}
	if !rep.OK {
		fmt.Fprintf(stderr, "portcullis: %s\n", rep.Error)
		return rep, false
	}
	return rep, true
}

func exitForResults(cmd string, data json.RawMessage) int {
	if cmd != "ban" && cmd != "unban" {
		return 0
	}
	var rs []control.Result
	_ = json.Unmarshal(data, &rs)
	for _, r := range rs {
		if !r.OK {
			return 1
		}
	}
	return 0
}

func printReply(cmd string, pos []string, data json.RawMessage, withTime bool, stdout, stderr io.Writer) int {
	switch cmd {
	case "banip":
		// fail2ban-client get JAIL banip [--with-time]: addresses on one line, or one per line as
		// "ADDR \tSTART + SECONDS = END".
		var bs []control.Banned
		if err := json.Unmarshal(data, &bs); err != nil {
			fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
			return 1
		}
		// As fail2ban's getBanList(ordered=True): by end, permanent bans last; the daemon's
		// order (as made) for equal ends.
		sort.SliceStable(bs, func(i, j int) bool {
			ei, ej := bs[i].End, bs[j].End
			if ei == 0 {
				ei = math.MaxInt64
			}
			if ej == 0 {
				ej = math.MaxInt64
			}
			return ei < ej
		})
		if !withTime {
			var addrs []string
			for _, b := range bs {
				addrs = append(addrs, b.Prefix)
			}
			fmt.Fprintln(stdout, strings.Join(addrs, " "))
			return 0
		}
		const layout = "2006-01-02 15:04:05"
		for _, b := range bs {
			if b.End == 0 {
				fmt.Fprintf(stdout, "%s \t%s + -1 = forever\n", b.Prefix, time.Unix(b.Start, 0).Format(layout))
				continue
			}
			fmt.Fprintf(stdout, "%s \t%s + %d = %s\n", b.Prefix, time.Unix(b.Start, 0).Format(layout), b.End-b.Start, time.Unix(b.End, 0).Format(layout))
		}
		return 0
	case "get":
		var vs []string
		if err := json.Unmarshal(data, &vs); err != nil {
			fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
			return 1
		}
		for _, v := range vs {
			fmt.Fprintln(stdout, v)
		}
		return 0
	case "status":
		if len(pos) == 0 {
			var st control.Status
			if err := json.Unmarshal(data, &st); err != nil {
				fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "Status\n|- Number of jail:\t%d\n`- Jail list:\t%s\n", len(st.Jails), strings.Join(st.Jails, ", "))
			return 0
		}
		var js control.JailStatus
		if err := json.Unmarshal(data, &js); err != nil {
			fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "Status for the jail: %s\n", js.Name)
		fmt.Fprintf(stdout, "|- Filter\n|  |- Currently failed:\t%d\n|  |- Total failed:\t%d\n|  `- File list:\t%s\n",
			js.CurrentlyFailed, js.TotalFailed, strings.Join(js.Files, " "))
		fmt.Fprintf(stdout, "`- Actions\n   |- Currently banned:\t%d\n   |- Total banned:\t%d\n   `- Banned IP list:\t%s\n",
			js.CurrentlyBanned, js.TotalBanned, strings.Join(js.Banned, " "))
		return 0
	case "ban", "unban":
		var rs []control.Result
		if err := json.Unmarshal(data, &rs); err != nil {
			fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
			return 1
		}
		code := 0
		for _, r := range rs {
			switch {
			case r.OK && r.Error != "":
				fmt.Fprintf(stdout, "%s: %s\n", r.Addr, r.Error)
			case r.OK:
				fmt.Fprintf(stdout, "%s: %sned in %s\n", r.Addr, cmd, r.Jail)
			default:
				fmt.Fprintf(stderr, "%s: %s\n", r.Addr, r.Error)
				code = 1
			}
		}
		return code
	case "banned":
		var bs []control.Banned
		if err := json.Unmarshal(data, &bs); err != nil {
			fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
			return 1
		}
		for _, b := range bs {
			until := "forever"
			if b.End != 0 {
				until = time.Unix(b.End, 0).Format(time.RFC3339)
			}
			from := ""
			if b.Origin != "" {
				from = "\tfrom " + b.Origin
			}
			fmt.Fprintf(stdout, "%s\t%s\tuntil %s\t(ban #%d)%s\n", b.Jail, b.Prefix, until, b.Count, from)
		}
		return 0
	case "fleet":
		var st fleet.Status
		if err := json.Unmarshal(data, &st); err != nil {
			fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
			return 1
		}
		printFleetStatus(stdout, st)
		if st.Unhealthy != "" {
			return 1
		}
		return 0
	default:
		var s string
		if json.Unmarshal(data, &s) == nil {
			fmt.Fprintln(stdout, s)
		}
		return 0
	}
}
