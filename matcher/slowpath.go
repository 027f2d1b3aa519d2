package matcher

import (
	"time"

	"github.com/portcullis/portcullis/ingest"
)

// slowJails handles jails whose regexes could not all go into Hyperscan: every line is tried.
func (w *Worker) slowJails(b *ingest.Block, jails ingest.JailSet, dst []Event) []Event {
	m := w.m
	var now time.Time
	for id := range m.jails {
		if !m.jails[id].slow || !jails.Has(id) {
			continue
		}
		if now.IsZero() {
			now = m.opts.Now()
		}
		for li := range b.Lines {
			dst = w.slowLine(id, b.Line(li), uint32(li), now, w.fixed, dst, nil)
		}
	}
	return dst
}

func (w *Worker) slowLine(jail int, line []byte, li uint32, now, fixed time.Time, dst []Event, detail *Result) []Event {
	jr := &w.m.jails[jail]
	t, text, ok := fixed, line, true
	if fixed.IsZero() {
		t, text, ok = w.dateOf(jr, line, now)
	}
	if !ok {
		if detail != nil {
			detail.NoDate = true
		}
		return dst
	}
	if jr.maxLines > 1 {
		return w.bufferedLine(uint16(jail), jr, text, li, t, dst, detail)
	}
	if ev, ok := w.confirm(uint16(jail), nil, text, li, t, detail); ok {
		dst = append(dst, ev)
	}
	return dst
}
