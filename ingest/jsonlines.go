package ingest

import (
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// JSONFormat turns JSON log lines (Caddy, Traefik, nginx escape=json, Vector or Fluent Bit
// output) into the text lines filters read: "<RFC 3339 time> <address or -> <message>". The time
// and the address come from named fields (dotted paths such as "request.remote_ip"), so a filter
// can take the address from a fixed place with "^\S+ <HOST> "; the message is the named field, or
// the whole JSON object when none is named (a string inside JSON cannot contain an unescaped quote,
// so a regex on "status":401 cannot be fooled by a request's text). Lines that are not valid JSON
// are counted (Malformed) and skipped.
type JSONFormat struct {
	Time    string // field with the event time: RFC 3339 text or unix seconds; empty: arrival time
	Host    string // field with the client address; empty: "-"
	Message string // field with the message text; empty: the whole object
	Now     func() time.Time
	Loc     *time.Location

	p                           fastjson.Parser
	paths                       bool // the three below are split
	timePath, hostPath, msgPath []string
}

func path(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// Apply rewrites every line of in into out (out's buffers are reused) and counts bad lines in st.
func (f *JSONFormat) Apply(in, out *Block, st *SourceStats) {
	out.Buf, out.Lines, out.Source = out.Buf[:0], out.Lines[:0], in.Source
	if !f.paths { // split once, not per line
		f.timePath, f.hostPath, f.msgPath, f.paths = path(f.Time), path(f.Host), path(f.Message), true
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	loc := f.Loc
	if loc == nil {
		loc = time.Local
	}
	for i := range in.Lines {
		line := in.Line(i)
		v, err := f.p.ParseBytes(line)
		if err != nil || v.Type() != fastjson.TypeObject {
			if st != nil {
				st.Malformed.Add(1)
			}
			continue
		}
		t := now()
		if tv := v.Get(f.timePath...); f.Time != "" && tv != nil {
			switch tv.Type() {
			case fastjson.TypeNumber:
				sec := tv.GetFloat64()
				if sec > 1e12 { // milliseconds
					sec /= 1000
				}
				t = time.Unix(int64(sec), int64((sec-float64(int64(sec)))*1e9))
			case fastjson.TypeString:
				s := string(tv.GetStringBytes())
				if pt, err := time.Parse(time.RFC3339Nano, s); err == nil {
					t = pt
				} else if pt, err := time.Parse("02/Jan/2006:15:04:05 -0700", s); err == nil {
					t = pt
				} else if sec, err := strconv.ParseFloat(s, 64); err == nil {
					t = time.Unix(int64(sec), 0)
				}
			}
		}
		start := len(out.Buf)
		out.Buf = t.In(loc).AppendFormat(out.Buf, "2006-01-02T15:04:05.000000Z07:00")
		out.Buf = append(out.Buf, ' ')
		host := []byte("-")
		if f.Host != "" {
			if hv := v.Get(f.hostPath...); hv != nil && hv.Type() == fastjson.TypeString {
				if h := hv.GetStringBytes(); len(h) > 0 && !containsSpace(h) {
					host = h
				}
			}
		}
		out.Buf = appendClean(out.Buf, host)
		out.Buf = append(out.Buf, ' ')
		msg := line
		if f.Message != "" {
			if mv := v.Get(f.msgPath...); mv != nil && mv.Type() == fastjson.TypeString {
				msg = mv.GetStringBytes()
			} else {
				msg = nil
			}
		}
		out.Buf = appendClean(out.Buf, msg)
		out.Lines = append(out.Lines, Span{Start: uint32(start), End: uint32(len(out.Buf))})
		out.Buf = append(out.Buf, '\n')
	}
}

// apply rewrites a block's lines into a new block and returns it, returning in to the pool; with
// no format (nil) or no lines it returns in as it is.
func (f *JSONFormat) apply(in *Block, st *SourceStats) *Block {
	if f == nil || len(in.Lines) == 0 {
		return in
	}
	out := GetBlock()
	f.Apply(in, out, st)
	PutBlock(in)
	return out
}

func containsSpace(b []byte) bool {
	for _, c := range b {
		if c == ' ' || c == '\t' {
			return true
		}
	}
	return false
}
