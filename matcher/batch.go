package matcher

import (
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/ingest"
)

// queueLine queues the candidate patterns of one line for the block's batch, jail by jail, with
// the date each jail's templates find (lines without one are counted and dropped). A non-zero
// fixed time skips date detection (journal entries).
func (w *Worker) queueLine(line []byte, li uint32, jails ingest.JailSet, now, fixed time.Time) {
	m := w.m
	var lastDates *dateDetector
	t := fixed
	var text []byte
	if !fixed.IsZero() {
		text = line
	}
	for k := 0; k < len(w.cand); {
		jail := m.refs[w.cand[k]].jail
		end := k
		for end < len(w.cand) && m.refs[w.cand[end]].jail == jail {
			end++
		}
		group := w.cand[k:end]
		k = end
		if !jails.Has(int(jail)) {
			continue
		}
		if jd := m.jails[jail].dates; fixed.IsZero() && jd != lastDates {
			lastDates = jd
			var ok bool
			if t, text, ok = w.dateOf(&m.jails[jail], line, now); !ok {
				text = nil
			}
		}
		if text == nil {
			w.stats[jail].noDate++
			continue
		}
		w.queue(jail, group, text, li, t)
	}
}

// queue copies a (line, jail) and its candidate regexes into the block's batch: the prefregex on
// the text, each failregex on the prefregex's <F-CONTENT> (or the text), each ignoreregex Hyperscan
// hit on both.
func (w *Worker) queue(jail uint16, group []uint32, text []byte, li uint32, t time.Time) {
	x, m := w.px, w.m
	jr := &m.jails[jail]
	j := job{t: t, li: li, jail: jail}
	j.cand[0] = int32(len(w.jobCands))
	w.jobCands = append(w.jobCands, group...)
	j.cand[1] = int32(len(w.jobCands))
	j.text[0] = int32(len(x.buf))
	x.buf = append(x.buf, text...)
	j.text[1] = int32(len(x.buf))
	j.reqs[0] = int32(len(x.reqs))
	off, n := int(j.text[0]), len(text)
	dep, grp := -1, 0
	if jr.pref != nil && jr.pref.pc != nil {
		p := x.add(jr.pref.pc, off, n, -1, 0)
		if jr.contentGroup >= 0 {
			dep, grp = p, jr.contentGroup
		}
	}
	if jr.canDefer && !w.CollectIgnored && w.allEndHelpers(jr, group) {
		j.deferred = true
		w.deferred++
	} else if jr.pref == nil || jr.pref.pc != nil {
		w.queueCands(jr, group, off, n, dep, grp)
	}
	j.reqs[1] = int32(len(x.reqs))
	w.jobs = append(w.jobs, j)
}

// queueCands queues a line's candidate regexes: each failregex on the prefregex's <F-CONTENT>
// (request dep's group grp) or, with no dep, on buf[off:off+n]; each ignoreregex on both.
func (w *Worker) queueCands(jr *jailRx, group []uint32, off, n, dep, grp int) {
	x := w.px
	for _, id := range group {
		ref := w.m.refs[id]
		switch {
		case !ref.ignore && jr.fail[ref.idx].pc != nil:
			x.add(jr.fail[ref.idx].pc, off, n, dep, grp)
		case ref.ignore && jr.ignore[ref.idx].pc != nil:
			x.add(jr.ignore[ref.idx].pc, off, n, -1, 0)
			if dep >= 0 {
				x.add(jr.ignore[ref.idx].pc, off, n, dep, grp)
			}
		}
	}
}

// allEndHelpers reports whether every candidate of a line is a failregex that ends a connection
// as a helper (no ignoreregex among them).
func (w *Worker) allEndHelpers(jr *jailRx, group []uint32) bool {
	for _, id := range group {
		ref := w.m.refs[id]
		if ref.ignore || !jr.fail[ref.idx].endsHelper {
			return false
		}
	}
	return len(group) > 0
}

// decideJobs runs the block's batch (one cgo call, two when lines were deferred) and confirms
// the queued lines in order.
func (w *Worker) decideJobs(dst []Event) []Event {
	if len(w.jobs) == 0 {
		return dst
	}
	x := w.px
	x.run(0)
	if w.deferred > 0 {
		from := len(x.reqs)
		w.planDeferred()
		x.run(from)
	}
	for _, j := range w.jobs {
		if j.skip {
			continue
		}
		w.pre = [2]int{int(j.reqs[0]), int(j.reqs[1])}
		w.pre2 = [2]int{int(j.more[0]), int(j.more[1])}
		text := x.buf[j.text[0]:j.text[1]]
		if ev, ok := w.confirm(j.jail, w.jobCands[j.cand[0]:j.cand[1]], text, j.li, j.t, nil); ok {
			dst = append(dst, ev)
		}
	}
	w.pre, w.pre2, w.deferred = [2]int{}, [2]int{}, 0
	w.jobs, w.jobCands = w.jobs[:0], w.jobCands[:0]
	x.reset()
	return dst
}

// planDeferred settles the deferred jobs once the batch has run their prefregexes. Most noise
// that fail2ban's sshd.conf matches is a helper that ends a connection it never saw (a
// disconnect, a preauth close, an accepted login): whatever its failregex says, fail2ban's merge
// leaves nothing behind and counts nothing. Such a job waited with only its prefregex queued;
// now its connection id is known, and it is skipped when that connection is neither cached (even
// expired: its decision drops it) nor named by an earlier line of this block (which its decision,
// in order, could find cached).
// The others get their failregexes queued, for the batch's second run.
func (w *Worker) planDeferred() {
	m, x := w.m, w.px
	w.blockIDs.reset(len(w.jobs))
	unsure := false // a prefregex PCRE2 gave up on: its line's id is not known here
	for i := range w.jobs {
		j := &w.jobs[i]
		jr := &m.jails[j.jail]
		if !jr.canDefer {
			continue
		}
		p := &x.reqs[j.reqs[0]] // the prefregex comes first
		if p.rc <= 0 {
			// No prefregex match: the line is nothing to this jail. An error leaves the answer
			// to Go's regexp, later, and the id it may find to nobody here.
			if int32(p.rc) != pxNoMatch {
				unsure = true
			} else if j.deferred {
				j.skip = true
			}
			continue
		}
		s, e := x.ovec[int(p.ov)+2*jr.mlfidGroup], x.ovec[int(p.ov)+2*jr.mlfidGroup+1]
		if s < 0 {
			if j.deferred {
				w.queueFail(j, jr) // no id: the line is read as a plain one
			}
			continue
		}
		id := unsafe.String(&x.buf[s], int(e-s))
		hash := jr.ml.hash(id)
		key := blockKey(j.jail, hash)
		if j.deferred && !unsure && !w.blockIDs.has(key) && !jr.ml.cached(hash, id) {
			j.skip = true
			continue
		}
		w.blockIDs.add(key)
		if j.deferred {
			w.queueFail(j, jr)
		}
	}
}

// queueFail queues a deferred job's failregexes on its prefregex's <F-CONTENT>.
func (w *Worker) queueFail(j *job, jr *jailRx) {
	j.more[0] = int32(len(w.px.reqs))
	w.queueCands(jr, w.jobCands[j.cand[0]:j.cand[1]], 0, 0, int(j.reqs[0]), jr.contentGroup)
	j.more[1] = int32(len(w.px.reqs))
}

// batched is the batch's result of p on text for the job being decided, if it was queued.
func (w *Worker) batched(p *pcre, text []byte) (pxResult, []int32, bool) {
	if w.pre[1] == 0 {
		return pxResult{}, nil, false
	}
	if q, ov, ok := w.px.find(w.pre[0], w.pre[1], p, text); ok || w.pre2[1] == 0 {
		return q, ov, ok
	}
	return w.px.find(w.pre2[0], w.pre2[1], p, text)
}

// confirm applies a jail's prefregex, ignoreregexes and the failregexes Hyperscan reported (all of
// them when group is nil), in fail2ban's order.
func (w *Worker) confirm(jail uint16, group []uint32, text []byte, li uint32, t time.Time, detail *Result) (Event, bool) {
	m := w.m
	if detail == nil && w.Collect {
		var d Result
		detail = &d
		defer func() {
			if d.Matched || (d.Ignored || d.NoFail) && w.CollectIgnored {
				d.Line = li
				w.Details = append(w.Details, d)
			}
		}()
	}
	jr := &m.jails[jail]
	content := text
	w.pcaps.names, w.pcaps.vals = nil, w.pcaps.vals[:0]
	if jr.pref != nil {
		if !w.exec(jr.pref, text, &w.pcaps) {
			return Event{}, false
		}
		if c := w.pcaps.get("content"); c != nil {
			content = c
		}
	}
	ignored := func() bool {
		for i := range jr.ignore {
			r := &jr.ignore[i]
			if group != nil && !hitIgnore(m, group, i) {
				continue
			}
			if w.matches(r, text) || (jr.pref != nil && w.matches(r, content)) {
				return true
			}
		}
		return false
	}
	try := func(idx int) (Event, bool) {
		r := &jr.fail[idx]
		if !w.exec(r, content, &w.caps) {
			return Event{}, false
		}
		if ignored() {
			w.stats[jail].ignored++
			if detail != nil {
				detail.Ignored = true
			}
			return Event{}, false
		}
		if jr.maxLines > 1 {
			w.matched, w.matchStart, w.matchEnd = true, w.caps.start, w.caps.end
			if jr.pref != nil && len(content) != len(text) {
				// The failregex ran on the prefregex content: shift to buffer offsets.
				// Go's captures point into text; regexp2's are copies, and a prefregex content
				// runs to the end of the text (…<F-CONTENT>.+</F-CONTENT>$).
				off := len(text) - len(content)
				base, cp := uintptr(unsafe.Pointer(unsafe.SliceData(text))), uintptr(unsafe.Pointer(unsafe.SliceData(content)))
				if cp >= base && cp <= base+uintptr(len(text)) {
					off = int(cp - base)
				}
				w.matchStart, w.matchEnd = w.matchStart+off, w.matchEnd+off
			}
		}
		if jr.ml != nil {
			if mlfid := firstCapture("mlfid", &w.caps, &w.pcaps); mlfid != nil {
				return w.multiLine(jail, jr, idx, mlfid, li, t, detail)
			}
		}
		nofail := w.caps.get("nofail") != nil || w.pcaps.get("nofail") != nil
		id, addr := failureID(&w.caps, &w.pcaps)
		if detail != nil {
			fillDetail(detail, idx, string(id), addr, t, nofail, w.noFields, &w.pcaps, &w.caps)
		}
		if nofail {
			return Event{}, false
		}
		return w.emit(jail, idx, li, t, addr)
	}
	if group == nil {
		for i := range jr.fail {
			if ev, ok := try(i); ok {
				return ev, true
			}
		}
		return Event{}, false
	}
	for _, id := range group {
		ref := m.refs[id]
		if ref.ignore {
			continue
		}
		if ev, ok := try(int(ref.idx)); ok {
			return ev, true
		}
	}
	return Event{}, false
}
