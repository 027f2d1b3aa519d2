package pipeline

import (
	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/matcher"
	"github.com/portcullis/portcullis/window"
)

// recidiveJails lists the jails whose filter is recidive (config.Jail.Recidive).
func recidiveJails(cfg *config.Config) []uint16 {
	var out []uint16
	for id, j := range cfg.Jails {
		if j.Recidive {
			out = append(out, uint16(id))
		}
	}
	return out
}

// escalate feeds bans to the recidive jails and appends the bans they decide. fail2ban's recidive
// jail reads the "Ban" lines of fail2ban.log; here each ban of another jail (from failures or
// from the CLI) is one failure of the banned address at the ban's start, with no log in between.
// A recidive jail's own bans are not fed back, nor is a ban prolonged (fail2ban logs no "Ban"
// for it).
func escalate(recidive []uint16, a *window.Adder, bans *ban.Manager, ds []ban.Decision) []ban.Decision {
	if len(recidive) == 0 {
		return ds
	}
	var evs []matcher.Event
	for _, d := range ds {
		if d.Op != ban.OpBan || d.Reason == ban.Prolonged || isOneOf(d.Jail, recidive) {
			continue
		}
		for _, r := range recidive {
			evs = append(evs, matcher.Event{Jail: r, Addr: d.Prefix.Addr(), Time: d.Start})
		}
	}
	if len(evs) == 0 {
		return ds
	}
	return bans.Decide(a.Add(evs, nil), ds)
}

func isOneOf(id uint16, ids []uint16) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
