// Package migrate reads what fail2ban leaves behind when portcullis takes over: the bans in force
// and the ban history in its SQLite database (/var/lib/fail2ban/fail2ban.sqlite3).
package migrate

import (
	"database/sql"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"sort"

	_ "modernc.org/sqlite" // pure Go: no cgo, no libsqlite3

	"github.com/portcullis/portcullis/store"
)

// DefaultDB is where Debian's fail2ban keeps its database (fail2ban.conf's dbfile).
const DefaultDB = "/var/lib/fail2ban/fail2ban.sqlite3"

// maxRows bounds what one read takes from the database: fail2ban purges its bips table after
// dbpurgeage (a day by default), so a real one is far smaller; a larger one is refused rather
// than read into memory.
const maxRows = 5_000_000

// Data is what a fail2ban database holds for portcullis. Bans are the bans in force at the read
// (End 0: permanent), one per (jail, address); History is each address's ban count over every jail
// (fail2ban's overalljails sum) and JailHistory per jail, bans in force and over alike, for
// bantime.increment.
type Data struct {
	Version     int
	Bans        []store.Ban
	Expired     int // (jail, address) rows whose last ban is over: history only
	History     map[netip.Prefix]store.History
	JailHistory map[string]map[netip.Prefix]store.History
	Skipped     []string // rows that could not be read, and why
}

// Read reads the fail2ban database at path as of now (unix seconds). The file is opened read-only
// and never changed; fail2ban may still be running.
func Read(path string, now int64) (*Data, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	d := &Data{History: map[netip.Prefix]store.History{}, JailHistory: map[string]map[netip.Prefix]store.History{}}
	if err := db.QueryRow("SELECT version FROM fail2banDb LIMIT 1").Scan(&d.Version); err != nil {
		return nil, fmt.Errorf("%s is not a fail2ban database: %w", path, err)
	}
	if d.Version < 4 {
		// Version 4 (fail2ban 0.10 on) has the bips table: each (address, jail)'s last ban.
		return nil, fmt.Errorf("%s: fail2ban database version %d (fail2ban before 0.10); start fail2ban 1.0 once to upgrade it", path, d.Version)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM bips").Scan(&n); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if n > maxRows {
		return nil, fmt.Errorf("%s: %d ban rows, more than the %d portcullis takes over in one go", path, n, maxRows)
	}
	rows, err := db.Query("SELECT jail, ip, timeofban, bantime, bancount FROM bips ORDER BY timeofban")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	type key struct {
		jail string
		p    netip.Prefix
	}
	last := map[key]store.Ban{}
	for rows.Next() {
		var jail, ip sql.NullString
		var tob, bt, count sql.NullInt64
		if err := rows.Scan(&jail, &ip, &tob, &bt, &count); err != nil {
			d.Skipped = append(d.Skipped, err.Error())
			continue
		}
		b, why := banOf(jail, ip, tob, bt, count)
		if why != "" {
			d.Skipped = append(d.Skipped, why)
			continue
		}
		last[key{b.Jail, b.Prefix}] = b // two rows of one network (192.0.2.1 and ::ffff:192.0.2.1): the later
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k, b := range last {
		h := store.History{Count: b.Count, Last: b.Start}
		if d.JailHistory[k.jail] == nil {
			d.JailHistory[k.jail] = map[netip.Prefix]store.History{}
		}
		d.JailHistory[k.jail][k.p] = h
		o := d.History[k.p]
		o.Count += b.Count
		o.Last = max(o.Last, b.Start)
		d.History[k.p] = o
		if b.End != 0 && b.End <= now {
			d.Expired++
			continue
		}
		d.Bans = append(d.Bans, b)
	}
	sort.Slice(d.Bans, func(i, j int) bool {
		if d.Bans[i].Jail != d.Bans[j].Jail {
			return d.Bans[i].Jail < d.Bans[j].Jail
		}
		return d.Bans[i].Prefix.Addr().Less(d.Bans[j].Prefix.Addr())
	})
	return d, nil
}

// banOf checks one row: every field may be anything a writer put there.
func banOf(jail, ip sql.NullString, tob, bt, count sql.NullInt64) (store.Ban, string) {
	switch {
	case !jail.Valid || jail.String == "" || len(jail.String) > 64:
		return store.Ban{}, fmt.Sprintf("a row without a usable jail name (%.64q)", jail.String)
	case !ip.Valid || len(ip.String) > 64:
		return store.Ban{}, fmt.Sprintf("jail %s: a row without a usable address", jail.String)
	case !tob.Valid || tob.Int64 < 0 || tob.Int64 > 1<<40:
		return store.Ban{}, fmt.Sprintf("jail %s, %s: time of ban %d out of range", jail.String, ip.String, tob.Int64)
	}
	p, err := netip.ParsePrefix(ip.String)
	if err != nil {
		a, aerr := netip.ParseAddr(ip.String)
		if aerr != nil {
			return store.Ban{}, fmt.Sprintf("jail %s: %q is not an address or network (a host name or F-ID ban has nothing to block)", jail.String, ip.String)
		}
		a = a.Unmap().WithZone("")
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	b := store.Ban{Jail: jail.String, Prefix: p, Start: tob.Int64, Count: 1}
	if count.Valid && count.Int64 > 0 && count.Int64 < 1<<31 {
		b.Count = uint32(count.Int64)
	}
	b.JailCount = b.Count
	switch {
	case !bt.Valid || bt.Int64 == -2:
		return store.Ban{}, fmt.Sprintf("jail %s, %s: no ban time recorded", jail.String, ip.String)
	case bt.Int64 < 0:
		b.End = 0 // -1: permanent
	case bt.Int64 > 1<<40:
		return store.Ban{}, fmt.Sprintf("jail %s, %s: ban time %d out of range", jail.String, ip.String, bt.Int64)
	default:
		b.End = b.Start + bt.Int64
	}
	return b, ""
}
