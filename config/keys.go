package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// jailKeys are the options a jail (or [DEFAULT]) may set: the ones portcullis reads and the ones
// fail2ban knows (actions, mail, filter options). A key that is none of them but within a typo of
// one is reported; any other key is left alone, since fail2ban's configurations define their own
// for interpolation (%(name)s).
var jailKeys = []string{
	// read by portcullis
	"enabled", "backend", "filter", "logpath", "maxretry", "findtime", "bantime", "maxmatches",
	"ignoreip", "ignoreself", "ignorecommand", "usedns", "logtimezone", "port", "protocol",
	"blocktype", "chain_hook", "banprefix4", "banprefix6", "banprefix4_escalate",
	"banprefix6_escalate", "bantime.increment", "bantime.factor", "bantime.formula",
	"bantime.multipliers", "bantime.maxtime", "bantime.rndtime", "bantime.overalljails",
	"journalmatch", "logformat", "json_time", "json_host", "json_message", "syslog_program",
	"syslog_host", "skip_if_nologs", "fleet_share", "fleet_apply", "fleet_share_lines",
	// fail2ban's, not (yet) read
	"action", "banaction", "banaction_allports", "chain", "mta", "destemail", "sender",
	"sendername", "returntype", "logencoding", "ignorecache", "fail2ban_agent", "before", "after",
	"mode", "tcpport", "udpport", "datepattern", "maxlines", "prefregex", "failregex",
	"ignoreregex", "dbpurgeage", "timeout", "known",
}

var refRE = regexp.MustCompile(`%\(([^)]+)\)s`)

// typoWarnings reports, with file and line, every key of the jail sections and [DEFAULT] that is
// not a known option, not referenced by an interpolation, and within a typo of a known option
// (maxretyr = 3): such a key is ignored, which the admin should hear about.
func typoWarnings(ini *INI) []string {
	referenced := map[string]bool{}
	for _, name := range ini.Sections() {
		sec := ini.Section(name)
		for _, k := range sec.Keys() {
			v, _ := sec.Raw(k)
			for _, m := range refRE.FindAllStringSubmatch(v.Text, -1) {
				ref := m[1]
				if i := strings.LastIndexByte(ref, '/'); i >= 0 {
					ref = ref[i+1:]
				}
				referenced[strings.ToLower(ref)] = true
			}
		}
	}
	var out []string
	for _, name := range ini.Sections() {
		if name == "INCLUDES" {
			continue
		}
		sec := ini.Section(name)
		for _, k := range sec.Keys() {
			if referenced[k] || slices.Contains(jailKeys, k) || strings.HasPrefix(k, "_") || strings.HasPrefix(k, "action_") {
				continue
			}
			if near := closest(k, jailKeys); near != "" {
				v, _ := sec.Raw(k)
				out = append(out, fmt.Sprintf("%s:%d: [%s] unknown option %q is ignored; did you mean %q?", v.File, v.Line, name, k, near))
			}
		}
	}
	return out
}

// closest returns the option of known within a typo of key (one edit for keys up to 5
// characters, two beyond; a swap of neighbours is one edit), or "".
func closest(key string, known []string) string {
	limit := 1
	if len(key) > 5 {
		limit = 2
	}
	best, bestD := "", limit+1
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions, deletions, substitutions
// and swaps of adjacent characters.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
