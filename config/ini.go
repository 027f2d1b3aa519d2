package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Value is one option's raw text and where it was last set.
type Value struct {
	Text string
	File string
	Line int
	// Lines holds the line number of each line of a multi-line value (Lines[0] == Line).
	Lines []int
}

// LineOf returns the file line of the i-th line of a multi-line value.
func (v *Value) LineOf(i int) int {
	if i < len(v.Lines) {
		return v.Lines[i]
	}
	return v.Line
}

// Section is an ordered set of options.
type Section struct {
	Name string
	keys map[string]*Value
	// order keeps the first-seen order of keys, for stable output and errors.
	order []string
}

func newSection(name string) *Section {
	return &Section{Name: name, keys: make(map[string]*Value)}
}

// Raw returns the uninterpolated value of key and whether it is set.
func (s *Section) Raw(key string) (*Value, bool) {
	if s == nil {
		return nil, false
	}
	v, ok := s.keys[key]
	return v, ok
}

// Keys returns the option names in the order they were first set.
func (s *Section) Keys() []string { return s.order }

func (s *Section) set(key string, v *Value) {
	if _, ok := s.keys[key]; !ok {
		s.order = append(s.order, key)
	}
	s.keys[key] = v
}

// INI is a fail2ban-style configuration: Python ConfigParser syntax, several files overlaid in order.
// Interpolation (%(name)s) is lazy, as in Python: only options that are read are expanded, so the
// many keys a stock /etc/fail2ban sets for features we do not read never produce errors.
type INI struct {
	sections map[string]*Section
	order    []string
	// Files lists every file read, in order.
	Files []string
}

// NewINI returns an empty configuration.
func NewINI() *INI { return &INI{sections: make(map[string]*Section)} }

// Section returns the named section or nil.
func (c *INI) Section(name string) *Section { return c.sections[name] }

// Sections returns section names in first-seen order.
func (c *INI) Sections() []string { return c.order }

func (c *INI) section(name string) *Section {
	s, ok := c.sections[name]
	if !ok {
		s = newSection(name)
		c.sections[name] = s
		c.order = append(c.order, name)
	}
	return s
}

// Set sets key in section to text, as if a file had done so (used for filter arguments).
func (c *INI) Set(section, key, text, file string, line int) {
	c.section(section).set(strings.ToLower(key), &Value{Text: text, File: file, Line: line})
}

// ReadFile overlays one file, first reading the files its [INCLUDES] before= names and afterwards the
// ones after= names. Paths in INCLUDES are relative to the including file's folder. Syntax errors are
// appended to errs; an unreadable file is an error only when required is true.
func (c *INI) ReadFile(path string, required bool, errs *Errors) {
	c.readFile(path, required, errs, 0)
}

func (c *INI) readFile(path string, required bool, errs *Errors, depth int) {
	if depth > 10 {
		errs.Add(path, 0, "", "includes nested more than 10 deep")
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if required || !os.IsNotExist(err) {
			errs.Add(path, 0, "", fmt.Sprintf("cannot read: %v", err))
		}
		return
	}
	parsed := NewINI()
	parsed.parse(path, data, errs)
	var before, after []string
	if inc := parsed.Section("INCLUDES"); inc != nil {
		dir := filepath.Dir(path)
		for _, k := range []string{"before", "after"} {
			v, ok := inc.Raw(k)
			if !ok {
				continue
			}
			for _, f := range strings.Fields(v.Text) {
				if !filepath.IsAbs(f) {
					f = filepath.Join(dir, f)
				}
				if k == "before" {
					before = append(before, f)
				} else {
					after = append(after, f)
				}
			}
		}
	}
	for _, f := range before {
		c.readFile(f, false, errs, depth+1)
		// fail2ban reads the matching .local of an included file too.
		c.readFile(strings.TrimSuffix(f, ".conf")+".local", false, errs, depth+1)
	}
	c.Files = append(c.Files, path)
	c.overlay(parsed)
	for _, f := range after {
		c.readFile(f, false, errs, depth+1)
		c.readFile(strings.TrimSuffix(f, ".conf")+".local", false, errs, depth+1)
	}
}

// overlay copies every option of o over c. %(known/key)s in a new value refers to the value the key had
// before this file, as in fail2ban.
func (c *INI) overlay(o *INI) {
	for _, name := range o.order {
		if name == "INCLUDES" {
			continue
		}
		src := o.sections[name]
		dst := c.section(name)
		for _, k := range src.order {
			v := *src.keys[k]
			if strings.Contains(v.Text, "%(known/") {
				v.Text = replaceKnown(v.Text, func(key string) (string, bool) {
					if old, ok := dst.keys[key]; ok {
						return old.Text, true
					}
					if def := c.sections["DEFAULT"]; def != nil && name != "DEFAULT" {
						if old, ok := def.keys[key]; ok {
							return old.Text, true
						}
					}
					return "", false
				})
			}
			dst.set(k, &v)
		}
	}
}

func replaceKnown(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "%(known/")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], ")s")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		key := strings.ToLower(s[i+len("%(known/") : i+j])
		b.WriteString(s[:i])
		if v, ok := lookup(key); ok {
			b.WriteString(v)
		}
		s = s[i+j+2:]
	}
}

// parse reads ConfigParser syntax: [section], key = value or key: value, continuation lines indented,
// '#' and ';' full-line comments, ' ;' inline comments (as fail2ban configures Python's parser).
func (c *INI) parse(path string, data []byte, errs *Errors) {
	var cur *Section
	var last *Value
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			if last == nil {
				errs.Add(path, lineNo, "", "continuation line without an option before it")
				continue
			}
			trimmed = stripInlineComment(trimmed)
			if trimmed == "" {
				continue
			}
			if last.Text == "" {
				last.Text = trimmed
				last.Lines[0] = lineNo
			} else {
				last.Text += "\n" + trimmed
				last.Lines = append(last.Lines, lineNo)
			}
			continue
		}
		last = nil
		if trimmed[0] == '[' {
			end := strings.IndexByte(trimmed, ']')
			if end < 0 {
				errs.Add(path, lineNo, "", fmt.Sprintf("section header %q has no closing ']'", trimmed))
				cur = nil
				continue
			}
			name := strings.TrimSpace(trimmed[1:end])
			if name == "" {
				errs.Add(path, lineNo, "", "empty section name")
				cur = nil
				continue
			}
			cur = c.section(name)
			continue
		}
		sep := strings.IndexAny(trimmed, "=:")
		if sep <= 0 {
			errs.Add(path, lineNo, "", fmt.Sprintf("expected 'key = value', got %q", trimmed))
			continue
		}
		key := strings.ToLower(strings.TrimSpace(trimmed[:sep]))
		if cur == nil {
			errs.Add(path, lineNo, key, "option outside of any [section]")
			continue
		}
		val := stripInlineComment(strings.TrimSpace(trimmed[sep+1:]))
		last = &Value{Text: val, File: path, Line: lineNo, Lines: []int{lineNo}}
		cur.set(key, last)
	}
	if err := sc.Err(); err != nil {
		errs.Add(path, lineNo, "", fmt.Sprintf("cannot read: %v", err))
	}
}

func stripInlineComment(s string) string {
	for i := 1; i < len(s); i++ {
		if s[i] == ';' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// lookupFunc resolves an interpolation name to its raw value.
type lookupFunc func(name string) (*Value, bool)

// lookup resolves interpolation names for a section called name whose options are looked up in
// chain, in order (the section itself, then [Init], [DEFAULT] ...). As in fail2ban:
// %(__name__)s is the section's name; %(default/x)s is [DEFAULT]'s x even where the section
// overrides it (a %(known/x)s no earlier file defined falls back the same way); %(other/x)s is x of
// section other, interpolated in that section first so its own references find their neighbours.
func (c *INI) lookup(name string, chain ...*Section) lookupFunc {
	dflt := c.Section("DEFAULT")
	var look lookupFunc
	look = func(key string) (*Value, bool) {
		if key == "__name__" {
			return &Value{Text: name}, true
		}
		if sec, k, ok := strings.Cut(key, "/"); ok {
			switch sec {
			case "default", "known":
				return dflt.Raw(k)
			}
			other := c.Section(sec)
			v, ok := other.Raw(k)
			if !ok {
				return dflt.Raw(k)
			}
			inSection := func(key string) (*Value, bool) {
				if v, ok := other.Raw(key); ok {
					return v, true
				}
				return look(key)
			}
			text, err := Interpolate(v, inSection)
			if err != nil {
				return v, true
			}
			return &Value{Text: strings.ReplaceAll(text, "%", "%%"), File: v.File, Line: v.Line, Lines: v.Lines}, true
		}
		for _, s := range chain {
			if v, ok := s.Raw(key); ok {
				return v, true
			}
		}
		return nil, false
	}
	return look
}

// Interpolate expands %(name)s references in v using lookup, recursively, and %% to %.
// option finds key in the first of secs that has it and interpolates it with lookup: the value,
// where it was written (nil when no section has it), and an interpolation error naming key.
func option(key string, lookup lookupFunc, secs ...*Section) (string, *Value, *Error) {
	for _, sec := range secs {
		v, ok := sec.Raw(key)
		if !ok {
			continue
		}
		s, err := Interpolate(v, lookup)
		if err != nil {
			err.Key = key
		}
		return s, v, err
	}
	return "", nil, nil
}

func Interpolate(v *Value, lookup lookupFunc) (string, *Error) {
	return interpolate(v.Text, v, lookup, 0)
}

func interpolate(s string, at *Value, lookup lookupFunc, depth int) (string, *Error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	if depth > 20 {
		return "", &Error{File: at.File, Line: at.Line, Msg: "interpolation nested too deep (a reference loop?)"}
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '(' {
			end := strings.Index(s[i:], ")s")
			if end < 0 {
				return "", &Error{File: at.File, Line: at.Line, Msg: fmt.Sprintf("unterminated %%( reference in %q", s)}
			}
			name := strings.ToLower(s[i+2 : i+end])
			if sec, k, ok := strings.Cut(s[i+2:i+end], "/"); ok {
				name = sec + "/" + strings.ToLower(k) // %(Section/key)s: section names keep their case
			}
			ref, ok := lookup(name)
			if !ok {
				return "", &Error{File: at.File, Line: at.Line, Msg: fmt.Sprintf("%%(%s)s refers to an option that is not set", name)}
			}
			sub, err := interpolate(ref.Text, ref, lookup, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(sub)
			i += end + 1
			continue
		}
		// A lone % is kept as it is: regexes and date patterns use it.
		b.WriteByte('%')
	}
	return b.String(), nil
}

// readLayered reads base.conf, base.d/*.conf, base.local, then base.d/*.local, each group in
// alphabetical order: fail2ban's order (jail.conf(5)).
func (c *INI) readLayered(dir, base string, required bool, errs *Errors) {
	c.ReadFile(filepath.Join(dir, base+".conf"), required, errs)
	confs, _ := filepath.Glob(filepath.Join(dir, base+".d", "*.conf"))
	sort.Strings(confs)
	for _, f := range confs {
		c.ReadFile(f, true, errs)
	}
	c.ReadFile(filepath.Join(dir, base+".local"), false, errs)
	locals, _ := filepath.Glob(filepath.Join(dir, base+".d", "*.local"))
	sort.Strings(locals)
	for _, f := range locals {
		c.ReadFile(f, true, errs)
	}
}
