package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"
)

// JournalOptions configure a journald source.
type JournalOptions struct {
	// Command is journalctl's path; "journalctl" when empty.
	Command string
	// Match is fail2ban's journalmatch: "_SYSTEMD_UNIT=ssh.service + _COMM=sshd".
	Match string
	// Cursor resumes after this journal position. Without one, reading starts at Since (the time
	// the source was made when zero): not at the journal's end as journalctl -n 0 would, which
	// loses what is written between the daemon's start and journalctl's.
	Cursor   string
	Since    time.Time
	Source   *Source
	Location *time.Location
	Log      *slog.Logger
}

// Journal follows the systemd journal through `journalctl -o json -f`. Each entry becomes a line
// "<RFC 3339 time> <host> <program>[<pid>]: <message>", where host, program and pid come from the
// journal's trusted fields (_HOSTNAME, _COMM, _PID) when present, not from text a client wrote.
// Filters read these lines in fail2ban's journal log type.
type Journal struct {
	opts   JournalOptions
	mu     sync.Mutex
	cursor string
}

// NewJournal returns a journal source; call Run to start it.
func NewJournal(opts JournalOptions) *Journal {
	if opts.Command == "" {
		opts.Command = "journalctl"
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Since.IsZero() {
		opts.Since = time.Now()
	}
	return &Journal{opts: opts, cursor: opts.Cursor}
}

// SetCursor sets where the next start continues (call it before Run).
func (j *Journal) SetCursor(c string) {
	j.mu.Lock()
	j.cursor = c
	j.mu.Unlock()
}

// Cursor is the position after the last entry sent; safe from any goroutine.
func (j *Journal) Cursor() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cursor
}

// Args are journalctl's arguments for the current position.
func (j *Journal) Args() []string {
	args := []string{"-o", "json", "-f", "--no-pager"}
	if c := j.Cursor(); c != "" {
		args = append(args, "--after-cursor="+c)
	} else {
		us := j.opts.Since.UnixMicro()
		args = append(args, fmt.Sprintf("--since=@%d.%06d", us/1e6, us%1e6))
	}
	return append(args, strings.Fields(j.opts.Match)...)
}

// Run starts journalctl and restarts it (after a pause, from the last cursor) if it exits, until
// ctx is done. Blocks are sent to out; a full pipeline makes the journal wait, nothing is lost.
func (j *Journal) Run(ctx context.Context, out chan<- *Block) {
	for {
		err := j.runOnce(ctx, out)
		if ctx.Err() != nil {
			return
		}
		j.opts.Log.Warn("journalctl stopped; restarting in 5 s", "source", j.opts.Source.Name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

func (j *Journal) runOnce(ctx context.Context, out chan<- *Block) error {
	cmd := exec.CommandContext(ctx, j.opts.Command, j.Args()...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %w", j.opts.Command, err)
	}
	err = j.read(ctx, stdout, out)
	werr := cmd.Wait()
	if err == nil {
		err = werr
	}
	if err != nil && stderr.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return err
}

// read turns journalctl's JSON lines into blocks.
func (j *Journal) read(ctx context.Context, r io.Reader, out chan<- *Block) error {
	br := bufio.NewReaderSize(r, 256*1024)
	var p fastjson.Parser
	st := j.opts.Source.Stats
	b := GetBlock()
	lastCursor := ""
	send := func() bool {
		if len(b.Lines) == 0 {
			return true
		}
		b.Source = j.opts.Source
		// The journal's own stamps are the entries' times: one older than findtime (a catch-up
		// from a saved cursor) never counts, as in fail2ban's start-up.
		b.Backlog = true
		if !handOver(ctx, out, b) {
			b = nil // back in the pool already
			return false
		}
		j.mu.Lock()
		j.cursor = lastCursor
		j.mu.Unlock()
		b = GetBlock()
		return true
	}
	defer func() {
		if b != nil {
			PutBlock(b)
		}
	}()
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			st.Overlong.Add(1)
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 1 {
			st.Lines.Add(1)
			st.Bytes.Add(uint64(len(line)))
			v, perr := p.ParseBytes(line)
			if perr != nil {
				st.Malformed.Add(1)
			} else {
				start := len(b.Buf)
				b.Buf = j.appendEntry(b.Buf, v)
				if len(b.Buf) > start {
					b.Lines = append(b.Lines, Span{Start: uint32(start), End: uint32(len(b.Buf) - 1)})
					if c := v.GetStringBytes("__CURSOR"); c != nil {
						lastCursor = string(c)
					}
				}
			}
		}
		if err != nil {
			send()
			if err == io.EOF {
				return nil
			}
			return err
		}
		// Send when the block is full or journalctl has nothing more for now.
		if len(b.Buf) > blockSize-MaxLineLen || br.Buffered() == 0 {
			if !send() {
				return ctx.Err()
			}
		}
	}
}

func field(v *fastjson.Value, names ...string) []byte {
	for _, n := range names {
		f := v.Get(n)
		if f == nil {
			continue
		}
		switch f.Type() {
		case fastjson.TypeString:
			return f.GetStringBytes()
		case fastjson.TypeArray:
			// journalctl writes non-UTF-8 values as arrays of byte values.
			arr, _ := f.Array()
			out := make([]byte, 0, len(arr))
			for _, x := range arr {
				out = append(out, byte(x.GetInt()))
			}
			return out
		}
	}
	return nil
}

// appendEntry writes one journal entry as a line; entries without a message are skipped.
func (j *Journal) appendEntry(dst []byte, v *fastjson.Value) []byte {
	msg := field(v, "MESSAGE")
	if msg == nil {
		return dst
	}
	t := time.Now()
	if us, err := strconv.ParseInt(string(field(v, "__REALTIME_TIMESTAMP")), 10, 64); err == nil {
		t = time.UnixMicro(us)
	}
	dst = t.In(j.opts.Location).AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	dst = append(dst, ' ')
	if h := field(v, "_HOSTNAME"); len(h) > 0 {
		dst = appendClean(dst, h)
		dst = append(dst, ' ')
	}
	if prog := field(v, "_COMM", "SYSLOG_IDENTIFIER"); len(prog) > 0 {
		dst = appendClean(dst, prog)
		if pid := field(v, "_PID", "SYSLOG_PID"); len(pid) > 0 {
			dst = append(dst, '[')
			dst = appendClean(dst, pid)
			dst = append(dst, ']')
		}
		dst = append(dst, ':', ' ')
	}
	dst = appendClean(dst, msg)
	return append(dst, '\n')
}
