package sink

import (
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// tagRE is a tag as fail2ban's CommandAction finds it.
var tagRE = regexp.MustCompile(`<([^ <>]+)>`)

// shellSpecial is fail2ban's ESCAPE_CRE: a value holding any of these is attacker-controlled text
// for the shell, and never goes into the command itself.
var shellSpecial = regexp.MustCompile("[\\\\#&;`|*?~<>^()\\[\\]{}$'\"\n\r]")
var nonWord = regexp.MustCompile(`\W`)

// fieldTag is a capture's tag as fail2ban's FCUSTAG_CRE finds it: upper case only.
var fieldTag = regexp.MustCompile(`^F-[A-Z0-9_-]+$`)

// BanTags are the values of a ban's dynamic tags (fail2ban's aInfo).
type BanTags map[string]string

// TagsOf fills a ban's tags as fail2ban's Actions fill aInfo: the address (a network's
// prefix as written), its family and reverse form, the ban's time, length and count, the
// failures and their lines. ipmatches and ipjailmatches are the lines of this ban: portcullis
// keeps no other matches of an address.
func TagsOf(c Change, restored bool) BanTags {
	p := c.Ban.Prefix
	ip := PrefixString(p)
	t := BanTags{
		"ip": ip, "fid": ip, "ip-host": ip, "ip-rev": reverse(p.Addr()),
		"time":     strconv.FormatInt(c.Ban.Start, 10),
		"bantime":  "-1",
		"bancount": strconv.FormatUint(uint64(c.Ban.Count), 10),
		"restored": "0",
		"br":       "\n", "sp": " ",
		"family": familyOf(p),
	}
	if c.Ban.End != 0 {
		t["bantime"] = strconv.FormatInt(c.Ban.End-c.Ban.Start, 10)
	}
	if restored {
		t["restored"] = "1"
	}
	failures, matches := "0", ""
	if ev := c.Evidence; ev != nil {
		failures = strconv.Itoa(ev.Failures)
		matches = strings.Join(ev.Matches, "\n")
		for k, v := range ev.Fields {
			t["F-"+k] = v
		}
	}
	for _, k := range []string{"failures", "ipfailures", "ipjailfailures"} {
		t[k] = failures
	}
	for _, k := range []string{"matches", "ipmatches", "ipjailmatches"} {
		t[k] = matches
	}
	host, _ := os.Hostname()
	t["fq-hostname"] = host
	short, _, _ := strings.Cut(host, ".")
	t["sh-hostname"] = short
	return t
}

// fieldName is fail2ban's mapTag2Opt: the capture an <F-NAME> tag names.
func fieldName(tag string) string {
	switch t := strings.ToLower(tag); t {
	case "id":
		return "fid"
	case "port":
		return "fport"
	default:
		return t
	}
}

// reverse is the address in DNS reverse order, as fail2ban's ip-rev: 4.3.2.1. for 1.2.3.4, nibbles
// for IPv6.
func reverse(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		return strconv.Itoa(int(b[3])) + "." + strconv.Itoa(int(b[2])) + "." + strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[0])) + "."
	}
	b := a.As16()
	const hex = "0123456789abcdef"
	var sb strings.Builder
	for i := 15; i >= 0; i-- {
		sb.WriteByte(hex[b[i]&0xf])
		sb.WriteByte('.')
		sb.WriteByte(hex[b[i]>>4])
		sb.WriteByte('.')
	}
	return sb.String()
}

// Command fills a command's dynamic tags as fail2ban's replaceDynamicTags does: a value with no
// shell-special character goes in as it is; any other (log lines, user names) is passed in the
// environment as f2bV_<tag> and the tag becomes $f2bV_<tag>, so attacker text is never parsed as
// shell code. <F-NAME> is the filter's capture name (lower case; F-ID is fid, F-PORT fport, as
// fail2ban maps them), empty when the ban has none, as in fail2ban. Tags neither known nor
// dynamic stay as written.
func Command(cmd string, tags BanTags) (string, []string) {
	var env []string
	seen := map[string]bool{}
	out := tagRE.ReplaceAllStringFunc(cmd, func(m string) string {
		tag := m[1 : len(m)-1]
		field := fieldTag.MatchString(tag)
		switch {
		case field:
			tag = "F-" + fieldName(tag[2:])
		case strings.HasPrefix(tag, "F-"):
			return m // not upper case: no capture's tag, as in fail2ban
		}
		v, ok := tags[tag]
		if !ok {
			if field {
				return ""
			}
			return m
		}
		if !shellSpecial.MatchString(v) || tag == "br" || tag == "sp" {
			return v
		}
		name := "f2bV_" + nonWord.ReplaceAllString(tag, "_")
		if !seen[name] {
			seen[name] = true
			env = append(env, name+"="+v)
		}
		return "$" + name
	})
	return out, env
}
