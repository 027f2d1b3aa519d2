package matcher

import (
	"fmt"
	"strings"
)

// Address tag bodies. The IPv6 form takes no lookbehind (fail2ban's carries a "(?<=:)" that Hyperscan
// would have to prefilter for every <HOST>); brackets around an address are allowed and not captured.
const (
	ip4Body  = `\d{1,3}(?:\.\d{1,3}){3}`
	ip6Body  = `[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*(?:` + ip4Body + `|[0-9A-Fa-f]{1,4}|:)`
	addrBody = `(?:` + ip4Body + `|` + ip6Body + `)`
	cidr4    = `(?:/\d{1,2})?`
	cidr6    = `(?:/\d{1,3})?`
)

// tagExpansion returns the regex for a matcher tag. group is the named group for the Go form and is
// left out for the Hyperscan form.
func tagExpansion(tag string, named bool) (string, bool) {
	g := func(name, body string) string {
		if named {
			return `\[?(?P<` + name + `>` + body + `)\]?`
		}
		return `\[?(?:` + body + `)\]?`
	}
	switch tag {
	case "HOST", "ADDR":
		return g("host", addrBody), true
	case "IP4":
		return g("host", ip4Body), true
	case "IP6":
		return g("host", ip6Body), true
	case "SUBNET", "CIDR":
		return g("host", `(?:`+ip4Body+cidr4+`|`+ip6Body+cidr6+`)`), true
	}
	return "", false
}

// translated holds the two forms of one fail2ban regex.
type translated struct {
	goRE   string // Go regexp syntax with named groups: host, and one per <F-NAME>
	hsRE   string // Hyperscan syntax: same language, no capture names, no leading ^
	hasTag bool   // the regex captures an address
}

// translate expands matcher tags (<HOST>, <ADDR>, <IP4>, <IP6>, <SUBNET>, <CIDR>, <F-NAME>…</F-NAME>)
// and turns Python group syntax into the forms Go and Hyperscan take. Escapes and character classes
// are copied untouched.
func translate(re string) (translated, error) {
	var g, h strings.Builder
	var t translated
	var fstack []string
	inClass := false
	for i := 0; i < len(re); {
		c := re[i]
		switch {
		case c == '\\' && i+1 < len(re):
			g.WriteString(re[i : i+2])
			h.WriteString(re[i : i+2])
			i += 2
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			// A ']' right after '[' or '[^' is a literal.
			j := i + 1
			if j < len(re) && re[j] == '^' {
				j++
			}
			if j < len(re) && re[j] == ']' {
				g.WriteString(re[i : j+1])
				h.WriteString(re[i : j+1])
				i = j + 1
				continue
			}
		case c == '<':
			end := strings.IndexByte(re[i:], '>')
			if end > 0 {
				tag := re[i+1 : i+end]
				if exp, ok := tagExpansion(tag, true); ok {
					if t.hasTag {
						return t, fmt.Errorf("more than one address tag (%s)", re[i:i+end+1])
					}
					t.hasTag = true
					hs, _ := tagExpansion(tag, false)
					g.WriteString(exp)
					h.WriteString(hs)
					i += end + 1
					continue
				}
				if strings.HasPrefix(tag, "F-") && validGroup(tag[2:]) {
					name := strings.ToLower(strings.ReplaceAll(tag[2:], "-", "_"))
					fstack = append(fstack, tag)
					g.WriteString(`(?P<f_` + name + `>`)
					h.WriteString(`(?:`)
					i += end + 1
					continue
				}
				if strings.HasPrefix(tag, "/F-") {
					if len(fstack) == 0 || fstack[len(fstack)-1] != tag[1:] {
						return t, fmt.Errorf("<%s> closes a tag that is not open", tag)
					}
					fstack = fstack[:len(fstack)-1]
					g.WriteByte(')')
					h.WriteByte(')')
					i += end + 1
					continue
				}
				if tag == "SKIPLINES" {
					return t, fmt.Errorf("<SKIPLINES> (multi-line filters) is not supported yet")
				}
			}
		case c == '(' && strings.HasPrefix(re[i:], "(?P<"), c == '(' && strings.HasPrefix(re[i:], "(?<") && !strings.HasPrefix(re[i:], "(?<=") && !strings.HasPrefix(re[i:], "(?<!"):
			// Python named group: Go wants (?P<name>, Hyperscan a plain group.
			start := strings.IndexByte(re[i:], '<')
			end := strings.IndexByte(re[i:], '>')
			if end < 0 {
				return t, fmt.Errorf("unterminated group name")
			}
			name := re[i+start+1 : i+end]
			g.WriteString(`(?P<` + name + `>`)
			h.WriteString(`(?:`)
			i += end + 1
			continue
		}
		g.WriteByte(c)
		h.WriteByte(c)
		i++
	}
	if len(fstack) > 0 {
		return t, fmt.Errorf("<%s> is never closed", fstack[len(fstack)-1])
	}
	t.goRE = g.String()
	t.hsRE = h.String()
	return t, nil
}

func validGroup(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
