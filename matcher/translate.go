package matcher

import (
	"fmt"
	"regexp"
	"strings"
)

// fail2ban's address tags, as Python regexes with fail2ban's group names (ip4, ip6, dns, cidr), so
// captures mean what they mean to fail2ban. fail2ban's IPv6 body ends in "(?<=:):"; every repetition
// before it already ends in ':', so the lookbehind always holds and is dropped here — otherwise it
// would push every <HOST> pattern into Hyperscan's prefilter mode.
const (
	ip4Body = `(?:\d{1,3}\.){3}\d{1,3}`
	ip6Body = `(?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|:)`
	tagIP4  = `(?:::f{4,6}:)?(?P<ip4>` + ip4Body + `)`
	tagIP6  = `(?P<ip6>` + ip6Body + `)`
	tagDNS  = `(?P<dns>[\w\-.^_]*\w)`
	tagADDR = `\[?(?:` + tagIP4 + `|` + tagIP6 + `)\]?`
	tagHOST = `(?:` + tagADDR + `|` + tagDNS + `)`
	tagCIDR = `(?P<cidr>\d+)`
	tagSUB  = `\[?(?:` + tagIP4 + `|` + tagIP6 + `)(?:/` + tagCIDR + `)?\]?`
)

var staticTags = map[string]string{
	"IP4": tagIP4, "F-IP4/": tagIP4,
	"IP6": tagIP6, "F-IP6/": tagIP6,
	"ADDR": tagADDR, "F-ADDR/": tagADDR,
	"CIDR": tagCIDR, "F-CIDR/": tagCIDR,
	"SUBNET": tagSUB, "F-SUBNET/": tagSUB,
	"DNS": tagDNS, "F-DNS/": tagDNS,
	"F-ID/":   `(?P<fid>\S+)`,
	"F-PORT/": `(?P<fport>\w+)`,
}

var (
	fTagRE    = regexp.MustCompile(`</?[\w\-]+/?>`)
	fCustomRE = regexp.MustCompile(`^(/?)F-([A-Z0-9_\-]+)$`)
)

// groupName maps an <F-NAME> tag to fail2ban's capture name.
func groupName(tag string) string {
	n := strings.ToLower(strings.ReplaceAll(tag, "-", "_"))
	switch n {
	case "id":
		return "fid"
	case "port":
		return "fport"
	}
	return n
}

// translated is one fail2ban regex with its tags expanded.
type translated struct {
	expr    string // Python syntax with fail2ban's named groups
	hasHost bool   // captures a failure id: ip4, ip6, dns or fid
}

// translate expands fail2ban's tags the way fail2ban does: <HOST> and the other address tags into
// groups ip4/ip6/dns/cidr, <F-NAME>…</F-NAME> into (?P<name>…), with dns left out of <HOST> when
// useDNS is false. <SKIPLINES> (multi-line filters) is refused for now.
func translate(re string, useDNS bool) (translated, error) {
	var t translated
	open := map[string]bool{}
	var err error
	skip := 0
	out := fTagRE.ReplaceAllStringFunc(re, func(tag string) string {
		tn := tag[1 : len(tag)-1]
		if tn == "HOST" {
			if useDNS {
				return tagHOST
			}
			return tagADDR
		}
		if tn == "SKIPLINES" {
			// Any number of whole lines of the maxlines buffer, kept out of the failure.
			skip++
			return fmt.Sprintf(`\n(?P<skiplines%d>(?:(?:.*\n)*?))`, skip-1)
		}
		if s, ok := staticTags[tn]; ok {
			return s
		}
		m := fCustomRE.FindStringSubmatch(tn)
		if m == nil {
			return tag
		}
		if m[1] == "/" {
			if open[m[2]] {
				return ")"
			}
			return tag
		}
		open[m[2]] = true
		return "(?P<" + groupName(m[2]) + ">"
	})
	if err != nil {
		return t, err
	}
	// Python reads "{,n}" as "{0,n}"; Go and Hyperscan would take it literally. (The rewrite
	// backtracks over the whole expanded pattern: run it only where it can apply.)
	t.expr = out
	if strings.Contains(out, "{,") {
		t.expr = pyOpenRepeatRE.ReplaceAllString(out, "${1}{0,$2}")
	}
	for _, g := range []string{"(?P<ip4>", "(?P<ip6>", "(?P<dns>", "(?P<fid>"} {
		if strings.Contains(out, g) {
			t.hasHost = true
		}
	}
	if name := twiceNamed(out); name != "" {
		// Python refuses it ("redefinition of group name"), so fail2ban does not load the filter;
		// PCRE2 refuses it too, and the fallback matched nothing for the second one.
		return t, fmt.Errorf("group %q is defined twice (an address tag or <F-%s> used twice?)", name, strings.ToUpper(name))
	}
	return t, nil
}

// twiceNamed returns the first group name expr defines twice, or "".
func twiceNamed(expr string) string {
	seen := map[string]bool{}
	for rest := expr; ; {
		i := strings.Index(rest, "(?P<")
		if i < 0 {
			return ""
		}
		if i > 0 && rest[i-1] == '\\' {
			rest = rest[i+4:]
			continue
		}
		rest = rest[i+4:]
		j := strings.IndexByte(rest, '>')
		if j < 0 {
			return ""
		}
		name := rest[:j]
		if seen[name] {
			return name
		}
		seen[name] = true
	}
}

// hsExpr turns a translated regex into what Hyperscan scans for. Hyperscan scans whole lines, date
// included, while the regexes run on the text with the date cut out (fail2ban's rule), so the
// pattern must match a superset of the lines:
//   - the leading ^ anchors go (the line still carries its date prefix);
//   - where a filter expects the hole a cut date leaves inside a line — "[]" in web and Apache
//     logs ("[14/Aug/2005:11:58:59 +0200]"), "(:" in audit logs ("audit(1124013539.123:321)") —
//     and two blanks in a row, where a date cut from between two words leaves them — the date is
//     accepted too; when such a hole is at the top level of the pattern, only what
//     follows it is scanned for (the part before it, a client address and a few fields every
//     line of such a log has, costs Hyperscan far more than it filters out);
//   - negated classes do not cross line ends (no hit can span two lines of a block);
//   - of the rest, only the rarest-looking literal is scanned for when there is one (rareLiteral),
//     else everything from the first strong literal on (literalLead): the confirming regex
//     decides every line Hyperscan reports.
//
// Dates cut elsewhere inside a line are not covered; the filter tests run every sample through
// this same scan, so a filter that needs more shows up there.
//
// others are the jail's other failregexes (groupless; none for an ignoreregex): the rare literal
// is one none of them holds, when the pattern has such a literal (rareLiteral).
func hsExpr(expr string, others []string) string {
	expr = strings.TrimLeft(expr, "^")
	if inlineFlags(expr) {
		return rewriteOutsideClasses(expr) // a cut could drop the flag, or take a literal it governs
	}
	if i := afterLastTopLevel(expr, `\[\]`); i > 0 && i < len(expr) {
		expr = expr[i:]
	}
	if lit := rareLiteral(expr, others); lit != "" {
		// The literal alone, with no group to refer to: back-references and conditionals stay
		// behind with the rest (fail2ban's sshd "Failed … for (?P<cond_inv>invalid user )?…
		// (?(cond_user)…)" would otherwise be scanned whole, in prefilter mode).
		return rewriteOutsideClasses(lit)
	}
	if strings.Contains(expr, "(?P=") || strings.Contains(expr, "(?(") {
		// Back-references and conditionals: a cut could drop the group they refer to.
		return rewriteOutsideClasses(expr)
	}
	if i := literalLead(expr); i > 0 {
		expr = expr[i:]
	}
	return rewriteOutsideClasses(expr)
}

// rareLiteral returns the pattern's rarest-looking literal — the top-level literal run or
// all-alternatives-literal group (as literalRuns finds them) with the most letters and digits, the
// last among equals (a log line goes from its generic header to its specific message), in its pure
// literal form (literalText) — when it has at least minRareAlnum of them; else "". Hyperscan
// then scans for that literal alone and the confirming regex (PCRE2) decides every line that holds
// it: a literal costs Hyperscan only its literal matcher, while the rest of a pattern runs an
// automaton from every place its literals are found, which costs more per line that holds them
// (dovecot's "dovecot…-login: … rip=<HOST>" on dovecot's lines, postfix's "NOQUEUE: reject:
// … [<HOST>]…" on postfix's) than PCRE2 deciding such a line. Letters and
// digits, not length, measure rarity: " HTTP/" is in every access-log line and "sshd" in every
// line of auth.log, and both have 4; "Failed " (6) or "nvalid|llegal" (6) are only in failures.
//
// Among the literals with that many, one that none of the jail's other failregexes (others)
// holds comes first: fail2ban's sshd.conf has "Received disconnect from " both in a failure
// ("…: Auth fail") and in the helper every ordinary logout matches, so scanning both for it made
// every logout a candidate for the failure too, and kept the helper's lines from being settled
// by their connection id alone (Worker.planDeferred). The failure's own ": Auth fail" is rare
// enough and sets the two apart.
//
// With no such literal, a list of names — a group of at least three literal alternatives, each of
// four or more characters with three or more letters and digits ("\.env", "pma/", "HNAP1" among
// the probe paths of nginx-botsearch) — followed by an unbounded repetition is scanned for alone.
// What follows the repetition in an access-log filter is generic (" HTTP/1.1" 404), and
// Hyperscan, given the cut with its tail, starts from the " HTTP/" every line holds, so the names
// alone are the cheaper scan. A list followed by fixed text keeps it (squid's
// "(?:TCP_DENIED|…|NONE)/(?:400|403|407) ": "NONE" alone is in every line a cache answered,
// as HIER_NONE).
func rareLiteral(expr string, others []string) string {
	var best, own, names string
	bestScore, ownScore := 0, 0
	if !literalRuns(expr, alnumScore, func(at, end, score int) {
		if score < minRareAlnum {
			if names == "" && nameList(expr[at:end]) && repeats(expr[end:]) {
				names = literalText(expr[at:end])
			}
			return
		}
		lit := literalText(expr[at:end])
		if score >= bestScore {
			best, bestScore = lit, score
		}
		if score >= ownScore && len(others) > 0 && !sharedLiteral(lit, others) {
			own, ownScore = lit, score
		}
	}) {
		return ""
	}
	switch {
	case own != "":
		return own
	case best != "":
		return best
	}
	return names
}

// repeats reports whether expr starts with an atom repeated without bound ("[^ "]*", ".+").
func repeats(expr string) bool {
	i := 1
	switch {
	case expr == "":
		return false
	case expr[0] == '\\':
		i = 2
	case expr[0] == '[':
		i = classEnd(expr, 0)
	case expr[0] == '(':
		i = groupEnd(expr, 0)
	}
	return i > 0 && i < len(expr) && (expr[i] == '*' || expr[i] == '+')
}

// nameList reports whether lit, a strong literal as literalRuns finds it, is a group of at least
// three pure literal alternatives, each with four or more characters and three or more letters
// and digits.
func nameList(lit string) bool {
	if !strings.HasPrefix(lit, "(") || groupEnd(lit, 0) != len(lit) {
		return false
	}
	alts := alternatives(lit[1 : len(lit)-1])
	if len(alts) < 3 {
		return false
	}
	for _, a := range alts {
		p, ok := pureLiteral(a)
		if !ok || pureScore(p, lengthScore) < 4 || pureScore(p, alnumScore) < 3 {
			return false
		}
	}
	return true
}

// sharedLiteral reports whether the text of lit (literalText's form), or of one of its
// alternatives, stands in one of others (groupless), groups ignored.
func sharedLiteral(lit string, others []string) bool {
	alts := []string{lit}
	if strings.HasPrefix(lit, "(?:") && groupEnd(lit, 0) == len(lit) {
		alts = alternatives(lit[1 : len(lit)-1])
	}
	for _, a := range alts {
		a = groupless(a)
		for _, o := range others {
			if strings.Contains(o, a) {
				return true
			}
		}
	}
	return false
}

// groupless is expr without the syntax of its groups: "(?P<name>", "(?:", "(" and ")".
func groupless(expr string) string {
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '\\' && i+1 < len(expr):
			b.WriteString(expr[i : i+2])
			i++
		case c == '(':
			if strings.HasPrefix(expr[i:], "(?P<") {
				if j := strings.IndexByte(expr[i:], '>'); j > 0 {
					i += j
				}
			} else if strings.HasPrefix(expr[i:], "(?:") {
				i += 2
			}
		case c == ')':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// bestLiteral returns the top-level strong literal of expr with the most letters and digits, the
// last among equals.
func bestLiteral(expr string) (at, end, best int) {
	if !literalRuns(expr, alnumScore, func(a, e, score int) {
		if score >= best {
			at, end, best = a, e, score
		}
	}) {
		return 0, 0, 0
	}
	return at, end, best
}

// literalText is the pure literal form of a strong literal: a run as it is; a group as the
// alternation of each alternative's best literal, so that what surrounds those literals inside the
// group (Python's "Accepted \w+" in a named group) gives Hyperscan no automaton to run and no match
// end per character of a repetition.
func literalText(lit string) string {
	if p, ok := pureLiteral(lit); ok {
		return p // a run, its groups made non-capturing
	}
	alts := alternatives(lit[1 : len(lit)-1])
	parts := make([]string, len(alts))
	for i, alt := range alts {
		// A literal alternative whole ("Received (?P<mlfforget>disconnect)"), else its best part.
		if _, ok := pureLiteral(alt); !ok {
			at, end, _ := bestLiteral(alt)
			alt = alt[at:end]
		}
		parts[i] = literalText(alt)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(?:" + strings.Join(parts, "|") + ")"
}

// minRareAlnum is how many letters and digits a literal needs for Hyperscan to scan for it alone.
const minRareAlnum = 5

// alnumScore scores a literal run by its letters and digits (escaped characters in a run are
// punctuation).
func alnumScore(run string) int {
	n := 0
	for i := 0; i < len(run); i++ {
		if isAlnum(run[i]) {
			n++
		}
	}
	return n
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// lengthScore scores a literal run by its characters (an escaped character counts once).
func lengthScore(run string) int {
	return len(run) - strings.Count(run, `\`) + strings.Count(run, `\\`)
}

// inlineFlags reports whether expr sets flags inline ("(?i)", "(?s)", "(?x)"…): Python applies
// such a flag to the whole pattern wherever it stands, so no part of the pattern can be scanned
// for without it.
func inlineFlags(expr string) bool {
	for i := 0; i+2 < len(expr); i++ {
		switch expr[i] {
		case '\\':
			i++
		case '(':
			if expr[i+1] != '?' {
				continue
			}
			j := i + 2
			for j < len(expr) && strings.IndexByte("aiLmsux-", expr[j]) >= 0 {
				j++
			}
			if j > i+2 && j < len(expr) && expr[j] == ')' {
				return true
			}
		}
	}
	return false
}

// literalLead returns where to start scanning: at the start of the pattern's best strong literal
// — a run of 4 or more literal characters at the top level, or a group each of whose alternatives
// holds such a run (its score: the shortest of those runs). The first one is taken unless a later
// one scores at least twice as much (and 8 or more): `\[client ` over `(?:error|warn|…)` in
// Apache's error lines, ": client denied by server configuration: " over both. What follows a
// top-level position is a superset of the whole pattern (every match contains a match of it,
// ending at the same place), and Hyperscan finds a pattern that starts at a rare literal far
// faster than one that starts with a repetition or a class every line satisfies (`"[^"]*" 401` in
// access logs: 6× faster as `" 401`; the Apache error prefix before "[client": 3.4×). 0 means no
// cut.
func literalLead(expr string) int {
	best, bestScore := 0, 0
	consider := func(at, _, score int) {
		if bestScore == 0 || score >= 8 && score >= 2*bestScore {
			best, bestScore = at, score
		}
	}
	if !literalRuns(expr, lengthScore, consider) {
		return 0
	}
	return best
}

// literalRuns calls found for every strong literal at the top level of expr, in order, with where
// it starts and ends and its score: runs of 4 or more literal characters, scored by measure, and
// groups each of whose alternatives holds one, scored by groupScore. It reports false when expr has
// a top-level alternation or cannot be read.
func literalRuns(expr string, measure func(run string) int, found func(at, end, score int)) bool {
	run, runStart, runEnd := 0, 0, 0
	endRun := func() {
		if run >= 4 {
			text, _ := pureLiteral(expr[runStart:runEnd])
			if score := pureScore(text, measure); score > 0 {
				found(runStart, runEnd, score)
			}
		}
		run = 0
	}
	for i := 0; i < len(expr); {
		start := i
		literal, group, width := false, 0, 1
		switch c := expr[i]; {
		case c == '\\' && i+1 < len(expr):
			literal = !isAlnum(expr[i+1]) // \d, \w, \b … are classes and anchors, \. a character
			i += 2
		case c == '[':
			i = classEnd(expr, i)
		case c == '(':
			end := groupEnd(expr, i)
			if end < 0 {
				return false
			}
			if alts := alternatives(expr[i+1 : end-1]); len(alts) == 1 {
				if p, ok := pureLiteral(alts[0]); ok {
					// A group around literal text only ("<F-MLFFORGET>disconnect</F-MLFFORGET>")
					// continues the run around it.
					literal, width = true, pureScore(p, lengthScore)
				}
			}
			if !literal {
				group = groupScore(expr[i+1:end-1], measure)
			}
			i = end
		case c == '|':
			return false // a top-level alternation: no single lead
		case c == '.' || c == '^' || c == '$' || c == ')':
			i++
		default:
			literal = true
			i++
		}
		if i < 0 || i > len(expr) {
			return false
		}
		// A quantifier after the atom.
		quantified := false
		if i < len(expr) {
			switch expr[i] {
			case '*', '+', '?':
				quantified = true
				i++
			case '{':
				if j := strings.IndexByte(expr[i:], '}'); j > 0 {
					quantified = true
					i += j + 1
				}
			}
			if quantified && i < len(expr) && (expr[i] == '?' || expr[i] == '+') {
				i++ // lazy or possessive
			}
		}
		if literal && !quantified {
			if run == 0 {
				runStart = start
			}
			run += width
			runEnd = i
			continue
		}
		endRun()
		if group > 0 && !quantified {
			found(start, i, group)
		}
	}
	endRun()
	return true
}

// classEnd returns the offset after the character class starting at expr[i] == '['.
func classEnd(expr string, i int) int {
	j := i + 1
	if j < len(expr) && expr[j] == '^' {
		j++
	}
	if j < len(expr) && expr[j] == ']' {
		j++
	}
	for ; j < len(expr); j++ {
		switch expr[j] {
		case '\\':
			j++
		case ']':
			return j + 1
		}
	}
	return -1
}

// groupEnd returns the offset after the group starting at expr[i] == '(', or -1.
func groupEnd(expr string, i int) int {
	depth := 0
	for j := i; j < len(expr); j++ {
		switch expr[j] {
		case '\\':
			j++
		case '[':
			if j = classEnd(expr, j) - 1; j < 0 {
				return -1
			}
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return j + 1
			}
		}
	}
	return -1
}

// groupScore scores a group by its body (after "(", before ")"): the lowest, over its
// alternatives, of each alternative's best-scoring strong literal — every match of the group
// contains a literal that good. Lookarounds and conditionals score 0.
func groupScore(body string, measure func(run string) int) int {
	alts := alternatives(body)
	if alts == nil {
		return 0
	}
	lowest := -1
	for _, alt := range alts {
		best := 0
		literalRuns(alt, measure, func(_, _, score int) { best = max(best, score) })
		if lowest < 0 || best < lowest {
			lowest = best
		}
	}
	return max(lowest, 0)
}

// pureLiteral reports whether alt is literal characters and groups of such only, none of them
// quantified, and returns it with its groups as non-capturing ones.
func pureLiteral(alt string) (string, bool) {
	var out strings.Builder
	for i := 0; i < len(alt); {
		start := i
		switch c := alt[i]; {
		case c == '\\' && i+1 < len(alt):
			if isAlnum(alt[i+1]) {
				return "", false
			}
			i += 2
			out.WriteString(alt[start:i])
		case c == '(':
			end := groupEnd(alt, i)
			if end < 0 {
				return "", false
			}
			alts := alternatives(alt[i+1 : end-1])
			if alts == nil {
				return "", false
			}
			parts := make([]string, len(alts))
			for j, a := range alts {
				p, ok := pureLiteral(a)
				if !ok {
					return "", false
				}
				parts[j] = p
			}
			i = end
			if len(parts) == 1 {
				out.WriteString(parts[0])
			} else {
				out.WriteString("(?:" + strings.Join(parts, "|") + ")")
			}
		case strings.IndexByte(`[.^$|)*+?{`, c) >= 0:
			return "", false
		default:
			i++
			out.WriteString(alt[start:i])
		}
		if i < len(alt) && strings.IndexByte("*+?{", alt[i]) >= 0 {
			return "", false
		}
	}
	return out.String(), out.Len() > 0
}

// pureScore scores a pure literal (pureLiteral's form): its characters outside groups by measure,
// plus, for each group, its lowest-scoring alternative — what every match contains.
func pureScore(p string, measure func(run string) int) int {
	score, from := 0, 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '(':
			end := groupEnd(p, i)
			if end < 0 {
				return 0
			}
			score += measure(p[from:i])
			lowest := -1
			for _, a := range alternatives(p[i+1 : end-1]) {
				if sc := pureScore(a, measure); lowest < 0 || sc < lowest {
					lowest = sc
				}
			}
			score += max(lowest, 0)
			i, from = end-1, end
		}
	}
	return score + measure(p[from:])
}

// alternatives splits a group's body (after "(", before ")") into its top-level alternatives,
// without the group's "?:" or "?P<name>"; nil for lookarounds, conditionals, flag groups and
// bodies that cannot be read.
func alternatives(body string) []string {
	switch {
	case strings.HasPrefix(body, "?:"):
		body = body[2:]
	case strings.HasPrefix(body, "?P<"):
		j := strings.IndexByte(body, '>')
		if j < 0 {
			return nil
		}
		body = body[j+1:]
	case strings.HasPrefix(body, "?"):
		return nil
	}
	var alts []string
	depth, altStart := 0, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '[':
			if i = classEnd(body, i) - 1; i < 0 {
				return nil
			}
		case '(':
			depth++
		case ')':
			depth--
		case '|':
			if depth == 0 {
				alts = append(alts, body[altStart:i])
				altStart = i + 1
			}
		}
	}
	return append(alts, body[altStart:])
}

// afterLastTopLevel returns the offset just after the last occurrence of the literal regex text
// lit at the top level of expr (outside groups and classes), or -1 when there is none or expr
// has a top-level alternation (cutting would then drop alternatives).
func afterLastTopLevel(expr, lit string) int {
	depth, last := 0, -1
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '\\' && i+1 < len(expr):
			if depth == 0 && strings.HasPrefix(expr[i:], lit) {
				last = i + len(lit)
				i += len(lit) - 1
				continue
			}
			i++
		case c == '[':
			end := classEnd(expr, i)
			if end < 0 {
				return last
			}
			i = end - 1
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			return -1
		}
	}
	return last
}

// holes are the date holes hsExpr widens, outside character classes, with what they become.
var holes = [...]struct{ old, new string }{
	{`\[\]`, `\[[^\]\n]*\]`},
	{`\(:`, `\([^():\n]*:`},
	{"  ", ` .* `}, // (. stops at line ends in Hyperscan)
}

// rewriteOutsideClasses widens the holes outside character classes (an escaped character is not
// the start of one) and adds \n to every negated class ("[^...]"; a "]" right after "[^" is a
// member, not the end), in one pass.
func rewriteOutsideClasses(expr string) string {
	return rewriteRegex(expr, func(rest string) (string, int) {
		for _, h := range holes {
			if strings.HasPrefix(rest, h.old) {
				return h.new, len(h.old)
			}
		}
		return "", 0
	}, func(class string) string {
		if class[1] == '^' {
			return class[:len(class)-1] + `\n]`
		}
		return class
	})
}

// rewriteRegex copies expr, letting outside replace what starts at each position outside character
// classes (it returns the replacement and how many bytes it stands for, 0 to leave the position
// alone: an escaped pair or a character is then copied) and class replace each whole class. An
// unterminated class is copied as it is.
func rewriteRegex(expr string, outside func(rest string) (string, int), class func(class string) string) string {
	var b strings.Builder
	for i := 0; i < len(expr); {
		if out, n := outside(expr[i:]); n > 0 {
			b.WriteString(out)
			i += n
			continue
		}
		switch c := expr[i]; {
		case c == '\\' && i+1 < len(expr):
			b.WriteString(expr[i : i+2])
			i += 2
		case c == '[':
			end := classEnd(expr, i)
			if end < 0 {
				b.WriteString(expr[i:])
				return b.String()
			}
			b.WriteString(class(expr[i:end]))
			i = end
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

var pyOpenRepeatRE = regexp.MustCompile(`((?:^|[^\\])(?:\\\\)*)\{,(\d+)\}`)

// pyBackrefRE finds Python named back-references, (?P=name).
var pyBackrefRE = regexp.MustCompile(`\(\?P=(\w+)\)`)

// toRegexp2 turns Python syntax into what github.com/dlclark/regexp2 (RE2 mode) takes.
func toRegexp2(expr string) string {
	return pyBackrefRE.ReplaceAllString(expr, `\k<$1>`)
}
