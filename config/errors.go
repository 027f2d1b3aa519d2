package config

import (
	"fmt"
	"strings"
)

// Error is one configuration problem, located by file, line and key.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errors collects every problem found in one load, so a user fixes them all in one go.
type Errors []*Error

// Add appends a problem.
func (es *Errors) Add(file string, line int, key, msg string) {
	*es = append(*es, &Error{File: file, Line: line, Key: key, Msg: msg})
}

// AddAt appends a problem about value v of key.
func (es *Errors) AddAt(v *Value, key, msg string) {
	if v == nil {
		es.Add("(default)", 0, key, msg)
		return
	}
	es.Add(v.File, v.Line, key, msg)
}

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Err returns nil when there are no problems.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
