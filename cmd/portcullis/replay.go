package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/portcullis/portcullis/pipeline"
)

const replayUsage = `usage: portcullis replay -c DIR [--json] [--from T] [--to T] [--now T] [--cpuprofile F] [--memprofile F] LOG...

Runs the configured jails over archived logs (plain, .gz or .zst; - for stdin) by event time,
with no firewall, and prints every ban and unban the daemon would have made. T is unix seconds or
RFC 3339; --now is the time year-less stamps are read against (default: the current time).
`

func cmdReplay(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, replayUsage) }
	dir := fs.String("c", "/etc/portcullis", "configuration folder")
	asJSON := fs.Bool("json", false, "one JSON object per decision")
	from := fs.String("from", "", "ignore events before this time")
	to := fs.String("to", "", "ignore events from this time on")
	now := fs.String("now", "", "read year-less stamps as of this time")
	cpuProf := fs.String("cpuprofile", "", "write a CPU profile here (go tool pprof)")
	memProf := fs.String("memprofile", "", "write an allocation profile here at the end")
	logs, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fmt.Fprintf(stderr, "portcullis replay: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "portcullis replay: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *memProf != "" {
		defer func() {
			f, err := os.Create(*memProf)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(stderr, "portcullis replay: memory profile: %v\n", err)
			}
		}()
	}
	if len(logs) == 0 {
		fmt.Fprint(stderr, replayUsage)
		return 2
	}
	bar := newProgress(stderr, totalSize(logs...), *asJSON)
	opts := pipeline.ReplayOptions{ConfigDir: *dir, Logs: logs, Stdin: stdin, Progress: bar.update,
		Warn: func(w string) { fmt.Fprintf(stderr, "warning: %s\n", w) }}
	var nowT time.Time
	for _, f := range []struct {
		s string
		t *time.Time
	}{{*from, &opts.From}, {*to, &opts.To}, {*now, &nowT}} {
		if f.s == "" {
			continue
		}
		t, err := parseNow(f.s)
		if err != nil {
			fmt.Fprintf(stderr, "portcullis replay: %q is not a time: %v\n", f.s, err)
			return 2
		}
		*f.t = t
	}
	if !nowT.IsZero() {
		opts.Now = func() time.Time { return nowT }
	}
	enc := json.NewEncoder(stdout)
	st, err := pipeline.Replay(opts, func(d pipeline.ReplayDecision) error {
		bar.clear() // a decision's line, then the bar again under it
		prefix := d.Prefix.String()
		if d.Prefix.IsSingleIP() {
			prefix = d.Prefix.Addr().String()
		}
		if *asJSON {
			obj := map[string]any{"time": float64(d.Time.UnixNano()) / 1e9, "op": d.Op, "jail": d.Jail, "address": prefix,
				"end": -1, "bancount": d.Count}
			if !d.End.IsZero() {
				obj["end"] = d.End.Unix()
			}
			if d.Op == "ban" {
				obj["failures"] = d.Failures
				obj["duration"] = d.Duration.Seconds()
				if d.Duration < 0 {
					obj["duration"] = -1
				}
			}
			return enc.Encode(obj)
		}
		ts := d.Time.Format(time.RFC3339)
		if d.Op == "ban" {
			dur := "forever"
			if d.Duration >= 0 {
				dur = d.Duration.String()
			}
			_, err := fmt.Fprintf(stdout, "%s ban   %s %s after %d failures, for %s\n", ts, d.Jail, prefix, d.Failures, dur)
			return err
		}
		if d.Op == "prolong" {
			until := "forever"
			if !d.End.IsZero() {
				until = d.End.Format(time.RFC3339)
			}
			_, err := fmt.Fprintf(stdout, "%s prolong %s %s until %s\n", ts, d.Jail, prefix, until)
			return err
		}
		_, err := fmt.Fprintf(stdout, "%s unban %s %s\n", ts, d.Jail, prefix)
		return err
	})
	bar.done()
	if err != nil {
		fmt.Fprintf(stderr, "portcullis replay: %v\n", err)
		return 1
	}
	var jails []string
	for j := range st.Failures {
		jails = append(jails, j)
	}
	sort.Strings(jails)
	fmt.Fprintf(stderr, "%d lines in %.3f s (%.0f lines/s)\n", st.Lines, st.Elapsed.Seconds(), float64(st.Lines)/max(st.Elapsed.Seconds(), 1e-9))
	for _, j := range jails {
		fmt.Fprintf(stderr, "  %s: %d failures, %d bans\n", j, st.Failures[j], st.Bans[j])
	}
	return 0
}
