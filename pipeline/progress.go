package pipeline

import (
	"net/netip"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/store"
	"github.com/portcullis/portcullis/window"
)

func toBanHistory(in map[netip.Prefix]store.History) map[netip.Prefix]ban.History {
	out := make(map[netip.Prefix]ban.History, len(in))
	for p, h := range in {
		out[p] = ban.History{Count: h.Count, Last: h.Last}
	}
	return out
}

// purgeHistory forgets ban history older than dbpurgeage, in memory and in the store.
func (d *Daemon) purgeHistory(eng *engine) {
	age := eng.cfg.Daemon.DBPurgeAge
	if age <= 0 || d.store == nil {
		return
	}
	overall, perJail := eng.bans.PurgeHistory(d.opts.Now().Add(-age).Unix())
	byName := make(map[string][]netip.Prefix, len(perJail))
	for id, ps := range perJail {
		byName[eng.jails[id].Name] = ps
	}
	if err := d.store.DeleteHistory(overall, byName); err != nil {
		d.log.Error("cannot purge old ban history", "err", err)
		return
	}
	if len(overall) > 0 {
		d.log.Info("ban history purged (dbpurgeage)", "prefixes", len(overall), "older than", age)
	}
}

// saveProgress stores file positions and journal cursors and, when eng is given, its failure
// counts, in one synced batch.
func (d *Daemon) saveProgress(pos []ingest.Position, cursors map[string]string, eng *engine) {
	if d.store == nil {
		return
	}
	p := store.Progress{Offsets: make([]store.Offset, len(pos)), Cursors: cursors}
	for i, x := range pos {
		p.Offsets[i] = store.Offset{Path: x.Path, Dev: x.Dev, Ino: x.Ino, Fingerprint: x.Fingerprint, FPLen: x.FPLen, Offset: x.Offset}
	}
	if eng != nil {
		p.Windows = func(put func(string, netip.Addr, []uint32, []uint32) error) error {
			var err error
			eng.win.Snapshot(func(h *window.Held) {
				if err == nil {
					err = put(eng.jails[h.Jail].Name, h.Addr, h.Times, h.Counts)
				}
			})
			return err
		}
	}
	if err := d.store.SaveProgress(p); err != nil {
		d.log.Error("cannot save log positions and failure counts", "err", err)
	}
}

func toPositions(offs map[string]store.Offset) map[string]ingest.Position {
	out := make(map[string]ingest.Position, len(offs))
	for k, o := range offs {
		out[k] = ingest.Position{Path: o.Path, Dev: o.Dev, Ino: o.Ino, Fingerprint: o.Fingerprint, FPLen: o.FPLen, Offset: o.Offset}
	}
	return out
}

func positionMap(pos []ingest.Position) map[string]ingest.Position {
	out := make(map[string]ingest.Position, len(pos))
	for _, p := range pos {
		out[p.Path] = p
	}
	return out
}
