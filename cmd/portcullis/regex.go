package main

// portcullis regex: our fail2ban-regex. It runs one filter over a log (or a single line) on the
// same engine as the daemon — blocks, one Hyperscan scan per block, confirmation of hit lines — and
// prints a summary, or with --json one object per counted failure.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/internal/tzenv"
	"github.com/portcullis/portcullis/matcher"
	"github.com/portcullis/portcullis/pipeline"
)

const regexUsage = `usage: portcullis regex [--json] [--now TIME] [--config DIR] [--print-all-matched]
                        [--print-all-missed] [--print-all-ignored] [--print-no-missed]
                        [--print-no-ignored] [-v] [-l LEVEL] [-r] LOG FILTER [IGNOREREGEX]

  LOG      a log file, - for standard input, or a single log line (text without blanks that
           names a path is a file, and an error when there is none)
  FILTER   a filter name (looked up in DIR/filter.d; default: ./configs, the configs next to the
           binary, /etc/portcullis, then /etc/fail2ban), name[key=value,...] with filter
           arguments (logtype=journal: each line is a journal message whose time is --now),
           a path to a .conf file, or a raw regex
  --now    "now" for year inference: unix seconds or RFC 3339 (default: the clock); TZ is honoured
  --print-all-matched, --print-all-missed, --print-all-ignored: list every such line (missed
           and ignored lines are listed anyway when there are fewer than 20), as fail2ban-regex;
           --print-no-missed, --print-no-ignored: never list them
  -v       list every failregex and date template, hit or not
  -l, -r   fail2ban-regex's log level and raw (no DNS) options: accepted; portcullis never
           resolves names
`

type regexOpts struct {
	json bool
	// fail2ban-regex's line lists: print every matched / missed / ignored line; never the
	// missed / ignored ones.
	allMatched, allMissed, allIgnored, noMissed, noIgnored, verbose bool
	now                                                             time.Time
	config                                                          string
	log                                                             string
	filter                                                          string
	ignore                                                          string
	stdin                                                           io.Reader
}

func cmdRegex(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("regex", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, regexUsage) }
	asJSON := fs.Bool("json", false, "one JSON object per counted failure")
	nowFlag := fs.String("now", "", "now, for year inference (unix seconds or RFC 3339)")
	cfgDir := fs.String("config", "", "configuration folder with filter.d")
	var o regexOpts
	fs.BoolVar(&o.allMatched, "print-all-matched", false, "list every matched line")
	fs.BoolVar(&o.allMissed, "print-all-missed", false, "list every missed line")
	fs.BoolVar(&o.allIgnored, "print-all-ignored", false, "list every ignored line")
	fs.BoolVar(&o.noMissed, "print-no-missed", false, "never list missed lines")
	fs.BoolVar(&o.noIgnored, "print-no-ignored", false, "never list ignored lines")
	fs.BoolVar(&o.verbose, "v", false, "list every failregex and date template")
	fs.BoolVar(&o.verbose, "verbose", false, "list every failregex and date template")
	fs.String("l", "", "log level (accepted)")
	fs.String("log-level", "", "log level (accepted)")
	fs.Bool("r", false, "raw: no DNS (portcullis never resolves)")
	fs.Bool("raw", false, "raw: no DNS (portcullis never resolves)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if o.allMissed && o.noMissed || o.allIgnored && o.noIgnored {
		fmt.Fprintln(stderr, "portcullis regex: --print-all-X and --print-no-X exclude each other")
		return 2
	}
	if len(pos) < 2 || len(pos) > 3 {
		fmt.Fprint(stderr, regexUsage)
		return 2
	}
	o.json, o.config, o.log, o.filter, o.stdin, o.now = *asJSON, *cfgDir, pos[0], pos[1], stdin, time.Now()
	if len(pos) == 3 {
		o.ignore = pos[2]
	}
	if *nowFlag != "" {
		t, err := parseNow(*nowFlag)
		if err != nil {
			fmt.Fprintf(stderr, "portcullis regex: --now: %v\n", err)
			return 2
		}
		o.now = t
	}
	if tz := os.Getenv("TZ"); tz != "" {
		if _, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err != nil {
			if _, err := tzenv.FromRule(tz); err != nil {
				fmt.Fprintf(stderr, "portcullis regex: warning: TZ=%q is neither a zone name this system knows nor a POSIX rule; using UTC\n", tz)
			}
		}
	}
	if err := runRegex(o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "portcullis regex: %v\n", err)
		return 1
	}
	return 0
}

func parseNow(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Parse(time.RFC3339, s)
}

// filterDirs lists where filter names are looked up.
func filterDirs(cfg string) []string {
	if cfg != "" {
		return []string{filepath.Join(cfg, "filter.d")}
	}
	dirs := []string{filepath.Join("configs", "filter.d")}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "configs", "filter.d"))
	}
	return append(dirs, "/etc/portcullis/filter.d", "/etc/fail2ban/filter.d")
}

// loadRegexFilter resolves FILTER: a path to a .conf, a filter name with optional arguments, or a
// raw regex.
func loadRegexFilter(o regexOpts) (*config.Filter, map[string]string, string, error) {
	name, args, specErr := config.ParseFilterSpec(o.filter)
	if specErr == nil {
		if strings.HasSuffix(name, ".conf") || strings.HasSuffix(name, ".local") {
			if _, err := os.Stat(name); err == nil {
				dir := filepath.Dir(name)
				base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(name), ".conf"), ".local")
				f, errs := config.LoadFilter(dir, base, args)
				if errs != nil {
					return nil, nil, "", errs
				}
				return f, args, name, nil
			}
		}
		if !strings.ContainsAny(name, "/\\^$()[]{}*+?<> ") {
			for _, dir := range filterDirs(o.config) {
				if _, err := os.Stat(filepath.Join(dir, name+".conf")); err != nil {
					continue
				}
				f, errs := config.LoadFilter(dir, name, args)
				if errs != nil {
					return nil, nil, "", errs
				}
				return f, args, filepath.Join(dir, name+".conf"), nil
			}
			if o.config != "" || !strings.ContainsAny(name, `\.|`) {
				return nil, nil, "", fmt.Errorf("no filter %q in %s", name, strings.Join(filterDirs(o.config), ", "))
			}
		}
	}
	// A raw regex.
	return &config.Filter{Name: "(raw regex)", FailRegex: []config.Regex{{Text: o.filter, File: "command line", Line: 1}}}, nil, "", nil
}

type regexStats struct {
	lines, matched, missed, ignored int
	helpers                         int // lines a failregex matched as no failure (nofail)
	regexHits                       []int
	// The lines listed after the summary: every one asked for, else the first listMax+1.
	matchedLines, missedLines, ignoredLines []string
}

// listMax is fail2ban-regex's maxlines: fewer missed or ignored lines than this are listed
// without being asked for.
const listMax = 20

func runRegex(o regexOpts, stdout, stderr io.Writer) error {
	f, args, source, err := loadRegexFilter(o)
	if err != nil {
		return err
	}
	if o.ignore != "" {
		f.IgnoreRegex = append(f.IgnoreRegex, config.Regex{Text: o.ignore, File: "command line", Line: 1})
	}
	var r io.Reader
	var read uint64 // bytes of the file read: the bar's progress
	logName := o.log
	switch {
	case o.log == "-":
		in, err := ingest.Decompress(o.stdin)
		if err != nil {
			return err
		}
		defer in.Close()
		r, logName = in, "(standard input)"
	default:
		if st, err := os.Stat(o.log); err == nil && st.Mode().IsRegular() {
			fh, err := ingest.OpenLogCounted(o.log, func(n int) { read += uint64(n) }) // .gz and .zst archives too
			if err != nil {
				return err
			}
			defer fh.Close()
			r = fh
		} else if looksLikePath(o.log) {
			return fmt.Errorf("%s: no such file (a log line has blanks; quote the whole line)", o.log)
		} else {
			r, logName = strings.NewReader(o.log+"\n"), "(one line)"
		}
	}

	st := regexStats{regexHits: make([]int, len(f.FailRegex))}
	enc := json.NewEncoder(stdout)
	start := time.Now()
	bar := newProgress(stderr, totalSize(o.log), o.json)
	lineBase := 0 // 1-based line number of the block's first line, minus one
	var seen uint64
	var outErr error // from writing, as opposed to reading
	lists := !o.json
	res, err := pipeline.RunFilter(f, r, pipeline.FilterOptions{Now: o.now, Journal: args["logtype"] == "journal", Fields: o.json, Ignored: lists},
		func(b *ingest.Block, found []matcher.Result) error {
			if lists {
				st.collectLines(b, found, o)
				// As fail2ban-regex: a helper line (no failure) counts as ignored, and as a hit
				// of its failregex.
				for _, d := range found {
					if d.NoFail && !d.Ignored {
						st.helpers++
						st.regexHits[d.Regex]++
					}
				}
				found = slices.DeleteFunc(found, func(d matcher.Result) bool { return d.Ignored || d.NoFail })
			}
			var lineNo []int
			if o.json && len(found) > 0 {
				lineNo = lineNumbers(b)
			}
			for _, d := range found {
				st.regexHits[d.Regex]++
				if o.json {
					if outErr = enc.Encode(failureJSON(d, lineBase+lineNo[d.Line])); outErr != nil {
						return outErr
					}
				}
			}
			st.matched += len(found)
			// Number lines by counting newlines: skipped (over-long, binary) lines count too.
			seen += uint64(len(b.Lines))
			if o.json {
				lineBase += bytes.Count(b.Buf, []byte{'\n'})
			} else {
				lineBase = int(seen)
			}
			bar.update(read, uint64(lineBase))
			return nil
		})
	bar.done()
	if err != nil {
		var ce matcher.Errors
		if errors.As(err, &ce) {
			return fmt.Errorf("the filter does not compile:\n%v", err)
		}
		if res.Source == nil || outErr != nil {
			return err
		}
		return fmt.Errorf("reading %s: %w", logName, err)
	}
	elapsed := time.Since(start)
	st.lines = int(res.Source.Lines.Load())
	st.ignored = int(res.Ignored) + st.helpers
	st.missed = st.lines - st.matched - st.ignored
	if o.json {
		return nil
	}
	printRegexSummary(stdout, f, source, logName, st, res.Dates, res.Source, elapsed, o.verbose)
	if o.allMatched {
		printLines(stdout, "Matched", st.matched, st.matchedLines, true)
	}
	if !o.noIgnored {
		printLines(stdout, "Ignored", st.ignored, st.ignoredLines, o.allIgnored)
	}
	if !o.noMissed {
		printLines(stdout, "Missed", st.missed, st.missedLines, o.allMissed)
	}
	return nil
}

// collectLines keeps the block's lines for the lists after the summary: matched ones when all are
// asked for, ignored and missed ones all when asked for, else up to listMax+1 (enough to know
// there are too many to list).
func (st *regexStats) collectLines(b *ingest.Block, found []matcher.Result, o regexOpts) {
	state := make([]byte, len(b.Lines)) // 0 missed, 1 matched, 2 ignored
	for _, d := range found {
		if int(d.Line) < len(state) {
			if d.Ignored || d.NoFail {
				state[d.Line] = 2
			} else {
				state[d.Line] = 1
			}
		}
	}
	keep := func(dst *[]string, all bool, i int) {
		if all || len(*dst) <= listMax {
			*dst = append(*dst, strings.TrimRight(string(b.Line(i)), " \t\r"))
		}
	}
	for i, s := range state {
		switch s {
		case 1:
			if o.allMatched {
				keep(&st.matchedLines, true, i)
			}
		case 2:
			if !o.noIgnored {
				keep(&st.ignoredLines, o.allIgnored, i)
			}
		default:
			if !o.noMissed {
				keep(&st.missedLines, o.allMissed, i)
			}
		}
	}
}

// printLines is fail2ban-regex's printLines: the list, or that there are too many to print.
func printLines(w io.Writer, kind string, n int, lines []string, all bool) {
	if n == 0 {
		return
	}
	header := kind + " line(s):"
	if n < listMax || all {
		fmt.Fprintf(w, "|- %s\n|  %s\n`-\n", header, strings.Join(lines, "\n|  "))
		return
	}
	fmt.Fprintf(w, "%s too many to print.  Use --print-all-%s to print all %d lines\n", header, strings.ToLower(kind), n)
}

// looksLikePath is LOG when it is meant as a file: no blanks, and a path separator or a name
// ending like a log (auth.log, syslog.1, access.log.gz).
func looksLikePath(s string) bool {
	if strings.ContainsAny(s, " \t") {
		return false
	}
	return strings.ContainsRune(s, '/') || logFileName.MatchString(s)
}

var logFileName = regexp.MustCompile(`\.(log|gz|zst|xz|bz2|[0-9]+)$`)

// lineNumbers maps each span of b to its 1-based line number within the block (skipped lines
// count too).
func lineNumbers(b *ingest.Block) []int {
	out := make([]int, len(b.Lines))
	line, pos := 1, 0
	for i, sp := range b.Lines {
		for pos < int(sp.Start) {
			if b.Buf[pos] == '\n' {
				line++
			}
			pos++
		}
		out[i] = line
	}
	return out
}

func failureJSON(d matcher.Result, line int) map[string]any {
	out := map[string]any{
		"line":     line,
		"id":       d.ID,
		"time":     float64(d.Time.UnixNano()) / 1e9,
		"regex":    d.Regex,
		"attempts": d.Attempts,
	}
	for k, v := range d.Fields {
		switch k {
		case "content", "mlfid", "nofail", "mlfgained", "mlfforget", "mlfpending":
			continue
		}
		if strings.HasPrefix(k, "_") {
			continue
		}
		out[strings.ToLower(k)] = v
	}
	if len(d.Users) > 0 {
		users := append([]string(nil), d.Users...)
		sort.Strings(users)
		out["users"] = users
	}
	return out
}

func printRegexSummary(w io.Writer, f *config.Filter, source, logName string, st regexStats, dates []matcher.DateHit, ss *ingest.SourceStats, elapsed time.Duration, verbose bool) {
	fmt.Fprintf(w, "\nRunning tests\n=============\n\n")
	if source != "" {
		fmt.Fprintf(w, "Use   failregex filter file : %s, basedir: %s\n", f.Name, filepath.Dir(filepath.Dir(source)))
	} else {
		fmt.Fprintf(w, "Use         failregex line : %s\n", f.FailRegex[0].Text)
	}
	fmt.Fprintf(w, "Use                log file : %s\n\n", logName)
	fmt.Fprintf(w, "Results\n=======\n\n")
	fmt.Fprintf(w, "Failregex: %d total\n", st.matched)
	fmt.Fprintf(w, "|-  #) [# of hits] regular expression\n")
	for i, r := range f.FailRegex {
		if st.regexHits[i] > 0 || verbose {
			fmt.Fprintf(w, "|  %2d) [%d] %s\n", i+1, st.regexHits[i], r.Text)
		}
	}
	fmt.Fprintf(w, "`-\n\nIgnoreregex: %d total\n\n", st.ignored)
	fmt.Fprintf(w, "Date template hits:\n|- [# of hits] date format\n")
	for _, d := range dates {
		fmt.Fprintf(w, "|  [%d] %s\n", d.Hits, d.Template)
	}
	fmt.Fprintf(w, "`-\n\n")
	skipped := ss.Overlong.Load() + ss.Binary.Load()
	fmt.Fprintf(w, "Lines: %d lines, %d ignored, %d matched, %d missed", st.lines, st.ignored, st.matched, st.missed)
	if skipped > 0 {
		fmt.Fprintf(w, " (%d over-long or binary lines skipped)", skipped)
	}
	rate := float64(st.lines) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "\n[processed in %.3f sec, %.0f lines/s]\n\n", elapsed.Seconds(), rate)
}
