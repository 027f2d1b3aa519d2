package ingest

import (
	"net/netip"
	"time"
)

// batcher gathers lines into one open block per route mask; used by one goroutine.
type batcher struct {
	s      *SyslogServer
	ids    []string // the connection's verified certificate names; nil without
	open   map[uint64]*Block
	oldest time.Time
	stamps stampCache
}

func (s *SyslogServer) newBatcher() *batcher { return &batcher{s: s, open: make(map[uint64]*Block)} }

func (bt *batcher) add(msg []byte, sender netip.Addr, host []byte, now time.Time) {
	s := bt.s
	m := parseSyslog(msg, now, s.opts.Location, &bt.stamps)
	mask := s.routeMask(m.Program, sender, bt.ids)
	if mask == 0 {
		s.Stats.Unrouted.Add(1)
		return
	}
	s.Stats.Messages.Add(1)
	b := bt.open[mask]
	if b == nil {
		b = GetBlock()
		b.Source = s.source(mask)
		bt.open[mask] = b
		if len(bt.open) == 1 {
			bt.oldest = now
		}
	}
	start := len(b.Buf)
	b.Buf = appendClassicLine(b.Buf, &m, now, host, s.opts.Location, &bt.stamps)
	b.Lines = append(b.Lines, Span{Start: uint32(start), End: uint32(len(b.Buf) - 1)})
	st := b.Source.Stats
	st.Lines.Add(1)
	st.Bytes.Add(uint64(len(b.Buf) - start))
	if len(b.Buf) > blockSize-s.opts.MaxMessage-256 {
		bt.send(mask, b)
	}
}

func (bt *batcher) send(mask uint64, b *Block) {
	delete(bt.open, mask)
	b.stamp()
	select {
	case bt.s.out <- b:
	default:
		bt.s.Stats.Dropped.Add(uint64(len(b.Lines)))
		PutBlock(b)
	}
}

// flush sends every open block.
func (bt *batcher) flush() {
	for mask, b := range bt.open {
		bt.send(mask, b)
	}
}

// due reports whether the oldest open block has waited FlushEvery.
func (bt *batcher) due(now time.Time) bool {
	return len(bt.open) > 0 && now.Sub(bt.oldest) >= bt.s.opts.FlushEvery
}
