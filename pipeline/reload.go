package pipeline

import (
	"fmt"

	"github.com/portcullis/portcullis/config"
)

// Reload loads the configuration again and swaps the engine. A broken configuration is reported and
// the running one stays. Bans, failure counts and file positions carry over.
func (d *Daemon) Reload() error { return d.ReloadJail("") }

// ReloadJail is Reload for one jail (fail2ban-client reload JAIL): only that jail's definition
// is taken from the configuration on disk (added, changed, or removed when no longer enabled);
// every other jail keeps the one it runs with. An empty name reloads everything.
func (d *Daemon) ReloadJail(name string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if name == "" {
		d.pending = nil // jails made by add last until a reload, as in fail2ban
	}
	cfg, err := config.Load(d.opts.ConfigDir, config.Options{})
	if err != nil {
		d.log.Error("reload refused: the configuration has errors; the running one stays", "err", err)
		return err
	}
	if name != "" {
		if cfg, err = withJailFrom(d.current().cfg, cfg, name); err != nil {
			return err
		}
	}
	return d.swap(cfg)
}

// swap runs cfg in place of the running configuration (reloadMu held): bans, failure counts and
// file positions carry over; an engine that cannot start leaves the running one.
func (d *Daemon) swap(cfg *config.Config) error {
	for _, w := range cfg.Warnings {
		d.log.Warn(w)
	}
	eng, err := d.newEngine(cfg)
	if err != nil {
		d.log.Error("reload refused", "err", err)
		return err
	}
	old := d.current()
	old.stop()
	d.applier.flush()
	// The new generation continues every file exactly where the old one stopped.
	// Every line the old generation read is processed now, so its counts and positions agree:
	// they are saved together and the new generation takes both up (install loads the counts).
	pos, cursors := old.positions(), old.cursors()
	d.saveProgress(pos, cursors, old)
	eng.takeTotals(old)
	eng.setResume(positionMap(pos))
	eng.setCursors(cursors)
	if err := d.install(eng); err != nil {
		d.log.Error("reload failed; keeping the previous configuration", "err", err)
		eng.m.Close()
		// Bring the old generation back with a fresh engine built from its configuration: the
		// store still holds its bans, counts, positions and cursors.
		back, err2 := d.engineFor(old.cfg)
		if err2 == nil {
			back.setResume(positionMap(pos))
			back.setCursors(cursors)
			back.takeTotals(old)
			err2 = d.install(back)
			if err2 != nil {
				back.m.Close()
			}
		}
		if err2 != nil {
			d.log.Error("cannot restore the previous configuration", "err", err2)
		}
		return err
	}
	d.log.Info("configuration reloaded", "jails", len(cfg.Jails))
	return nil
}

// withJailFrom is running with jail name taken from fresh.
func withJailFrom(running, fresh *config.Config, name string) (*config.Config, error) {
	out := *running
	out.Jails, out.Warnings = nil, fresh.Warnings
	found := false
	for _, j := range running.Jails {
		if j.Name != name {
			out.Jails = append(out.Jails, j)
			continue
		}
		found = true
		if nj := fresh.Jail(name); nj != nil {
			out.Jails = append(out.Jails, nj)
		}
	}
	if !found {
		nj := fresh.Jail(name)
		if nj == nil {
			return nil, fmt.Errorf("no jail %q, neither running nor enabled in the configuration", name)
		}
		out.Jails = append(out.Jails, nj)
	}
	return &out, nil
}
