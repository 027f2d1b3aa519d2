package matcher

import (
	"bytes"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// mlState is a jail's multi-line failure cache, keyed by <F-MLFID> (a connection or session id),
// with fail2ban's merge rules: a later line of the same connection inherits the groups of earlier
// ones (an sshd "Disconnecting: Too many authentication failures" gets its host from the
// "Connection from" line before it), <F-NOFAIL> helpers wait for a failure, <F-MLFGAINED> (a
// successful login) resets the pending ones, and <F-MLFFORGET> (a disconnect) ends the entry.
// Entries expire after mlMaxAge seconds of log time; the cache holds at most mlMaxEntries.
//
// The cache is two generations keyed by a seeded hash of the id: a connection seen again moves to
// the current one, and when the current one is full it becomes the old one and the old one is
// dropped whole — the connections not seen for a generation. On a busy sshd most connections are
// a line or two, so inserts dominate: this keeps each at a map insert of an integer, where an
// exact least-recently-seen eviction would scan and sort the whole cache every tenth of it.
type mlState struct {
	mu       sync.Mutex
	seed     maphash.Seed
	cur, old map[uint64]*mlEntry
	scratch  mlEntry // a connection that ends on its first line is merged here (under mu)
	// seen has a bit set for the key of every entry in cur or old (and for some removed since):
	// a clear bit answers "not cached" from one 128 KiB array instead of two misses in maps of
	// 50,000 entries each — most lookups of fail2ban's sshd.conf are for connections never seen.
	seen []uint64
}

const mlSeenBits = 1 << 20

func (s *mlState) mark(k uint64)        { s.seen[k%mlSeenBits/64] |= 1 << (k % 64) }
func (s *mlState) marked(k uint64) bool { return s.seen[k%mlSeenBits/64]&(1<<(k%64)) != 0 }

const (
	mlMaxAge     = 5 * 60
	mlMaxEntries = 100_000
	mlGeneration = mlMaxEntries / 2
)

type mlEntry struct {
	id            string // the connection's id (a hash collision, seeded per cache, reads as a miss)
	fields        fieldList
	users         []string // every user seen on the connection
	pending       bool     // a failure without an id is waiting for one
	matches       int      // lines that make up the failure (fail2ban's "attempts")
	nofailMatches int      // helper lines seen before the failure
	last          int64    // log time of the last line

	// A new connection is one allocation: fields and users start in these arrays, and id and the
	// values are views of one copy, in textArr when they fit (newMLEntry).
	fieldsArr [5]field
	usersArr  [1]string
	textArr   [64]byte
}

// lineOnly names the groups that describe one line, not its connection: the prefregex's
// <F-CONTENT> (the whole message) and the id itself. The merge never reads them and fail2ban's
// reports leave them out, so the cache does not keep them: on a busy log they would be most of
// each cached connection's bytes.
func lineOnly(name string) bool { return name == "content" || name == "mlfid" }

// newMLEntry caches a connection first seen with the groups cur (views of the line): the id and
// every value are copied into one buffer, the entry's groups and its user list start inside it.
func newMLEntry(id string, cur fieldList, now int64) *mlEntry {
	n := len(id)
	for _, f := range cur {
		if !lineOnly(f.name) {
			n += len(f.val)
		}
	}
	e := &mlEntry{last: now}
	text := e.textArr[:0]
	if n > len(e.textArr) {
		text = make([]byte, 0, n)
	}
	keep := func(v string) string {
		if v == "" {
			return ""
		}
		at := len(text)
		text = append(text, v...)
		return unsafe.String(&text[at], len(v))
	}
	e.id = keep(id)
	e.fields = e.fieldsArr[:0]
	for _, f := range cur {
		if !lineOnly(f.name) {
			e.fields = append(e.fields, field{f.name, keep(f.val)})
		}
	}
	e.users = e.usersArr[:0]
	if u := e.fields.val("user"); u != "" {
		e.users = append(e.users, u)
	}
	return e
}

// fieldList is a connection's named groups: a handful, so a slice searched in order beats a map
// (no hashing, one allocation per connection instead of a map's buckets).
type fieldList []field

type field struct{ name, val string }

func (f fieldList) index(name string) int {
	for i := range f {
		if f[i].name == name {
			return i
		}
	}
	return -1
}

func (f fieldList) get(name string) (string, bool) {
	if i := f.index(name); i >= 0 {
		return f[i].val, true
	}
	return "", false
}

func (f fieldList) val(name string) string { v, _ := f.get(name); return v }

// set stores a copy of val unless the same value is there already.
func (f *fieldList) set(name, val string) {
	switch i := f.index(name); {
	case i < 0:
		*f = append(*f, field{name, strings.Clone(val)})
	case (*f)[i].val != val:
		(*f)[i].val = strings.Clone(val)
	}
}

func (f *fieldList) del(name string) bool {
	i := f.index(name)
	if i >= 0 {
		*f = slices.Delete(*f, i, i+1)
	}
	return i >= 0
}

func newMLState() *mlState {
	return &mlState{seed: maphash.MakeSeed(), cur: make(map[uint64]*mlEntry), old: make(map[uint64]*mlEntry),
		seen: make([]uint64, mlSeenBits/64)}
}

// hash is id's key in the cache.
func (s *mlState) hash(id string) uint64 { return maphash.String(s.seed, id) }

// cached reports whether the cache holds an entry for id (whose key is k), live or expired,
// changing nothing: an expired entry is for the line's own decision to find (and drop), as it
// would without deferral, so that the cache ends up the same.
func (s *mlState) cached(k uint64, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := s.get(k)
	return e != nil && e.id == id
}

// get returns the entry under key k, whichever its id, and whether it is in the old generation.
func (s *mlState) get(k uint64) (e *mlEntry, old bool) {
	if !s.marked(k) {
		return nil, false
	}
	if e = s.cur[k]; e == nil {
		e, old = s.old[k], true
	}
	return e, old
}

// lookup returns the live entry for id (moving it to the current generation) and id's key;
// taken reports another connection under that key (whose id hashes the same), which an insert
// must replace.
func (s *mlState) lookup(id string, now int64) (k uint64, e *mlEntry, taken bool) {
	k = s.hash(id)
	e, old := s.get(k)
	switch {
	case e == nil:
		return k, nil, false
	case e.id != id:
		return k, nil, true
	case now-e.last > mlMaxAge:
		s.remove(k)
		return k, nil, false
	}
	if old {
		delete(s.old, k)
		s.insert(k, e)
	}
	return k, e, false
}

func (s *mlState) insert(k uint64, e *mlEntry) {
	if len(s.cur) >= mlGeneration {
		s.old, s.cur = s.cur, make(map[uint64]*mlEntry, mlGeneration)
		clear(s.seen) // the dropped generation's keys go; the kept one's are marked again
		for k := range s.old {
			s.mark(k)
		}
	}
	s.cur[k] = e
	s.mark(k)
}

func (s *mlState) remove(k uint64) {
	delete(s.cur, k)
	delete(s.old, k)
}

func (s *mlState) len() int { return len(s.cur) + len(s.old) }

// known reports whether id is a live connection (with lookup's effects: an expired entry goes, a
// found one moves to the current generation, as a merge would do).
func (s *mlState) known(id string, now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, _ := s.lookup(id, now)
	return e != nil
}

func (e *mlEntry) addUser(u string) []string {
	if u == "" {
		return e.users
	}
	if !slices.Contains(e.users, u) {
		e.users = append(e.users, strings.Clone(u))
	}
	return e.users
}

// mlResult is a merged failure as of one line, copied out of the cache.
type mlResult struct {
	fields   map[string]string
	users    []string
	attempts int
	nofail   bool
	id       string // ip4, ip6, dns or fid; empty: pending, waiting for a line that names it
	idView   bool   // id is a view of the line (a connection that ended on its first line)
}

// merge folds the groups of one matching line (cur) into the connection's entry, as fail2ban's
// Filter._mergeFailure does, and returns the merged failure. A failure that still has no id is
// marked pending. id and cur's values may be views of the line: merge copies what it keeps, and
// may change cur.
// With copyOut the merged groups and users are copied into the result.
func (s *mlState) merge(id string, cur *fieldList, now int64, copyOut bool) mlResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.mergeLocked(id, cur, now, &s.scratch)
	r := mlResult{attempts: e.matches, idView: e == &s.scratch}
	if copyOut {
		r.fields = make(map[string]string, len(e.fields))
		for _, f := range e.fields {
			r.fields[f.name] = strings.Clone(f.val) // a scratch entry's are views of the line
		}
		r.users = slices.Clone(e.users)
	}
	_, r.nofail = e.fields.get("nofail")
	for _, g := range idGroups {
		if v := e.fields.val(g); v != "" {
			r.id = v
			break
		}
	}
	if r.id == "" {
		e.pending = true
	}
	return r
}

// reused reports whether a line naming an address (cur) belongs to another connection than the
// cached one of the same id: both name an IP address, and not the same. One connection has one
// client, so a different address means the id (an sshd PID, reused on a busy host) was given to
// a new connection. portcullis never reports an address the line does not name; fail2ban, whose
// cache holds 100 connections, forgets the old one on a busy host but would merge here otherwise.
func reused(cached, cur fieldList) bool {
	for _, g := range idGroups[:2] { // ip4, ip6 (a name and an address may be one client)
		if v := cur.val(g); v != "" {
			for _, h := range idGroups[:2] {
				if w := cached.val(h); w != "" && w != v {
					return true
				}
			}
		}
	}
	return false
}

// mergeLocked returns the connection's entry after the merge. A connection that ends on its first
// line (a disconnect of a connection never seen) is not cached: its merge runs in scratch, over
// cur's values (views of the line), and costs no allocation.
func (s *mlState) mergeLocked(id string, cur *fieldList, now int64, scratch *mlEntry) *mlEntry {
	const (
		fNoFail   = 1
		fForget   = 2
		fHadState = 4
		fGained   = 8
	)
	flags := 0
	_, nofail := cur.get("nofail")
	gv, gained := cur.get("mlfgained")
	if gained {
		flags |= fGained | fNoFail
		if !nofail {
			*cur = append(*cur, field{"nofail", gv})
		}
	} else if nofail {
		flags |= fNoFail
	}
	if cur.del("mlfforget") {
		flags |= fForget
	}
	k, e, taken := s.lookup(id, now)
	if e != nil && reused(e.fields, *cur) {
		// The id (a PID) now serves another client: the cached connection is over, and nothing
		// of it may reach this one's failure.
		s.remove(k)
		e, taken = nil, false
	}
	var users []string
	var fail *mlEntry
	if e != nil {
		users = e.addUser(cur.val("user"))
		if e.fields.del("nofail") {
			flags |= fHadState
		}
		if e.fields.del("mlfgained") {
			flags |= fHadState
		}
		if flags&fGained != 0 {
			e.pending = false
		}
		if flags&fHadState == 0 && !e.pending {
			e.matches = 0 // already reported with an earlier failure
		}
		for _, f := range *cur {
			if !lineOnly(f.name) {
				e.fields.set(f.name, f.val)
			}
		}
		e.last = now
		fail = e
		if flags&fForget != 0 {
			s.remove(k)
		}
	} else if flags&fForget != 0 {
		*scratch = mlEntry{fields: *cur, last: now} // nothing of the last connection merged here
		fail = scratch
	} else {
		fail = newMLEntry(id, *cur, now)
		users = fail.users
		if taken {
			s.remove(k)
		}
		s.insert(k, fail)
	}
	wasPending := fail.pending
	fail.pending = false
	if wasPending || len(users) > 1 {
		// Pending failures or another user on the same connection: this is no longer a helper.
		fail.fields.del("nofail")
		fail.fields.del("mlfgained")
		flags &^= fGained | fNoFail
	}
	if flags&fNoFail == 0 {
		m := fail.nofailMatches + fail.matches
		fail.nofailMatches = 0
		if flags&fGained == 0 {
			m++
		}
		fail.matches = m
	} else if flags&(fNoFail|fForget) == fNoFail {
		fail.nofailMatches++
	}
	return fail
}

// multiLine merges a match that carries an <F-MLFID> into its connection's state and reports the
// merged failure, if it is one.
func (w *Worker) multiLine(jail uint16, jr *jailRx, idx int, mlfid []byte, li uint32, t time.Time, detail *Result) (Event, bool) {
	id := unsafe.String(unsafe.SliceData(mlfid), len(mlfid)) // a view: the cache copies what it keeps
	if !w.explaining && endsUnknown(&w.caps, &w.pcaps) && !jr.ml.known(id, t.Unix()) {
		// A helper line (<F-NOFAIL> or <F-MLFGAINED>) that ends a connection never seen, or seen
		// too long ago: fail2ban's merge leaves nothing behind and counts nothing. Most of the
		// noise fail2ban's sshd.conf matches is this (disconnects, preauth closes, accepted
		// logins of connections whose earlier lines it does not track). A described line is a
		// helper all the same (fail2ban-regex counts it as ignored).
		if detail != nil {
			detail.NoFail, detail.Regex = true, idx
		}
		return Event{}, false
	}
	// The groups are views of the line, valid for this call: merge copies what it keeps.
	cur := w.mlCur[:0]
	alt := false
	for _, c := range [2]*captures{&w.pcaps, &w.caps} { // failregex groups override prefregex ones
		for i, n := range c.names {
			if i < len(c.vals) && c.vals[i] != nil {
				v := unsafe.String(unsafe.SliceData(c.vals[i]), len(c.vals[i]))
				if j := cur.index(n); j >= 0 {
					cur[j].val = v
				} else {
					cur = append(cur, field{n, v})
				}
				alt = alt || strings.HasPrefix(n, "alt_")
			}
		}
	}
	if alt {
		cur = mergeAltList(cur) // fail2ban merges alternates before the multi-line merge
	}
	w.mlCur = cur
	r := jr.ml.merge(id, &w.mlCur, t.Unix(), detail != nil && !w.noFields)
	var addr netip.Addr
	if r.id != "" && r.fields["dns"] != r.id {
		if a, err := netip.ParseAddr(r.id); err == nil {
			addr = a.Unmap().WithZone("")
		}
	}
	if detail != nil && r.id != "" {
		if r.idView {
			r.id = strings.Clone(r.id)
		}
		detail.Matched, detail.NoFail, detail.Regex, detail.ID, detail.Addr = !r.nofail, r.nofail, idx, r.id, addr
		detail.Time = t.Truncate(time.Second)
		detail.Fields, detail.Users, detail.Attempts = r.fields, r.users, r.attempts
		mergeAlt(detail.Fields)
	} else if detail != nil {
		detail.Pending, detail.Regex = true, idx
	}
	if r.id == "" || r.nofail {
		return Event{}, false
	}
	return w.emit(jail, idx, li, t, addr)
}

// lineBuffer is a jail's maxlines buffer: the last lines, without their dates.
type lineBuffer struct {
	mu    sync.Mutex
	lines [][]byte
	// joined is lines joined by newlines and ended by one, as fail2ban's buffer text.
	joined []byte
}

// bufferedLine adds a line to the jail's buffer and runs the regexes on the whole buffer; the
// lines a failregex match covers (but not its <SKIPLINES>) leave the buffer, as in fail2ban.
func (w *Worker) bufferedLine(jail uint16, jr *jailRx, text []byte, li uint32, t time.Time, dst []Event, detail *Result) []Event {
	b := jr.buf
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, append([]byte(nil), text...))
	if len(b.lines) > jr.maxLines {
		b.lines = b.lines[len(b.lines)-jr.maxLines:]
	}
	b.joined = b.joined[:0]
	for i, l := range b.lines {
		if i > 0 {
			b.joined = append(b.joined, '\n')
		}
		b.joined = append(b.joined, l...)
	}
	b.joined = append(b.joined, '\n')
	w.matched = false
	ev, ok := w.confirm(jail, nil, b.joined, li, t, detail)
	if ok {
		dst = append(dst, ev)
	}
	if !w.matched {
		return dst
	}
	// Which lines did the match cover, and which of them were skipped lines?
	var skipped [][]byte
	for i, n := range w.caps.names {
		if strings.HasPrefix(n, "skiplines") && w.caps.vals[i] != nil {
			skipped = append(skipped, bytes.Split(bytes.TrimSuffix(w.caps.vals[i], []byte{'\n'}), []byte{'\n'})...)
		}
	}
	first := bytes.Count(b.joined[:w.matchStart], []byte{'\n'})
	endPos := max(w.matchEnd-1, w.matchStart)
	last := bytes.Count(b.joined[:min(endPos, len(b.joined))], []byte{'\n'})
	// fail2ban's order (Regex.search): the lines before the match, then each skipped line in
	// the order skipped (taken from the matched ones at or after the previous one taken, so of
	// two equal lines the first goes), then the lines after it. The order decides which line
	// maxlines drops first.
	last = min(last, len(b.lines)-1)
	matched := append([][]byte(nil), b.lines[first:last+1]...)
	kept := append(b.lines[:0:0], b.lines[:first]...)
	n := 0
	for _, s := range skipped {
		for m := n; m < len(matched); m++ {
			if bytes.Equal(matched[m], s) {
				kept = append(kept, matched[m])
				matched = append(matched[:m], matched[m+1:]...)
				n = m
				break
			}
		}
	}
	b.lines = append(kept, b.lines[last+1:]...)
	return dst
}
