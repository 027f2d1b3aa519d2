package matcher

// fail2ban's date templates: a filter's datepattern (strptime codes in a regex, {^LN-BEG}, {UNB},
// {NONE}, EPOCH, LEPOCH, TAI64N, ISO8601) or, without one, fail2ban's default list, each tried first
// anchored at the line start and then anywhere on a word boundary. The first template that matches
// gives the time, and its text is cut out of the line before the failregexes see it. Templates run
// only for lines that a failregex candidate hit, and only after the allocation-free syslog/ISO fast
// path (parseDate) found nothing at the line start.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2"
)

var defaultDatePatterns = []string{
	`%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`,
	`(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	`(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?`,
	`%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S`,
	`%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?`,
	`%m/%d/%ExY:%H:%M:%S`,
	`%m-%d-%ExY %k:%M:%S(?:\.%f)?`,
	`EPOCH`,
	`{^LN-BEG}%H:%M:%S`,
	`^<%m/%d/%Exy@%H:%M:%S>`,
	`%Exy%Exm%Exd  ?%H:%M:%S`,
	`%b %d, %ExY %I:%M:%S %p`,
	`^%b-%d-%Exy %k:%M:%S`,
	`%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?`,
	`(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	`(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	`TAI64N`,
}

const (
	reMonths   = `(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)`
	reWeekdays = `(?:mon(?:day)?|tue(?:sday)?|wed(?:nesday)?|thu(?:rsday)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)`
)

// strptimeCodes maps fail2ban's strptime directives (with its %Ex "exact" forms) to regexes.
var strptimeCodes = map[string]string{
	"a": `(?P<a>` + reWeekdays + `)`, "A": `(?P<a>` + reWeekdays + `)`,
	"b": `(?P<b>` + reMonths + `)`, "B": `(?P<b>` + reMonths + `)`, "h": `(?P<b>` + reMonths + `)`,
	"d": `(?P<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])`, "Exd": `(?P<d>3[01]|[12]\d|0[1-9])`,
	"e": `(?P<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])`,
	"H": `(?P<H>2[0-3]|[01]\d|\d)`, "ExH": `(?P<H>2[0-3]|[01]\d)`,
	"k": `(?P<H>2[0-3]|[01]\d|\s?\d)`,
	"I": `(?P<I>1[0-2]|0[1-9]|[1-9])`, "l": `(?P<I>1[0-2]|0[1-9]|\s?[1-9])`,
	"M": `(?P<M>[0-5]\d|\d)`, "ExM": `(?P<M>[0-5]\d)`,
	"S": `(?P<S>6[01]|[0-5]\d|\d)`, "ExS": `(?P<S>6[01]|[0-5]\d)`,
	"f": `(?P<f>\d{1,6})`,
	"m": `(?P<m>1[0-2]|0[1-9]|[1-9])`, "Exm": `(?P<m>1[0-2]|0[1-9])`,
	"p": `(?P<p>am|pm)`,
	"Y": `(?P<Y>\d{4})`, "ExY": `(?P<Y>(?:19|20)\d{2})`,
	"y": `(?P<y>\d{2})`, "Exy": `(?P<y>\d{2})`,
	"z": `(?P<z>Z|UTC|GMT|[+-][01]\d(?::?[0-5]\d)?)`,
	"Z": `(?P<Z>[A-Z]{3,5})`,
	"j": `(?P<j>36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])`,
	"s": `(?P<s>\d{1,11})`,
	"%": `%`,
}

var codeRE = regexp.MustCompile(`%(Ex[a-zA-Z]|[a-zA-Z%])`)

type dateKind uint8

const (
	datePattern dateKind = iota
	dateEpoch
	dateLEpoch
	dateTAI64N
)

type dateTemplate struct {
	hits atomic.Uint64
	name string
	kind dateKind
	re   *regexp2.Regexp
	// grouped: the pattern has its own capturing group; only that group is the date text (the
	// rest, like "^[^\[]*\[" before it, stays in the line).
	grouped bool
}

var unnamedGroupRE = regexp.MustCompile(`(?:^|[^\\])\((?:[^?]|$)`)

// dateDetector finds a line's date with a list of templates.
type dateDetector struct {
	fastHits  atomic.Uint64
	templates []*dateTemplate
	// last is the template that found the previous date: tried first, as fail2ban's detector
	// moves its most used templates to the front. A log keeps one layout, so a line costs one
	// template instead of a walk through all of them (the Apache stamp is the 20th default).
	last atomic.Int32
	none bool // {NONE}: lines carry no date; the time is now
	fast bool // the syslog/ISO fast path may answer first (default templates)
	// lazy compiles the default templates, once, when a line first needs more than the fast
	// path: most logs never do, and compiling them took a fifth of the matcher's set-up for
	// fail2ban's sshd.conf (1.8 of 8.3 ms).
	lazy     func() error
	lazyOnce sync.Once
	compiled atomic.Bool // the lazy templates exist (set once lazyOnce has run)
}

// all returns the templates, compiling the deferred defaults first if need be.
func (d *dateDetector) all() []*dateTemplate {
	if d.lazy != nil {
		d.lazyOnce.Do(func() {
			if err := d.lazy(); err != nil {
				panic(fmt.Sprintf("fail2ban's default date templates do not compile: %v", err))
			}
			d.compiled.Store(true)
		})
	}
	return d.templates
}

// newDateDetector builds the detector of a datepattern ("" for fail2ban's defaults).
func newDateDetector(pattern string) (*dateDetector, error) {
	d := &dateDetector{}
	var lines []string
	for _, l := range strings.Split(pattern, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		lines = []string{""}
	}
	if len(lines) == 1 && (lines[0] == "" || lines[0] == "{^LN-BEG}") {
		onlyStart := lines[0] != ""
		d.fast, d.lazy = true, func() error { return d.addDefaults(onlyStart) }
		return d, nil
	}
	for _, p := range lines {
		switch {
		case p == "":
			d.fast = true
			if err := d.addDefaults(false); err != nil {
				return nil, err
			}
		case p == "{^LN-BEG}":
			d.fast = true
			if err := d.addDefaults(true); err != nil {
				return nil, err
			}
		case strings.EqualFold(p, "{NONE}"):
			d.none = true
		case strings.Contains(p, "{DATE}"):
			// {DATE} stands for each of the default templates in turn.
			for _, dp := range defaultDatePatterns {
				dp = strings.TrimPrefix(strings.TrimPrefix(dp, "{^LN-BEG}"), "^")
				switch dp {
				case "EPOCH":
					dp = `(?P<s>\d{10,11})(?:\.(?P<f>\d{1,6}))?`
				case "TAI64N":
					continue
				}
				t, err := compileDateTemplate(strings.ReplaceAll(p, "{DATE}", dp), false)
				if err != nil {
					return nil, fmt.Errorf("datepattern %q: %w", p, err)
				}
				d.templates = append(d.templates, t)
			}
		default:
			t, err := compileDateTemplate(p, false)
			if err != nil {
				return nil, fmt.Errorf("datepattern %q: %w", p, err)
			}
			d.templates = append(d.templates, t)
		}
	}
	return d, nil
}

// addDefaults adds fail2ban's default templates: first each anchored at the line start (fail2ban
// prefers those), then, unless onlyStart, each anywhere in the line.
func (d *dateDetector) addDefaults(onlyStart bool) error {
	var anchored, anywhere []*dateTemplate
	for _, p := range defaultDatePatterns {
		start := p
		if !strings.HasPrefix(p, "^") && !strings.HasPrefix(p, "{^LN-BEG}") {
			start = "{^LN-BEG}" + p
		}
		t, err := compileDateTemplate(start, true)
		if err != nil {
			return err
		}
		anchored = append(anchored, t)
		if !onlyStart && start != p {
			t, err := compileDateTemplate(p, true)
			if err != nil {
				return err
			}
			anywhere = append(anywhere, t)
		}
	}
	d.templates = append(d.templates, anchored...)
	d.templates = append(d.templates, anywhere...)
	return nil
}

// compileDateTemplate turns one fail2ban date pattern into a template, adding fail2ban's word
// boundaries unless {UNB} or ** say otherwise.
func compileDateTemplate(p string, builtin bool) (*dateTemplate, error) {
	t := &dateTemplate{name: p}
	lineBeg := false
	if rest, ok := strings.CutPrefix(p, "{^LN-BEG}"); ok {
		p, lineBeg = rest, true
	}
	unbound := false
	if rest, ok := strings.CutPrefix(p, "{UNB}"); ok {
		p, unbound = rest, true
	}
	switch strings.ToUpper(p) {
	case "EPOCH":
		t.kind, p = dateEpoch, `(?P<s>\d{10,11})(?:\.(?P<f>\d{1,6}))?`
	case "LEPOCH":
		t.kind, p = dateLEpoch, `(?P<s>\d{13,14})(?:\.(?P<f>\d{1,6}))?`
	case "TAI64N":
		t.kind, p = dateTAI64N, `@(?P<tai>[0-9a-fA-F]{24})`
	case "ISO8601":
		p = `%Y-%m-%d[T ]%H:%M:%S(?:\.%f)?(?:\s*%z)?`
	}
	t.grouped = unnamedGroupRE.MatchString(p)
	if t.kind == datePattern {
		var bad string
		p = codeRE.ReplaceAllStringFunc(p, func(code string) string {
			if r, ok := strptimeCodes[code[1:]]; ok {
				return r
			}
			if bad == "" {
				bad = code
			}
			return code
		})
		if bad != "" {
			return nil, fmt.Errorf("unknown date directive %s", bad)
		}
	}
	noBegin := strings.HasPrefix(p, "**")
	noEnd := strings.HasSuffix(p, "**")
	p = strings.TrimSuffix(strings.TrimPrefix(p, "**"), "**")
	// As fail2ban: the date proper is group 1; a pattern without a group of its own is wrapped
	// (keeping a leading ^ and a trailing $ outside), so boundaries and the {^LN-BEG} prefix are
	// never part of the text cut from the line.
	if !t.grouped {
		head, tail := "", ""
		if strings.HasPrefix(p, "^") {
			head, p = "^", p[1:]
		}
		if strings.HasSuffix(p, "$") && !strings.HasSuffix(p, `\$`) {
			tail, p = "$", p[:len(p)-1]
		}
		p = head + "(" + p + ")" + tail
		t.grouped = true
	}
	switch {
	case lineBeg:
		p = `^(?:\W{0,2})?` + p
	case !unbound && !noBegin && !strings.HasPrefix(p, "^"):
		p = `(?=^|\b|\W)` + p
	}
	if !unbound && !noEnd && !strings.HasSuffix(p, "$") {
		p += `(?=\b|\W|$)`
	}
	// Month and weekday names are matched without regard to case, as in fail2ban.
	re, err := regexp2.Compile("(?i)"+toRegexp2(p), regexp2.RE2)
	if err != nil {
		return nil, err
	}
	re.MatchTimeout = regexp2Timeout
	t.re = re
	return t, nil
}

// find returns the first template's date in line: the time, where its text starts and ends, and
// whether the syslog/ISO fast path read it (what the worker's stamp cache may keep).
func (d *dateDetector) find(line []byte, now time.Time, loc *time.Location) (time.Time, int, int, bool, bool) {
	if d.none {
		return now, 0, 0, true, false
	}
	if d.fast {
		if t, end, ok := parseDate(line, now, loc); ok {
			d.fastHits.Add(1)
			start := 0
			for start < end && (line[start] == ' ' || line[start] == '\t') {
				start++
			}
			return t, start, end, true, true
		}
		if t, start, end, ok := parseCLF(line, loc); ok {
			d.fastHits.Add(1)
			return t, start, end, true, false
		}
	}
	templates := d.all()
	if len(templates) == 0 {
		return time.Time{}, 0, 0, false, false
	}
	s := string(line)
	first := int(d.last.Load())
	for k := -1; k < len(templates); k++ {
		i := k
		if k < 0 {
			i = first
		} else if k == first {
			continue // tried first
		}
		if i >= len(templates) {
			continue
		}
		t := templates[i]
		m, err := find2(t.re, s)
		if err != nil || m == nil {
			continue
		}
		idx, text := m.Index, m.String()
		if g := m.GroupByNumber(1); t.grouped && g != nil && len(g.Captures) > 0 {
			idx, text = g.Index, g.String()
		}
		start := runeToByte(s, idx)
		end := start + len(text)
		if text == "" {
			// A template that matches an empty date ("^WARNING:()**") says: this line has no
			// date of its own; the caller takes the last one.
			t.hits.Add(1)
			return time.Time{}, start, end, true, false
		}
		ts, ok := t.time(m, now, loc)
		if !ok {
			continue
		}
		t.hits.Add(1)
		if i != first {
			d.last.Store(int32(i))
		}
		return ts, start, end, true, false
	}
	return time.Time{}, 0, 0, false, false
}

func group(m *regexp2.Match, name string) string {
	g := m.GroupByName(name)
	if g == nil || len(g.Captures) == 0 {
		return ""
	}
	return g.String()
}

func (t *dateTemplate) time(m *regexp2.Match, now time.Time, loc *time.Location) (time.Time, bool) {
	switch t.kind {
	case dateEpoch, dateLEpoch:
		sec, err := strconv.ParseInt(group(m, "s"), 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		if t.kind == dateLEpoch {
			return time.UnixMilli(sec).In(loc), true
		}
		return time.Unix(sec, 0).In(loc), true
	case dateTAI64N:
		hex := group(m, "tai")
		secs, err := strconv.ParseUint(hex[:16], 16, 64)
		if err != nil {
			return time.Time{}, false
		}
		// TAI64 labels count seconds from 2^62; like fail2ban (and daemontools' tai64nlocal
		// before leap tables), the label is taken as Unix time.
		return time.Unix(int64(secs-(1<<62)), 0).In(loc), true
	}
	num := func(name string, def int) int {
		s := strings.TrimSpace(group(m, name))
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return def
		}
		return n
	}
	nowIn := now.In(loc)
	year := num("Y", -1)
	if year < 0 {
		if y := num("y", -1); y >= 0 {
			// POSIX strptime's rule for two-digit years.
			year = 2000 + y
			if y >= 69 {
				year = 1900 + y
			}
		}
	}
	month := num("m", 0)
	if b := strings.ToLower(group(m, "b")); len(b) >= 3 {
		for i, mn := range monthNames {
			if b[:3] == mn {
				month = i + 1
			}
		}
	}
	day := num("d", 0)
	hour := num("H", 0)
	if i := num("I", -1); i >= 0 {
		hour = i % 12
		if strings.EqualFold(group(m, "p"), "pm") {
			hour += 12
		}
	}
	minute, sec := num("M", 0), num("S", 0)
	zone := loc
	if z := group(m, "z"); z != "" {
		zone = parseZoneOffset(z, loc)
	} else if off, ok := zoneNames[strings.ToUpper(group(m, "Z"))]; ok {
		zone = fixedZone(off * 3600)
	}
	if j := num("j", -1); j > 0 && month == 0 {
		if year < 0 {
			year = nowIn.Year()
		}
		d := wallTime(year, 1, 1, hour, minute, sec, 0, zone).AddDate(0, 0, j-1)
		return d, true
	}
	if month == 0 && day == 0 {
		// Time only: today, or yesterday when that would be in the future (as fail2ban).
		y, mo, dd := nowIn.Date()
		ts := wallTime(y, mo, dd, hour, minute, sec, 0, zone)
		if ts.After(now) {
			ts = ts.AddDate(0, 0, -1)
		}
		return ts, true
	}
	if month == 0 || day == 0 {
		return time.Time{}, false
	}
	if year < 0 {
		// fail2ban's rule: this year, or the previous one if that would be more than a day ahead.
		ts := wallTime(nowIn.Year(), time.Month(month), day, hour, minute, sec, 0, zone)
		if ts.Sub(now) > 24*time.Hour {
			ts = wallTime(nowIn.Year()-1, time.Month(month), day, hour, minute, sec, 0, zone)
		}
		return ts, true
	}
	return wallTime(year, time.Month(month), day, hour, minute, sec, 0, zone), true
}

func parseZoneOffset(z string, loc *time.Location) *time.Location {
	switch strings.ToUpper(z) {
	case "Z", "UTC", "GMT":
		return time.UTC
	}
	sign := 1
	if z[0] == '-' {
		sign = -1
	}
	d := strings.ReplaceAll(z[1:], ":", "")
	h, err := strconv.Atoi(d[:2])
	if err != nil {
		return loc
	}
	mi := 0
	if len(d) >= 4 {
		mi, _ = strconv.Atoi(d[2:4])
	}
	return fixedZone(sign * (h*60 + mi) * 60)
}

// zoneNames are the zone abbreviations fail2ban's %Z understands, as hours east of UTC.
var zoneNames = map[string]int{
	"UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2,
	"EET": 2, "EEST": 3, "MSK": 3, "IST": 5, "JST": 9, "KST": 9, "AEST": 10, "AEDT": 11,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
	"AKST": -9, "AKDT": -8, "HST": -10,
}

// DateHit is how often one date template found a line's date.
type DateHit struct {
	Template string
	Hits     uint64
}

// DateHits lists the templates of a jail that found dates, for `portcullis regex`.
func (m *Matcher) DateHits(jail int) []DateHit {
	d := m.jails[jail].dates
	var out []DateHit
	if n := d.fastHits.Load(); n > 0 {
		out = append(out, DateHit{Template: "{^LN-BEG} syslog / ISO 8601 (fast path)", Hits: n})
	}
	if d.lazy != nil && !d.compiled.Load() {
		return out // no line needed a template: none was compiled, none found a date
	}
	for _, t := range d.templates {
		if n := t.hits.Load(); n > 0 {
			out = append(out, DateHit{Template: t.name, Hits: n})
		}
	}
	return out
}
