package matcher

import "testing"

// The Hyperscan form of a pattern: anchors gone, date holes accept the date, the part before a
// top-level "[]" dropped, negated classes kept within a line; the rarest-looking literal alone when
// one has 5 letters and digits, else from the first strong literal on.
func TestHSExpr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`^\s*\S+ sshd: x`, ` sshd: x`},
		{`^X - \S+ \[\] "[^"]*" 400`, `" 400`},
		{`^\[[^]]+\] failed (a|b)`, `\] failed `},                // the rare literal alone
		{`^\s*\S+ sshd\[\d+\]: Failed .* from x`, `\]: Failed `}, // "sshd" has 4 letters: every auth.log line
		{`^"[^"]*(?:sqlmap|Nikto)[^"]*"$`, `(?:sqlmap|Nikto)`},
		{`^a+(?:ab|cd)x`, `a+(?:ab|cd)x`},
		{`^x - (a|b) -  WARN`, ` - .* WARN`}, // the later run is twice as long
		{`^x - (a|b) - WARN`, `x - (a|b) - WARN`},
		// Apache's error prefix: the longest literal wins over the earlier, shorter ones.
		{`^\s*\[\] \[(?:\w+:)?(?:error|crit|warn)\] \[client (?P<ip4>\S+)\] (?:AH01630|AH01797): client denied by server configuration: \S*$`,
			`: client denied by server configuration: `},
		{`^\s*\[\] \[(?:\w+:)?(?:error|crit|warn)\] \[client (?P<ip4>\S+)\] denied`, `\] denied`}, // the last of equals
		{`^"(?:GET|POST) /(?:[^ "]*/)?(?:wp-login\.php|\.env)[^ "]* HTTP/\d(?:\.\d)?" 404`, `(?:wp-login\.php|\.env)[^ "\n]* HTTP/\d(?:\.\d)?" 404`},
		// A list of three or more names before a repetition: the names alone (Hyperscan started
		// from " HTTP/" when given the tail); before fixed text, or too short, the cut keeps its tail.
		{`^"GET /(?:[^ "]*/)?(?:wp-login\.php|\.env|pma/)[^ "]* HTTP/\d(?:\.\d)?" 404`, `(?:wp-login\.php|\.env|pma/)`},
		{`^"[^"]*(?:sqlmap|Nikto|ZmEu)[^"]*"$`, `(?:sqlmap|Nikto|ZmEu)`},
		{`^\S+ (?:TCP_DENIED|TAG_NONE|NONE)/(?:400|403) \d+`, `(?:TCP_DENIED|TAG_NONE|NONE)/(?:400|403) \d+`},
		{`^"GET /(?:wp-login\.php|\.env|pma)[^ "]* HTTP/\d"`, `"GET /(?:wp-login\.php|\.env|pma)[^ "\n]* HTTP/\d"`}, // "pma": 3 characters
		{`^"GET /(?:wp-login\.php|\.env|pma/)\d HTTP/\d"`, `"GET /(?:wp-login\.php|\.env|pma/)\d HTTP/\d"`},
		{`^(?P<x>\w+) ab (?P=x) abcdefghij`, ` abcdefghij`},           // a rare literal alone refers to no group
		{`^(?P<x>\w+) ab (?P=x) -abcd`, `(?P<x>\w+) ab (?P=x) -abcd`}, // no rare literal: a back-reference keeps its group
		{`^Failed (?P<c>x )?(?(c)a|b) from`, `Failed `},
		{`^a [  ]b`, `a [  ]b`},
		{`^(?:\[\]\s+)?\[[^]]+\] x`, `(?:\[[^\]\n]*\]\s+)?\[[^]\n]+\] x`},
		{`^a|\[\] b`, `a|\[[^\]\n]*\] b`},
		{`^type=x msg=audit\(:\d+\): y`, `type=x msg=audit\([^():\n]*:`}, // the hole in the literal accepts the date
		// No literal with 5 letters and digits: from the first strong one on (" HTTP/" is in every line).
		{`^\S+ "(?:GET|POST) [^ ]* HTTP/\d\.\d" 444`, ` HTTP/\d\.\d" 444`},
		// Groups around literal text continue the run; a group's literal form keeps its literals only.
		{`^(?P<nofail>Received (?P<mlfforget>disconnect)) from \S+`, `Received disconnect from `},
		{`^x (?P<f>(?P<g>Accepted \w+)) for \S+`, `Accepted `},
		{`^\S+: (?P<f>(?:Connection (?:closed|reset)|Disconnected)) by`, `: (?:Connection (?:closed|reset)|Disconnected) by`},
		{`^x: (?:Connection (?:closed|reset)|Disconnected) \S+ (?:Authentication refused|Login failed)`, `(?:Authentication refused|Login failed)`}, // 10 beats 9
		// An inline flag applies to the whole pattern in Python: no cut.
		{`^(?i)\s*\S+ sshd: Failed password`, `(?i)\s*\S+ sshd: Failed password`},
		{`^\s*\S+ sshd: (?:(?i)x|y) Failed password`, `\s*\S+ sshd: (?:(?i)x|y) Failed password`},
		{`^\s*\S+ sshd: (?i:x|y) Failed password`, ` Failed password`}, // a scoped flag is a group
		{`[\[\]] [^\n] []a] [^]a]`, `[\[\]] [^\n\n] []a] [^]a\n]`},
	} {
		if got := hsExpr(c.in, nil); got != c.want {
			t.Errorf("hsExpr(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// Among a jail's failregexes, each is scanned for a rare literal the others lack when it has one:
// a failure and a helper that both hold "Received disconnect from " stay apart.
func TestHSExprAmong(t *testing.T) {
	failure := `^Received (?P<mlfforget>disconnect) from (?P<ip4>\S+): 3: .*: Auth fail$`
	helper := `^(?P<nofail>Received (?P<mlfforget>disconnect)) from (?P<ip4>\S+): 11:`
	for _, c := range []struct{ expr, other, want string }{
		{failure, helper, `: Auth fail`},
		{helper, failure, `Received disconnect from `}, // nothing of its own: the best one
		{failure, `^x`, `Received disconnect from `},
		{`^(?:Accepted|Failed) password for x`, `^Failed publickey`, ` password for x`},
		// A group is shared when one of its alternatives is: the pattern's own run wins.
		{`^(?:Accepted|Rejected) for ab`, `^Rejected`, ` for ab`},
		{`^(?:Accepted|Rejected) for ab`, `^Refused`, `(?:Accepted|Rejected)`},
	} {
		if got := hsExpr(c.expr, []string{groupless(c.other)}); got != c.want {
			t.Errorf("hsExpr(%q, %q)\n got %q\nwant %q", c.expr, c.other, got, c.want)
		}
	}
}
