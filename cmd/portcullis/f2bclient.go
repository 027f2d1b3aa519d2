package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/control"
)

// f2bVersion is the fail2ban-client whose words and formats the compatible client speaks.
const f2bVersion = "1.0.2"

// f2bErrorCode is fail2ban-client's exit status for every failure.
const f2bErrorCode = 255

// runF2bClient is the binary invoked as fail2ban-client (or `portcullis fail2ban-client`): the
// commands scripts and monitoring checks send to fail2ban-client, answered by portcullis's daemon
// in fail2ban-client 1.0.2's exact output, so they keep working unchanged.
func runF2bClient(args []string, stdout, stderr io.Writer) int {
	dir, socket := "", ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		opt := args[0]
		args = args[1:]
		switch opt {
		case "-c", "-s", "-p", "--pidfile", "--loglevel", "--logtarget", "--syslogsocket", "--timeout":
			if len(args) == 0 {
				fmt.Fprintf(stderr, "ERROR   option %s needs an argument\n", opt)
				return f2bErrorCode
			}
			switch opt {
			case "-c":
				dir = args[0]
			case "-s":
				socket = args[0]
			}
			args = args[1:]
		case "-V", "--version":
			fmt.Fprintln(stdout, f2bVersion)
			return 0
		case "-h", "--help":
			fmt.Fprintf(stdout, "Usage: fail2ban-client [OPTIONS] <COMMAND>\n\nportcullis answers fail2ban-client's commands; `portcullis help` lists its own.\n")
			return 0
		case "-t", "--test":
			return f2bTestConfig(dir, stdout, stderr)
		case "-i", "--interactive", "-d", "--dp", "--dump-pretty":
			fmt.Fprintf(stderr, "ERROR   %s is not supported by portcullis's fail2ban-client\n", opt)
			return f2bErrorCode
		default: // -v, -q, -x, -b, -f, --async, --str2sec …: no effect here
		}
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ERROR   no command given (fail2ban-client -h)")
		return f2bErrorCode
	}
	if socket == "" {
		socket = config.DefaultSocket
		if dir != "" {
			if d, err := config.LoadDaemon(dir); err == nil {
				socket = d.Socket
			}
		}
	}
	c := &f2bClient{socket: socket, dir: dir, stdout: stdout, stderr: stderr}
	return c.run(args)
}

type f2bClient struct {
	socket, dir    string
	stdout, stderr io.Writer
}

// call sends one request; a failure is printed as fail2ban-client prints it and gives ok false.
func (c *f2bClient) call(cmd string, args ...string) (json.RawMessage, bool) {
	rep, err := control.Call(c.socket, control.Request{Cmd: cmd, Args: args}, time.Minute)
	if err != nil {
		fmt.Fprintf(c.stderr, "ERROR   Failed to access socket path: %s. Is fail2ban running?\n", c.socket)
		return nil, false
	}
	if !rep.OK {
		if rep.UnknownJail != "" {
			fmt.Fprintf(c.stdout, "Sorry but the jail '%s' does not exist\n", rep.UnknownJail)
			fmt.Fprintf(c.stderr, "ERROR   NOK: (%s,)\n", pyStr(rep.UnknownJail))
		} else {
			// fail2ban-client logs the error and prints its message.
			fmt.Fprintf(c.stderr, "ERROR   NOK: (%s,)\n", pyStr(rep.Error))
			fmt.Fprintln(c.stdout, rep.Error)
		}
		return nil, false
	}
	return rep.Data, true
}

func (c *f2bClient) run(args []string) int {
	cmd, rest := args[0], args[1:]
	out := func(s string) int { fmt.Fprintln(c.stdout, s); return 0 }
	switch {
	case cmd == "version":
		return out(f2bVersion)
	case cmd == "ping":
		if _, ok := c.call("ping"); !ok {
			return f2bErrorCode
		}
		return out("Server replied: pong")
	case cmd == "echo":
		if _, ok := c.call("ping"); !ok {
			return f2bErrorCode
		}
		return out(strings.Join(rest, " "))
	case cmd == "start" && len(rest) == 0:
		return c.startServer()
	case cmd == "stop" && len(rest) == 0:
		return c.simple("stop", nil, "Shutdown successful")
	case cmd == "add" && len(rest) >= 1 && len(rest) <= 2:
		data, ok := c.call("add", rest...)
		if !ok {
			return f2bErrorCode
		}
		var s string
		json.Unmarshal(data, &s)
		return c.println(s)
	case (cmd == "stop" || cmd == "start") && len(rest) == 1:
		return c.simple(cmd, rest, map[string]string{"stop": "Jail stopped", "start": "Jail started"}[cmd])
	case cmd == "reload" && len(rest) <= 1 || cmd == "restart" && len(rest) == 1:
		return c.simple("reload", rest, "OK")
	case cmd == "restart" && len(rest) == 0:
		// The daemon reloads in place (bans, counts and positions carry over either way) and
		// says what fail2ban says of its stop and start.
		return c.simple("reload", nil, "Shutdown successful\nServer ready")
	case cmd == "flushlogs" && len(rest) == 0:
		return c.simple("flushlogs", nil, "logs: rolled over")
	case cmd == "status" && len(rest) <= 1:
		return c.status(rest)
	case cmd == "banned":
		return c.banned(rest)
	case cmd == "unban" && len(rest) > 0:
		return c.unban("", rest)
	case cmd == "set" && len(rest) >= 3 && (rest[1] == "banip" || rest[1] == "unbanip"):
		if rest[1] == "banip" {
			return c.ban(rest[0], rest[2:])
		}
		return c.unban(rest[0], rest[2:])
	case cmd == "set" && len(rest) == 2:
		data, ok := c.call("set", rest...)
		if !ok {
			return f2bErrorCode
		}
		return c.printServer(rest[0], data)
	case cmd == "set" && len(rest) >= 3:
		data, ok := c.call("set", rest...)
		if !ok {
			return f2bErrorCode
		}
		key := rest[1]
		if k, ok := strings.CutPrefix(key, "add"); ok {
			key = k
		} else if k, ok := strings.CutPrefix(key, "del"); ok {
			key = k
		}
		return c.printJail(rest[0], key, data)
	case cmd == "get" && len(rest) == 1:
		return c.getServer(rest[0])
	case cmd == "get" && len(rest) >= 2:
		return c.getJail(rest[0], rest[1], rest[2:])
	}
	fmt.Fprintf(c.stderr, "ERROR   portcullis does not answer %q yet (docs/migrating-from-fail2ban.md lists the commands it does)\n", strings.Join(args, " "))
	return f2bErrorCode
}

func (c *f2bClient) simple(cmd string, args []string, say string) int {
	if _, ok := c.call(cmd, args...); !ok {
		return f2bErrorCode
	}
	fmt.Fprintln(c.stdout, say)
	return 0
}

// startServer is fail2ban-client start: the daemon started in the background, the answer once its
// socket answers.
func (c *f2bClient) startServer() int {
	if _, err := control.Call(c.socket, control.Request{Cmd: "ping"}, time.Second); err == nil {
		fmt.Fprintln(c.stderr, "ERROR   Server already running")
		return f2bErrorCode
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(c.stderr, "ERROR   %v\n", err)
		return f2bErrorCode
	}
	dir := c.dir
	if dir == "" {
		dir = "/etc/portcullis"
	}
	cmd := exec.Command(self, "run", "-c", dir, "--socket", c.socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(c.stderr, "ERROR   %v\n", err)
		return f2bErrorCode
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			fmt.Fprintf(c.stderr, "ERROR   Could not start server: %v\n", err)
			return f2bErrorCode
		default:
		}
		if _, err := control.Call(c.socket, control.Request{Cmd: "ping"}, time.Second); err == nil {
			fmt.Fprintln(c.stdout, "Server ready")
			return 0
		}
	}
	fmt.Fprintln(c.stderr, "ERROR   Could not start server: no answer within 60 s")
	return f2bErrorCode
}

func (c *f2bClient) status(rest []string) int {
	data, ok := c.call("status", rest...)
	if !ok {
		return f2bErrorCode
	}
	return printReply("status", rest, data, false, c.stdout, c.stderr)
}

// banned: every jail's bans as a Python list of dicts, or for each address the jails holding it.
func (c *f2bClient) banned(addrs []string) int {
	data, ok := c.call("banned")
	if !ok {
		return f2bErrorCode
	}
	var bs []control.Banned
	if json.Unmarshal(data, &bs) != nil {
		return f2bErrorCode
	}
	if len(addrs) > 0 {
		var parts []string
		for _, a := range addrs {
			var jails []string
			for _, b := range bs {
				if b.Prefix == a {
					jails = append(jails, pyStr(b.Jail))
				}
			}
			parts = append(parts, "["+strings.Join(jails, ", ")+"]")
		}
		return c.println("[" + strings.Join(parts, ", ") + "]")
	}
	sdata, ok := c.call("status")
	if !ok {
		return f2bErrorCode
	}
	var st control.Status
	json.Unmarshal(sdata, &st)
	var parts []string
	for _, j := range st.Jails {
		var ips []string
		for _, b := range bs {
			if b.Jail == j {
				ips = append(ips, pyStr(b.Prefix))
			}
		}
		parts = append(parts, "{"+pyStr(j)+": ["+strings.Join(ips, ", ")+"]}")
	}
	return c.println("[" + strings.Join(parts, ", ") + "]")
}

func (c *f2bClient) println(s string) int { fmt.Fprintln(c.stdout, s); return 0 }

// ban is set JAIL banip: the number of addresses newly banned.
func (c *f2bClient) ban(jail string, addrs []string) int {
	data, ok := c.call("ban", append([]string{jail}, addrs...)...)
	if !ok {
		return f2bErrorCode
	}
	return c.count(data, true)
}

// unban is unban IP… / unban --all / set JAIL unbanip IP…: the number of bans lifted.
func (c *f2bClient) unban(jail string, addrs []string) int {
	args := addrs
	if jail != "" {
		args = append([]string{jail}, addrs...)
	}
	data, ok := c.call("unban", args...)
	if !ok {
		return f2bErrorCode
	}
	return c.count(data, false)
}

// count prints how many results changed something; refused addresses are said on stderr.
func (c *f2bClient) count(data json.RawMessage, ban bool) int {
	var rs []control.Result
	if json.Unmarshal(data, &rs) != nil {
		return f2bErrorCode
	}
	n := 0
	for _, r := range rs {
		switch {
		case r.OK && r.Error == "":
			n++
		case !r.OK && (ban || r.Error != "not banned"):
			fmt.Fprintf(c.stderr, "ERROR   %s: %s\n", r.Addr, r.Error)
		}
	}
	return c.println(strconv.Itoa(n))
}

// getServer answers get loglevel|logtarget|dbfile|dbpurgeage.
func (c *f2bClient) getServer(key string) int {
	data, ok := c.call("get", key)
	if !ok {
		return f2bErrorCode
	}
	return c.printServer(key, data)
}

// printServer prints a daemon setting as fail2ban-client does.
func (c *f2bClient) printServer(key string, data json.RawMessage) int {
	var vs []string
	json.Unmarshal(data, &vs)
	v := strings.Join(vs, "")
	switch key {
	case "loglevel":
		return c.println("Current logging level is '" + v + "'")
	case "logtarget":
		return c.println("Current logging target is:\n`- " + v)
	case "dbfile":
		return c.println("Current database file is:\n`- " + v)
	case "dbpurgeage":
		return c.println("Current database purge age is:\n`- " + v + "seconds")
	}
	return c.println(v)
}

// getJail answers get JAIL SETTING in fail2ban-client's layout for each setting.
func (c *f2bClient) getJail(jail, key string, rest []string) int {
	if key == "banip" {
		data, ok := c.call("banned", jail)
		if !ok {
			return f2bErrorCode
		}
		withTime := len(rest) > 0 && rest[0] == "--with-time"
		return printReply("banip", []string{jail}, data, withTime, c.stdout, c.stderr)
	}
	data, ok := c.call("get", jail, key)
	if !ok {
		return f2bErrorCode
	}
	return c.printJail(jail, key, data)
}

// printJail prints a jail setting as fail2ban-client does.
func (c *f2bClient) printJail(jail, key string, data json.RawMessage) int {
	var vs []string
	json.Unmarshal(data, &vs)
	switch key {
	case "banned":
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = pyStr(v)
		}
		return c.println("[" + strings.Join(q, ", ") + "]")
	case "ignoreself", "idle":
		if len(vs) == 1 && vs[0] == "true" {
			return c.println("True")
		}
		return c.println("False")
	case "ignoreip":
		if len(vs) == 0 {
			return c.println("No IP address/network is ignored")
		}
		return c.println("These IP addresses/networks are ignored:\n" + tree(vs))
	case "logpath":
		if len(vs) == 0 {
			return c.println("No file is currently monitored")
		}
		return c.println("Current monitored log file(s):\n" + tree(vs))
	case "failregex", "ignoreregex":
		if len(vs) == 0 {
			return c.println("No regular expression is defined")
		}
		items := make([]string, len(vs))
		for i, v := range vs {
			items[i] = fmt.Sprintf("[%d]: %s", i, v)
		}
		return c.println("The following regular expression are defined:\n" + tree(items))
	case "journalmatch":
		if len(vs) == 0 || strings.TrimSpace(strings.Join(vs, "")) == "" {
			return c.println("No journal match filter set")
		}
		return c.println("Current match filter:\n" + strings.Join(vs, " + "))
	case "actions":
		names := make([]string, len(vs))
		for i, v := range vs {
			names[i], _, _ = strings.Cut(v, " (") // "name (how it runs)"
		}
		return c.println("The jail " + jail + " has the following actions:\n" + strings.Join(names, ", "))
	case "logencoding":
		return c.println("Current log encoding is set to:\n" + strings.Join(vs, ""))
	}
	return c.println(strings.Join(vs, "\n"))
}

// tree is fail2ban-client's list layout: "|- a" for every item but the last, "`- z" for it.
func tree(items []string) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i == len(items)-1 {
			b.WriteString("`- ")
		} else {
			b.WriteString("|- ")
		}
		b.WriteString(it)
	}
	return b.String()
}

// pyStr is a string as Python's repr writes it.
func pyStr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteByte(q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// f2bTestConfig is fail2ban-client -t: the configuration loads, or its errors.
func f2bTestConfig(dir string, stdout, stderr io.Writer) int {
	if dir == "" {
		dir = "/etc/portcullis"
	}
	if _, err := config.Load(dir, config.Options{}); err != nil {
		fmt.Fprintf(stderr, "ERROR   %v\n", err)
		return f2bErrorCode
	}
	fmt.Fprintln(stdout, "OK: configuration test is successful")
	return 0
}

// isF2bClient reports whether the binary was invoked under fail2ban-client's name.
func isF2bClient(argv0 string) bool {
	return filepath.Base(argv0) == "fail2ban-client"
}
