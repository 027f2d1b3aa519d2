package store

import (
	"errors"
	"net/netip"

	"github.com/cockroachdb/pebble"
)

// MergeHistory raises the stored ban history to the given counts (the larger count and the later
// time win), overall and per jail, in one synced batch: history taken over from elsewhere never
// lowers what portcullis counted itself.
func (s *Store) MergeHistory(overall map[netip.Prefix]History, perJail map[string]map[netip.Prefix]History) error {
	if len(overall) == 0 && len(perJail) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	set := func(k []byte, h History) error {
		if v, closer, err := s.db.Get(k); err == nil {
			cur, derr := decodeHistory(k, v)
			closer.Close()
			if derr == nil {
				h.Count, h.Last = max(h.Count, cur.Count), max(h.Last, cur.Last)
			}
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
		var v [12]byte
		putHistory(v[:], h)
		return b.Set(k, v[:], nil)
	}
	for p, h := range overall {
		if err := set(histKey(p), h); err != nil {
			return err
		}
	}
	for jail, hs := range perJail {
		for p, h := range hs {
			if err := set(histJailKey(jail, p), h); err != nil {
				return err
			}
		}
	}
	return b.Commit(pebble.Sync)
}

func metaKey(name string) []byte { return []byte("meta/" + name) }

// Meta returns a marker set with SetMeta (such as when fail2ban's bans were taken over).
func (s *Store) Meta(name string) (string, bool, error) {
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer closer.Close()
	return string(v), true, nil
}

// SetMeta stores a marker, synced.
func (s *Store) SetMeta(name, value string) error {
	return s.db.Set(metaKey(name), []byte(value), pebble.Sync)
}

// Fresh reports whether the store has never held a ban or a ban count: a first start.
func (s *Store) Fresh() (bool, error) {
	for _, prefix := range []string{"ban/", "hist/", "meta/"} {
		found := false
		if err := s.scan(prefix, func(k, v []byte) error { found = true; return errStop }); err != nil && !errors.Is(err, errStop) {
			return false, err
		}
		if found {
			return false, nil
		}
	}
	return true, nil
}

var errStop = errors.New("stop")
