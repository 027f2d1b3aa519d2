package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// reader reads typed options of one jail section, falling back to [DEFAULT], collecting errors.
type reader struct {
	ini    *INI
	sec    *Section
	lookup lookupFunc // the jail's options, then [DEFAULT]
	errs   Errors
}

func newReader(ini *INI, section string) *reader {
	sec := ini.Section(section)
	return &reader{ini: ini, sec: sec, lookup: ini.lookup(section, sec, ini.Section("DEFAULT"))}
}

func (r *reader) flush(errs *Errors) { *errs = append(*errs, r.errs...) }

// get returns the interpolated value of key, its position, and whether it is set.
func (r *reader) get(key string) (string, *Value, bool) {
	v, ok := r.lookup(key)
	if !ok {
		return "", nil, false
	}
	s, err := Interpolate(v, r.lookup)
	if err != nil {
		err.Key = key
		r.errs = append(r.errs, err)
		return "", v, false
	}
	return s, v, true
}

// given is get for keys whose blank value means "not set".
func (r *reader) given(key string) (string, *Value, bool) {
	s, v, ok := r.get(key)
	return s, v, ok && strings.TrimSpace(s) != ""
}

func (r *reader) str(key, def string) string {
	s, _, ok := r.get(key)
	if !ok {
		return def
	}
	return s
}

func (r *reader) bool(key string, def bool) bool {
	s, v, ok := r.get(key)
	if !ok {
		return def
	}
	b, err := ParseBool(s)
	if err != nil {
		r.errs.AddAt(v, key, err.Error())
		return def
	}
	return b
}

func (r *reader) int(key string, def, min int) int {
	s, v, ok := r.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < min {
		r.errs.AddAt(v, key, fmt.Sprintf("%q is not a whole number >= %d", s, min))
		return def
	}
	return n
}

func (r *reader) duration(key string, def time.Duration, allowForever bool) time.Duration {
	s, v, ok := r.get(key)
	if !ok {
		return def
	}
	return r.parseDuration(key, s, v, def, allowForever)
}

func (r *reader) parseDuration(key, s string, v *Value, def time.Duration, allowForever bool) time.Duration {
	d, err := ParseDuration(s)
	if err == nil && d == Forever && !allowForever {
		err = fmt.Errorf("%q: a negative time is only allowed for bantime", s)
	}
	if err == nil && d == 0 {
		err = fmt.Errorf("%q: must be longer than zero", s)
	}
	if err != nil {
		r.errs.AddAt(v, key, err.Error())
		return def
	}
	return d
}
