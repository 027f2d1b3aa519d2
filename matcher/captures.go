package matcher

import (
	"net/netip"
	"slices"
	"strings"
	"time"
	"unsafe"
)

func firstCapture(name string, cs ...*captures) []byte {
	for _, c := range cs {
		if v := c.get(name); v != nil {
			return v
		}
	}
	return nil
}

// endsUnknown reports whether a match ends its connection (<F-MLFFORGET>) as a helper (<F-NOFAIL>
// or <F-MLFGAINED>): for a connection not in the cache, merging it has no effect.
func endsUnknown(cs ...*captures) bool {
	return firstCapture("mlfforget", cs...) != nil &&
		(firstCapture("nofail", cs...) != nil || firstCapture("mlfgained", cs...) != nil)
}

// emit turns a counted failure into an Event when its id is an address; ids that are host names
// or F-IDs are counted and cannot be banned.
func (w *Worker) emit(jail uint16, idx int, li uint32, t time.Time, addr netip.Addr) (Event, bool) {
	if !addr.IsValid() {
		w.stats[jail].badAddr++
		return Event{}, false
	}
	w.stats[jail].matched++
	return Event{Jail: jail, Regex: uint16(idx), Line: li, Time: t.Unix(), Addr: addr}, true
}

func hitIgnore(m *Matcher, group []uint32, idx int) bool {
	for _, id := range group {
		if r := m.refs[id]; r.ignore && int(r.idx) == idx {
			return true
		}
	}
	return false
}

var idGroups = [...]string{"ip4", "ip6", "dns", "fid"}

// failureID picks the failure id as fail2ban does: ip4, else ip6, else dns, else fid, the failregex
// groups before the prefregex ones. It returns the id's text (valid until the next match) and the
// address when the id is one. It does not allocate.
func failureID(fail, pref *captures) ([]byte, netip.Addr) {
	for _, name := range idGroups {
		for _, c := range [2]*captures{fail, pref} {
			v := c.get(name)
			if v == nil {
				continue
			}
			if name == "dns" {
				return v, netip.Addr{}
			}
			a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(v), len(v)))
			if err != nil {
				return v, netip.Addr{}
			}
			return v, a.Unmap().WithZone("")
		}
	}
	return nil, netip.Addr{}
}

func fillDetail(d *Result, idx int, id string, addr netip.Addr, t time.Time, nofail, noFields bool, cs ...*captures) {
	// fail2ban keeps whole seconds of a log line's stamp.
	d.Matched, d.NoFail, d.Regex, d.ID, d.Addr, d.Time = !nofail && id != "", nofail, idx, id, addr, t.Truncate(time.Second)
	d.Attempts = 1
	if noFields {
		return
	}
	d.Fields = map[string]string{}
	for _, c := range cs {
		for i, n := range c.names {
			if i < len(c.vals) && c.vals[i] != nil {
				d.Fields[n] = string(c.vals[i])
			}
		}
	}
	d.Attempts = 1
	if u := d.Fields["user"]; u != "" {
		d.Users = []string{u}
	}
	mergeAlt(d.Fields)
}

// mergeAlt is mergeAltList on a map of groups (Details).
func mergeAlt(fields map[string]string) {
	var f fieldList
	for n, v := range fields {
		f = append(f, field{n, v})
	}
	for _, x := range mergeAltList(f) {
		fields[x.name] = x.val
	}
}

// mergeAltList applies fail2ban's alternates to a line's groups, in place: alt_user, alt_user_2 …
// (in name order) fill user when it is empty.
func mergeAltList(f fieldList) fieldList {
	var alts [8]int
	names := alts[:0]
	for i := range f {
		if strings.HasPrefix(f[i].name, "alt_") {
			names = append(names, i)
		}
	}
	slices.SortFunc(names, func(a, b int) int { return strings.Compare(f[a].name, f[b].name) })
	for _, i := range names {
		base := altBase(f[i].name)
		if f[i].val == "" || f.val(base) != "" {
			continue
		}
		if j := f.index(base); j >= 0 {
			f[j].val = f[i].val
		} else {
			f = append(f, field{base, f[i].val})
		}
	}
	return f
}

// altBase is the group an alternate fills: alt_user, alt_user_2 → user (fail2ban's
// ^alt_(.*?)(?:_\d+)?$).
func altBase(name string) string {
	base := strings.TrimPrefix(name, "alt_")
	if i := strings.LastIndexByte(base, '_'); i >= 0 && i+1 < len(base) && strings.Trim(base[i+1:], "0123456789") == "" {
		base = base[:i]
	}
	return base
}
