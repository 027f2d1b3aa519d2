package matcher

import "testing"

// The Hyperscan form of a pattern: anchors gone, date holes accept the date, the part before a
// top-level "[]" dropped, negated classes kept within a line.
func TestHSExpr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`^\s*\S+ sshd: x`, ` sshd: x`},
		{`^X - \S+ \[\] "[^"]*" 400`, `" 400`},
		{`^\[[^]]+\] failed (a|b)`, `\] failed (a|b)`},
		{`^\s*\S+ sshd\[\d+\]: Failed .* from x`, ` sshd\[\d+\]: Failed .* from x`},
		{`^"[^"]*(?:sqlmap|Nikto)[^"]*"$`, `(?:sqlmap|Nikto)[^"\n]*"$`},
		{`^a+(?:ab|cd)x`, `a+(?:ab|cd)x`},
		{`^x - (a|b) -  WARN`, `x - (a|b) - .* WARN`},
		{`^a [  ]b`, `a [  ]b`},
		{`^(?:\[\]\s+)?\[[^]]+\] x`, `(?:\[[^\]\n]*\]\s+)?\[[^]\n]+\] x`},
		{`^a|\[\] b`, `a|\[[^\]\n]*\] b`},
		{`^type=x msg=audit\(:\d+\): y`, `type=x msg=audit\([^():\n]*:\d+\): y`},
		{`[\[\]] [^\n] []a] [^]a]`, `[\[\]] [^\n\n] []a] [^]a\n]`},
	} {
		if got := hsExpr(c.in); got != c.want {
			t.Errorf("hsExpr(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}
