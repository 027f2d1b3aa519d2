package ingest

import (
	"context"
	"os/exec"
)

// Reader is a source of blocks that owns its own setup: files and their positions, a journalctl
// process. Prime fixes where it starts, before any reader of a generation runs; Run sends
// whole-line blocks to out until ctx is done, and the receiver owns each block and returns it
// with PutBlock. State a reader keeps across runs (file positions, journal cursors) is set and
// read through its own type. The network syslog input is a server (StartSyslog), not a Reader.
type Reader interface {
	Prime()
	Run(ctx context.Context, out chan<- *Block)
	// Reading lists what it reads now, for status: the files a pattern matches, the journal.
	Reading() []string
}

var (
	_ Reader = (*Tailer)(nil)
	_ Reader = (*Journal)(nil)
)

// Reading lists the files the pattern matches now, or the pattern when it matches none.
func (t *Tailer) Reading() []string {
	var out []string
	for _, p := range t.Positions() {
		out = append(out, p.Path)
	}
	if len(out) == 0 {
		out = append(out, t.opts.Pattern)
	}
	return out
}

// Prime does nothing: the journal starts at its cursor, or at Since.
func (j *Journal) Prime() {}

// Reading names the journal and what is asked of it.
func (j *Journal) Reading() []string { return []string{"journal: " + j.opts.Match} }

// JournalAvailable reports whether journalctl (command, or "journalctl" when empty) is installed.
func JournalAvailable(command string) bool {
	if command == "" {
		command = "journalctl"
	}
	_, err := exec.LookPath(command)
	return err == nil
}
