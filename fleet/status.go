package fleet

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Status is what `portcullis fleet status` shows: the servers, the bucket and the stream with
// their leaders and replicas, and each partition's lag and decider.
type Status struct {
	Node      string      `json:"node"`
	Server    string      `json:"server"` // the server this node is connected to; empty: none
	Servers   []string    `json:"servers"`
	Bucket    Asset       `json:"bucket"`
	Stream    *Asset      `json:"stream,omitempty"` // nil unless failures are counted
	Parts     []PartState `json:"partitions,omitempty"`
	Counters  Counters    `json:"counters"`
	Publish   bool        `json:"publish"`
	Decide    bool        `json:"decide"`
	Unhealthy string      `json:"error,omitempty"`
}

// Asset is a stream's state (the bucket is one too).
type Asset struct {
	Name     string   `json:"name"`
	Messages uint64   `json:"messages"`
	Bytes    uint64   `json:"bytes"`
	Leader   string   `json:"leader,omitempty"`
	Replicas []string `json:"replicas,omitempty"` // the others, "name" or "name (lagging)"
}

// PartState is one partition of the failures stream: how many messages wait for its decider
// (lag), how many it holds unacknowledged, and which decider holds it (Here: this node).
type PartState struct {
	Part       int    `json:"partition"`
	Lag        uint64 `json:"lag"`
	AckPending int    `json:"ack_pending"`
	PinnedID   string `json:"pinned_id,omitempty"`
	Decider    string `json:"decider,omitempty"` // its node name, when it has said
	Here       bool   `json:"here"`
}

// Counters are the node's fleet counters (the portcullis_fleet_* metrics).
type Counters struct {
	Published       uint64 `json:"bans_published"`
	PublishErrors   uint64 `json:"publish_errors"`
	Applied         uint64 `json:"bans_applied"`
	Refused         uint64 `json:"bans_refused"`
	BadValues       uint64 `json:"bad_values"`
	FailuresOut     uint64 `json:"failures_published"`
	FailuresDropped uint64 `json:"failures_dropped"`
	FailuresIn      uint64 `json:"failures_received"`
	BadBatches      uint64 `json:"bad_batches"`
	Decided         uint64 `json:"bans_decided"`
}

func assetOf(ctx context.Context, js jetstream.JetStream, name string) (Asset, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return Asset{Name: name}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Asset{Name: name}, err
	}
	a := Asset{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes}
	if c := info.Cluster; c != nil {
		a.Leader = c.Leader
		for _, r := range c.Replicas {
			n := r.Name
			if !r.Current || r.Offline {
				n += " (lagging)"
			}
			a.Replicas = append(a.Replicas, n)
		}
	}
	return a, nil
}

// BucketStatus is the bucket's state.
func (b *Bans) BucketStatus(ctx context.Context) (Asset, error) {
	a, err := assetOf(ctx, b.js, "KV_"+Bucket)
	a.Name = Bucket
	return a, err
}

// List returns the bans in force in the bucket, in key order; values that are not bans are
// left out.
func (b *Bans) List(ctx context.Context) ([]Ban, error) {
	var out []Ban
	if _, err := b.inForce(ctx, new(valueReader), func(c Change) {
		if !c.Unban {
			out = append(out, c.Ban)
		}
	}, nil); err != nil {
		return nil, err
	}
	type keyed struct {
		key string
		ban Ban
	}
	ks := make([]keyed, len(out)) // each key made once, not once per comparison
	for i, x := range out {
		ks[i] = keyed{Key(x.Jail, x.Prefix), x}
	}
	slices.SortFunc(ks, func(x, y keyed) int { return strings.Compare(x.key, y.key) })
	for i := range ks {
		out[i] = ks[i].ban
	}
	return out, nil
}

// StreamStatus is the failures stream's state and its partitions'.
func (f *Failures) StreamStatus(ctx context.Context) (Asset, []PartState, error) {
	a, err := assetOf(ctx, f.js, Stream)
	if err != nil {
		return a, nil, err
	}
	var parts []PartState
	for p := range f.parts {
		c, err := f.js.Consumer(ctx, Stream, "p"+strconv.Itoa(p))
		if err != nil {
			return a, parts, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return a, parts, err
		}
		ps := PartState{Part: p, Lag: info.NumPending, AckPending: info.NumAckPending}
		for _, g := range info.PriorityGroups {
			if g.Group == deciderGroup {
				ps.PinnedID = g.PinnedClientID
			}
		}
		mine, _ := f.pins.Load(p)
		ps.Here = ps.PinnedID != "" && mine == ps.PinnedID
		if ps.PinnedID != "" {
			if e, err := f.names.Get(ctx, ps.PinnedID); err == nil {
				ps.Decider = string(e.Value())
			}
		}
		parts = append(parts, ps)
	}
	return a, parts, nil
}

// Transient reports whether err is what a clustered fleet answers while it elects a leader or
// is too busy to answer in time (no responders, a timeout, HTTP-like code 503): worth asking again
// shortly, where a lasting fault is not.
func Transient(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &api) && api.Code == 503
}
