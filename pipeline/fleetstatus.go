package pipeline

import (
	"context"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/portcullis/portcullis/control"
	"github.com/portcullis/portcullis/fleet"
	"github.com/portcullis/portcullis/sink"
)

// fleetStatus answers `fleet status`: the link, the bucket, the stream and its partitions. What
// the servers cannot tell (no quorum) is said in Unhealthy; the counters are always there.
func (d *Daemon) fleetStatus() control.Reply {
	l := d.fleet.Load()
	if l == nil {
		return control.ErrorReply("this node is in no fleet (fleet in portcullis.conf)")
	}
	st := fleet.Status{Node: l.name, Counters: l.stats.counters(), Publish: l.conf.Publish, Decide: l.conf.Decide}
	if l.nc.IsConnected() {
		st.Server = l.nc.ConnectedUrlRedacted()
	}
	st.Servers = l.nc.Servers()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if st.Bucket, err = l.bans.BucketStatus(ctx); err != nil {
		st.Unhealthy = err.Error()
	}
	if l.fail != nil {
		a, parts, err := l.fail.f.StreamStatus(ctx)
		st.Stream, st.Parts = &a, parts
		if err != nil && st.Unhealthy == "" {
			st.Unhealthy = err.Error()
		}
	}
	return control.DataReply(st)
}

// fleetBanned answers `banned --fleet`: the bans in force in the fleet's bucket, whichever node
// decided them and whether or not this node applies them.
func (d *Daemon) fleetBanned() control.Reply {
	l := d.fleet.Load()
	if l == nil {
		return control.ErrorReply("this node is in no fleet (fleet in portcullis.conf)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A cluster electing a leader does not answer for a moment: asked again for up to 10 s.
	var bans []fleet.Ban
	err := retryWhile(ctx, 10*time.Second, fleet.Transient, func() error {
		var err error
		bans, err = l.bans.List(ctx)
		return err
	})
	if err != nil {
		return control.ErrorReply("fleet: %v", err)
	}
	out := make([]control.Banned, 0, len(bans))
	for _, b := range bans {
		out = append(out, control.Banned{Jail: b.Jail, Prefix: sink.PrefixString(b.Prefix), Start: b.Start, End: b.End, Count: b.Count, Origin: b.Origin})
	}
	return control.DataReply(out)
}

func (s *fleetStats) counters() fleet.Counters {
	return fleet.Counters{Published: s.published.Load(), PublishErrors: s.publishErrors.Load(), Applied: s.applied.Load(),
		Refused: s.refused.Load(), BadValues: s.bad.Load(), FailuresOut: s.failuresOut.Load(), FailuresDropped: s.failuresDropped.Load(),
		FailuresIn: s.failuresIn.Load(), BadBatches: s.badBatches.Load(), Decided: s.decided.Load()}
}

// writeFleetMetrics adds the portcullis_fleet_* series to set.
func (d *Daemon) writeFleetMetrics(set *metrics.Set) {
	l := d.fleet.Load()
	if l == nil {
		return
	}
	c := l.stats.counters()
	for name, v := range map[string]uint64{
		"portcullis_fleet_bans_published_total": c.Published, "portcullis_fleet_publish_errors_total": c.PublishErrors,
		"portcullis_fleet_bans_applied_total": c.Applied, "portcullis_fleet_bans_refused_total": c.Refused,
		"portcullis_fleet_bad_values_total": c.BadValues, "portcullis_fleet_failures_published_total": c.FailuresOut,
		"portcullis_fleet_failures_dropped_total": c.FailuresDropped, "portcullis_fleet_failures_received_total": c.FailuresIn,
		"portcullis_fleet_bad_batches_total": c.BadBatches, "portcullis_fleet_bans_decided_total": c.Decided,
	} {
		set.NewCounter(name).Set(v)
	}
	up := 0.0
	if l.nc.IsConnected() {
		up = 1
	}
	set.NewGauge("portcullis_fleet_connected", func() float64 { return up })
	queued := float64(len(l.ops))
	set.NewGauge("portcullis_fleet_publish_queue", func() float64 { return queued })
}
