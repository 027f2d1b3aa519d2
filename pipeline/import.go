package pipeline

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/migrate"
	"github.com/portcullis/portcullis/sink"
	"github.com/portcullis/portcullis/store"
)

// importMarker is the store's note that fail2ban's database was taken over (its path and when):
// the first start takes it over only once.
const importMarker = "fail2ban-import"

// planImport sorts fail2ban's bans into those portcullis takes (jails enabled here, addresses not
// protected) and the rest, and turns its ban counts into the ban manager's history: overall for
// every jail, per jail for the jails enabled here.
func planImport(data *migrate.Data, byName map[string]int, bans *ban.Manager, sum *control.Import) ([]ban.Active, map[netip.Prefix]ban.History, map[uint16]map[netip.Prefix]ban.History) {
	sum.Expired, sum.Skipped, sum.History = data.Expired, data.Skipped, len(data.History)
	var list []ban.Active
	for _, b := range data.Bans {
		id, ok := byName[b.Jail]
		if !ok {
			if sum.UnknownJails == nil {
				sum.UnknownJails = map[string]int{}
			}
			sum.UnknownJails[b.Jail]++
			continue
		}
		if err := bans.ProtectedPrefix(uint16(id), b.Prefix); err != nil {
			sum.Protected = append(sum.Protected, fmt.Sprintf("%s %s: %v", b.Jail, sink.PrefixString(b.Prefix), err))
			continue
		}
		list = append(list, ban.Active{Jail: uint16(id), Prefix: b.Prefix, Start: b.Start, End: b.End, Count: b.Count})
	}
	hist := make(map[netip.Prefix]ban.History, len(data.History))
	for p, h := range data.History {
		hist[p] = ban.History{Count: h.Count, Last: h.Last}
	}
	jhist := map[uint16]map[netip.Prefix]ban.History{}
	for jail, hs := range data.JailHistory {
		id, ok := byName[jail]
		if !ok {
			continue
		}
		m := make(map[netip.Prefix]ban.History, len(hs))
		for p, h := range hs {
			m[p] = ban.History{Count: h.Count, Last: h.Last}
		}
		jhist[uint16(id)] = m
	}
	return list, hist, jhist
}

// countTaken fills the summary's counts of the bans taken.
func countTaken(ds []ban.Decision, planned int, sum *control.Import) {
	sum.Bans, sum.Already = len(ds), planned-len(ds)
	for _, d := range ds {
		if d.Prefix.Addr().Is6() {
			sum.IPv6++
		}
		if d.End == 0 {
			sum.Permanent++
		}
	}
}

// countWouldTake is countTaken for a dry run: the bans not banned here already.
func countWouldTake(list []ban.Active, bans *ban.Manager, sum *control.Import) {
	for _, a := range list {
		if bans.IsBanned(a.Jail, a.Prefix) {
			sum.Already++
		} else {
			sum.Bans++
		}
	}
}

// storeHistory is the history of jhist for the store, by jail name.
func storeHistory(jails []*config.Jail, hist map[netip.Prefix]ban.History, jhist map[uint16]map[netip.Prefix]ban.History) (map[netip.Prefix]store.History, map[string]map[netip.Prefix]store.History) {
	overall := make(map[netip.Prefix]store.History, len(hist))
	for p, h := range hist {
		overall[p] = store.History{Count: h.Count, Last: h.Last}
	}
	perJail := make(map[string]map[netip.Prefix]store.History, len(jhist))
	for id, hs := range jhist {
		m := make(map[netip.Prefix]store.History, len(hs))
		for p, h := range hs {
			m[p] = store.History{Count: h.Count, Last: h.Last}
		}
		perJail[jails[id].Name] = m
	}
	return overall, perJail
}

// importFail2ban takes fail2ban's bans in force and ban counts over into the running daemon: the
// bans into the ban manager, the store, the firewall and the actions (as restored bans: actions
// with norestored, mail, do not run) in one applied batch, the counts into the ban history.
func (d *Daemon) importFail2ban(path string, dryRun bool) (control.Import, error) {
	sum := control.Import{From: path, DryRun: dryRun}
	data, err := migrate.Read(path, d.opts.Now().Unix())
	if err != nil {
		return sum, err
	}
	d.reloadMu.Lock() // one configuration throughout
	defer d.reloadMu.Unlock()
	eng := d.current()
	list, hist, jhist := planImport(data, eng.byName, eng.bans, &sum)
	if dryRun {
		countWouldTake(list, eng.bans, &sum)
		return sum, nil
	}
	ds := eng.bans.Import(list, hist, jhist, ban.Imported, nil)
	countTaken(ds, len(list), &sum)
	if len(ds) > 0 {
		if err := d.applySync(ds, eng); err != nil {
			return sum, fmt.Errorf("the bans are taken over but could not all be applied: %w", err)
		}
	}
	overall, perJail := storeHistory(eng.jails, hist, jhist)
	if err := d.store.MergeHistory(overall, perJail); err != nil {
		return sum, err
	}
	if err := d.store.SetMeta(importMarker, path+" "+d.opts.Now().UTC().Format(time.RFC3339)); err != nil {
		return sum, err
	}
	return sum, nil
}

// autoImport is the first start's take-over: when fail2ban's database exists and this store has
// never held a ban, a ban count or an earlier import, its bans and counts come over.
func (d *Daemon) autoImport(path string, storeWasEmpty bool) {
	if path == "" || path == "off" || !storeWasEmpty {
		return
	}
	if _, err := os.Stat(path); err != nil {
		return
	}
	if _, done, err := d.store.Meta(importMarker); err != nil || done {
		return
	}
	sum, err := d.importFail2ban(path, false)
	if err != nil {
		d.log.Error("cannot take over fail2ban's bans", "from", path, "err", err)
		return
	}
	d.log.Info("took over fail2ban's bans (first start): "+ImportText(sum), "from", path)
}

// ImportText says in a few lines what an import took over and what it left.
func ImportText(s control.Import) string {
	var b strings.Builder
	verb := "taken over"
	if s.DryRun {
		verb = "would be taken over"
	}
	fmt.Fprintf(&b, "%d bans in force %s (%d IPv6, %d permanent), %d already banned here, ban counts of %d addresses (%d bans already over)",
		s.Bans, verb, s.IPv6, s.Permanent, s.Already, s.History, s.Expired)
	for jail, n := range s.UnknownJails {
		fmt.Fprintf(&b, "; %d bans of jail %s left (not enabled here)", n, jail)
	}
	if len(s.Protected) > 0 {
		fmt.Fprintf(&b, "; %d protected addresses left: %s", len(s.Protected), strings.Join(s.Protected, "; "))
	}
	if len(s.Skipped) > 0 {
		fmt.Fprintf(&b, "; %d unreadable rows skipped: %s", len(s.Skipped), strings.Join(s.Skipped, "; "))
	}
	return b.String()
}

// ImportOffline takes fail2ban's bans and ban counts over while portcullis is stopped: into the
// store in dbDir (the configuration in cfgDir says which jails exist and what is protected), from
// where the next start puts the bans into the firewall and runs their actions as restored bans.
func ImportOffline(cfgDir, dbDir, path string, dryRun bool, selfAddrs []netip.Addr) (control.Import, error) {
	sum := control.Import{From: path, DryRun: dryRun}
	cfg, err := config.Load(cfgDir, config.Options{})
	if err != nil {
		return sum, err
	}
	if dbDir == "" {
		dbDir = cfg.Daemon.DBDir
	}
	if selfAddrs == nil {
		selfAddrs = ban.LocalAddrs()
	}
	data, err := migrate.Read(path, time.Now().Unix())
	if err != nil {
		return sum, err
	}
	st, err := store.Open(dbDir, nil)
	if err != nil {
		return sum, fmt.Errorf("%w (is portcullis running? then it answers on its socket)", err)
	}
	defer st.Close()
	byName := map[string]int{}
	for i, j := range cfg.Jails {
		byName[j.Name] = i
	}
	_, _, pols := stageConfig(cfg)
	bans := ban.New(pols, ban.Options{SelfAddrs: selfAddrs})
	stored, err := st.Bans()
	if err != nil {
		return sum, err
	}
	var held []ban.Active
	for _, b := range stored {
		if id, ok := byName[b.Jail]; ok {
			held = append(held, ban.Active{Jail: uint16(id), Prefix: b.Prefix, Start: b.Start, End: b.End, Count: b.Count})
		}
	}
	bans.Restore(held, nil)
	list, hist, jhist := planImport(data, byName, bans, &sum)
	if dryRun {
		countWouldTake(list, bans, &sum)
		return sum, nil
	}
	ds := bans.Import(list, hist, jhist, ban.Imported, nil)
	countTaken(ds, len(list), &sum)
	changes := make([]store.Change, len(ds))
	for i, x := range ds {
		changes[i] = store.Change{Ban: store.Ban{Jail: cfg.Jails[x.Jail].Name, Prefix: x.Prefix, Start: x.Start, End: x.End, Count: x.Count, JailCount: x.JailCount}}
	}
	if err := st.Commit(changes); err != nil {
		return sum, err
	}
	overall, perJail := storeHistory(cfg.Jails, hist, jhist)
	if err := st.MergeHistory(overall, perJail); err != nil {
		return sum, err
	}
	return sum, st.SetMeta(importMarker, path+" "+time.Now().UTC().Format(time.RFC3339))
}
