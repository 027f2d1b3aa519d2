package ban

import "net/netip"

// Restore loads bans kept from an earlier run; ones already over are returned as unbans.
func (m *Manager) Restore(list []Active, history map[netip.Prefix]History) []Decision {
	var expired []Decision
	now := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range history {
		m.hist[p] = n
	}
	for _, a := range list {
		if a.End != 0 && a.End <= now {
			expired = append(expired, a.unban(Expired))
			continue
		}
		m.setActiveLocked(bkey{prefix: a.Prefix, jail: a.Jail}, a)
		if h := m.hist[a.Prefix]; h.Count < a.Count {
			m.hist[a.Prefix] = History{Count: a.Count, Last: max(h.Last, a.Start)}
		}
	}
	return expired
}

// RestoreJailHistory loads per-jail ban counts kept from an earlier run.
func (m *Manager) RestoreJailHistory(jail uint16, counts map[netip.Prefix]History) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range counts {
		m.histJail[bkey{prefix: p, jail: jail}] = n
	}
}

// PurgeHistory forgets the ban history of prefixes last banned before cutoff and not banned now
// (fail2ban's dbpurgeage): escalation then starts over for them, and the history cannot grow
// without bound. It returns what it forgot, overall and per jail, for the store.
func (m *Manager) PurgeHistory(cutoff int64) (overall []netip.Prefix, perJail map[uint16][]netip.Prefix) {
	m.mu.Lock()
	defer m.mu.Unlock()
	banned := make(map[netip.Prefix]bool, len(m.active))
	for k := range m.active {
		banned[k.prefix] = true
	}
	for p, h := range m.hist {
		if h.Last < cutoff && !banned[p] {
			delete(m.hist, p)
			overall = append(overall, p)
		}
	}
	for k, h := range m.histJail {
		if _, active := m.active[k]; h.Last < cutoff && !active {
			delete(m.histJail, k)
			if perJail == nil {
				perJail = make(map[uint16][]netip.Prefix)
			}
			perJail[k.jail] = append(perJail[k.jail], k.prefix)
		}
	}
	return overall, perJail
}
