package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MatcherTags are the tags the matcher expands; filter option substitution leaves them alone.
var MatcherTags = map[string]bool{
	"HOST": true, "ADDR": true, "IP4": true, "IP6": true, "CIDR": true, "SUBNET": true, "DNS": true,
	"SKIPLINES": true,
}

// ParseFilterSpec splits "sshd[mode=aggressive, port=22]" into its name and arguments. Values may be
// quoted with ' or " to hold commas.
func ParseFilterSpec(s string) (string, map[string]string, error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '[')
	if open < 0 {
		if s == "" {
			return "", nil, fmt.Errorf("empty filter name")
		}
		return s, nil, nil
	}
	if !strings.HasSuffix(s, "]") {
		return "", nil, fmt.Errorf("%q: filter arguments must end with ']'", s)
	}
	name := strings.TrimSpace(s[:open])
	body := s[open+1 : len(s)-1]
	args := make(map[string]string)
	for len(strings.TrimSpace(body)) > 0 {
		body = strings.TrimLeft(body, " \t,")
		eq := strings.IndexByte(body, '=')
		if eq <= 0 {
			return "", nil, fmt.Errorf("%q: expected key=value in filter arguments", s)
		}
		key := strings.ToLower(strings.TrimSpace(body[:eq]))
		body = strings.TrimLeft(body[eq+1:], " \t")
		var val string
		if len(body) > 0 && (body[0] == '"' || body[0] == '\'') {
			q := body[0]
			end := strings.IndexByte(body[1:], q)
			if end < 0 {
				return "", nil, fmt.Errorf("%q: unterminated quote in filter arguments", s)
			}
			val = body[1 : end+1]
			body = body[end+2:]
		} else {
			end := strings.IndexByte(body, ',')
			if end < 0 {
				end = len(body)
			}
			val = strings.TrimSpace(body[:end])
			body = body[end:]
		}
		args[key] = val
	}
	if name == "" {
		return "", nil, fmt.Errorf("%q: empty filter name", s)
	}
	return name, args, nil
}

var tagRE = regexp.MustCompile(`<([\w.\-/]+)>`)

// LoadFilter reads filter.d/NAME.conf and NAME.local (with their [INCLUDES]) and returns the filter
// with %(name)s interpolated and <option> tags substituted; args override [Init] values.
func LoadFilter(filterDir, name string, args map[string]string) (*Filter, Errors) {
	var errs Errors
	ini := NewINI()
	conf := filepath.Join(filterDir, name+".conf")
	ini.ReadFile(conf, false, &errs)
	ini.ReadFile(filepath.Join(filterDir, name+".local"), false, &errs)
	if len(ini.Files) == 0 {
		errs.Add(conf, 0, "", "no such filter")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// Conditional sections ([Init?family=inet6]) apply when the filter arguments say so.
	for _, sec := range ini.Sections() {
		base, cond, ok := strings.Cut(sec, "?")
		if !ok {
			continue
		}
		k, want, _ := strings.Cut(cond, "=")
		if got, ok := args[strings.ToLower(strings.TrimSpace(k))]; ok && got == strings.TrimSpace(want) {
			src := ini.Section(sec)
			for _, key := range src.Keys() {
				v, _ := src.Raw(key)
				ini.Set(base, key, v.Text, v.File, v.Line)
			}
		}
	}
	for k, v := range args {
		ini.Set("Init", k, v, conf, 0)
	}
	def, init, dflt := ini.Section("Definition"), ini.Section("Init"), ini.Section("DEFAULT")
	lookup := ini.lookup(name, init, def, dflt)
	// A filter option comes from [Init] (where the jail's filter arguments land), then
	// [Definition], then [DEFAULT], as in fail2ban's FilterReader.
	get := func(key string) (string, *Value) {
		// ConfigParser's defaults reach every section (common.conf sets datepattern there).
		s, v, err := option(key, lookup, init, def, dflt)
		if v == nil {
			return "", nil
		}
		if err != nil {
			errs = append(errs, err)
			return "", v
		}
		s, terr := substituteTags(s, lookup)
		if terr != nil {
			errs.AddAt(v, key, terr.Error())
			return "", v
		}
		if msg := undefinedVariant(s, def, dflt); msg != "" {
			errs.AddAt(v, key, msg)
			return "", v
		}
		return s, v
	}
	f := &Filter{Name: name, File: conf}
	if len(ini.Files) > 0 {
		f.File = ini.Files[len(ini.Files)-1]
		for _, p := range ini.Files {
			if filepath.Base(p) == name+".conf" {
				f.File = p
			}
		}
	}
	regexes := func(key string) []Regex {
		s, v := get(key)
		if v == nil {
			return nil
		}
		var out []Regex
		for i, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			out = append(out, Regex{Text: line, File: v.File, Line: v.LineOf(i)})
		}
		return out
	}
	f.FailRegex = regexes("failregex")
	if pr := regexes("prefregex"); len(pr) > 0 {
		f.PrefRegex = &pr[0]
		if len(pr) > 1 {
			errs.Add(pr[1].File, pr[1].Line, "prefregex", "prefregex takes one regex")
		}
	}
	f.IgnoreRegex = regexes("ignoreregex")
	f.DatePattern, _ = get("datepattern")
	jm, _ := get("journalmatch")
	f.JournalMatch = strings.Join(strings.Fields(jm), " ")
	f.DatePattern = strings.TrimSpace(f.DatePattern)
	if s, v := get("maxlines"); v != nil {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			errs.AddAt(v, "maxlines", fmt.Sprintf("%q is not a whole number >= 1", s))
		}
		f.MaxLines = n
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

// substituteTags replaces <name> with the option of that name, innermost first, so <mdre-<mode>> works.
// Matcher tags, F-* tags and names of Python named groups ((?P<name>...)) are left alone.
func substituteTags(s string, lookup lookupFunc) (string, error) {
	for depth := 0; depth < 20; depth++ {
		changed := false
		var firstErr error
		s = replaceTagsOnce(s, func(name string, prev string) (string, bool) {
			if MatcherTags[name] || strings.HasPrefix(name, "F-") || strings.HasSuffix(prev, "(?P") || strings.HasSuffix(prev, "(?") {
				return "", false
			}
			key := strings.ToLower(name)
			if sec, k, ok := strings.Cut(name, "/"); ok {
				key = sec + "/" + strings.ToLower(k) // section names keep their case
			}
			v, ok := lookup(key)
			if !ok {
				return "", false
			}
			out, err := Interpolate(v, lookup)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return "", false
			}
			changed = true
			return out, true
		})
		if firstErr != nil {
			return "", firstErr
		}
		if !changed {
			return s, nil
		}
	}
	return "", fmt.Errorf("tag substitution nested more than 20 deep (a loop?)")
}

// undefinedVariant explains a tag left in s whose name is PREFIX-VALUE when the filter defines other
// PREFIX- options: <mdre-<mode>> with a mode the filter does not have (filter = sshd[mode=agressive])
// would otherwise stay literal text and fail later as a regex with no address.
func undefinedVariant(s string, secs ...*Section) string {
	for _, m := range tagRE.FindAllStringSubmatch(s, -1) {
		prefix, value, ok := strings.Cut(m[1], "-")
		if !ok || MatcherTags[m[1]] || strings.HasPrefix(m[1], "F-") {
			continue
		}
		var have []string
		for _, sec := range secs {
			if sec == nil {
				continue // a filter without [DEFAULT]
			}
			for _, k := range sec.Keys() {
				if strings.HasPrefix(k, strings.ToLower(prefix)+"-") && !slices.Contains(have, k) {
					have = append(have, k)
				}
			}
		}
		if len(have) > 0 {
			return fmt.Sprintf("<%s> is not defined; the filter has %s (%q: a mode or argument it does not know?)", m[1], strings.Join(have, ", "), value)
		}
	}
	return ""
}

func replaceTagsOnce(s string, repl func(name, prev string) (string, bool)) string {
	locs := tagRE.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		name := s[l[2]:l[3]]
		out, ok := repl(name, s[:l[0]])
		if !ok {
			continue
		}
		b.WriteString(s[last:l[0]])
		b.WriteString(out)
		last = l[1]
	}
	b.WriteString(s[last:])
	return b.String()
}
