package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/migrate"
	"github.com/portcullis/portcullis/pipeline"
)

// cmdImport is `portcullis import-fail2ban`: fail2ban's bans in force and ban counts, through the
// running daemon's socket (into the firewall at once), or into the state folder when no daemon
// answers (into the firewall at the next start).
func cmdImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import-fail2ban", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", migrate.DefaultDB, "fail2ban's database")
	dryRun := fs.Bool("dry-run", false, "say what would come over, change nothing")
	dir := fs.String("c", "/etc/portcullis", "configuration folder")
	db := fs.String("db", "", "state folder when the daemon is stopped (default from portcullis.conf)")
	socket := fs.String("socket", "", "control socket (default from portcullis.conf)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: portcullis import-fail2ban [--from PATH] [--dry-run] [-c DIR] [--db DIR] [--socket PATH] [--json]")
		return 2
	}
	if *socket == "" {
		*socket = config.DefaultSocket
		if d, err := config.LoadDaemon(*dir); err == nil {
			*socket = d.Socket
		}
	}
	var sum control.Import
	how := "through the running daemon"
	if _, err := control.Call(*socket, control.Request{Cmd: "ping"}, 2*time.Second); err == nil {
		req := control.Request{Cmd: "import", Args: []string{*from}}
		if *dryRun {
			req.Args = append(req.Args, "--dry-run")
		}
		rep, ok := callDaemon(*socket, req, 10*time.Minute, stderr)
		if !ok {
			return 1
		}
		if err := json.Unmarshal(rep.Data, &sum); err != nil {
			fmt.Fprintf(stderr, "portcullis: bad reply: %v\n", err)
			return 1
		}
	} else {
		how = "into the state folder; the bans enter the firewall when portcullis starts"
		if sum, err = pipeline.ImportOffline(*dir, *db, *from, *dryRun, nil); err != nil {
			fmt.Fprintf(stderr, "portcullis: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
		return 0
	}
	fmt.Fprintf(stdout, "from %s, %s:\n%s\n", sum.From, how, pipeline.ImportText(sum))
	return 0
}
