package ingest

import (
	"strings"
	"testing"
	"time"
)

func TestJSONFormat(t *testing.T) {
	f := &JSONFormat{Time: "ts", Host: "request.remote_ip", Loc: time.UTC, Now: func() time.Time { return time.Unix(1700000000, 0) }}
	in := block(
		`{"level":"info","ts":1732442400.5,"msg":"handled request","request":{"remote_ip":"203.0.113.9","uri":"/wp-login.php?\"status\":200"},"status":401}`,
		`not json`,
		`{"ts":"2026-11-24T10:00:00Z","request":{"remote_ip":"6.6.6.6 evil"},"status":200}`,
		`{"msg":"multi\nline"}`,
		`[1,2,3]`,
	)
	out := GetBlock()
	st := &SourceStats{}
	f.Apply(in, out, st)
	var got []string
	for i := range out.Lines {
		got = append(got, string(out.Line(i)))
	}
	want := []string{
		`2024-11-24T10:00:00.500000Z 203.0.113.9 {"level":"info","ts":1732442400.5,"msg":"handled request","request":{"remote_ip":"203.0.113.9","uri":"/wp-login.php?\"status\":200"},"status":401}`,
		`2026-11-24T10:00:00.000000Z - {"ts":"2026-11-24T10:00:00Z","request":{"remote_ip":"6.6.6.6 evil"},"status":200}`,
		`2023-11-14T22:13:20.000000Z - {"msg":"multi\nline"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st.Malformed.Load() != 2 {
		t.Fatalf("malformed %d, want 2 (text and a JSON array)", st.Malformed.Load())
	}
	// With a message field, only its text is matched.
	f2 := &JSONFormat{Message: "msg", Loc: time.UTC, Now: func() time.Time { return time.Unix(0, 0) }}
	out2 := GetBlock()
	f2.Apply(block(`{"msg":"login failed for bob from 203.0.113.5"}`), out2, nil)
	if got := string(out2.Line(0)); got != "1970-01-01T00:00:00.000000Z - login failed for bob from 203.0.113.5" {
		t.Fatalf("message field: %q", got)
	}
}

// block builds a block of whole lines.
func block(lines ...string) *Block {
	b := GetBlock()
	for _, l := range lines {
		start := len(b.Buf)
		b.Buf = append(b.Buf, l...)
		b.Lines = append(b.Lines, Span{Start: uint32(start), End: uint32(len(b.Buf))})
		b.Buf = append(b.Buf, '\n')
	}
	return b
}

// FuzzJSONFormat: any line gives at most one output line, never a newline inside it.
func FuzzJSONFormat(f *testing.F) {
	for _, s := range []string{`{"ts":1,"request":{"remote_ip":"1.2.3.4"}}`, `{"ts":"x"}`, `[]`, `{"a":"\n"}`, `{"request":{"remote_ip":"a\u000ab"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") {
			return
		}
		jf := &JSONFormat{Time: "ts", Host: "request.remote_ip", Message: "", Loc: time.UTC}
		in := block(line)
		out := GetBlock()
		jf.Apply(in, out, nil)
		if len(out.Lines) > 1 {
			t.Fatalf("%d lines from one", len(out.Lines))
		}
		for i := range out.Lines {
			if strings.ContainsAny(string(out.Line(i)), "\n\r") {
				t.Fatalf("newline in %q", out.Line(i))
			}
		}
	})
}
