package pipeline

import (
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/sink"
	"github.com/portcullis/portcullis/web"
)

// The status page's data (web.Data): per-minute rings sampled from the counters the stages keep
// anyway (no per-line cost: one read of each jail's counters a second, by the housekeeping), and
// the recent bans and unbans as the applier commits them (statusSink).

const (
	ringMinutes = 24 * 60 // a day, a slot a minute
	maxEvents   = 10_000  // the timeline and the last day's top offenders
	maxEvidence = 10_000  // bans whose lines the page can show
	maxPageBans = 1_000   // the newest bans in force the API lists
)

// activity is the per-minute rings. Slot i holds the minute starting at minute(i); the current
// minute's value is the counter now minus base.
type activity struct {
	mu       sync.Mutex
	minute   int64 // the current minute (unix seconds / 60)
	slot     int   // its slot
	lines    [ringMinutes]uint64
	failures map[string]*[ringMinutes]uint64
	bans     map[string]*[ringMinutes]uint64
	base     counters
}

type counters struct {
	lines          uint64
	failures, bans map[string]uint64
}

func readCounters(eng *engine) counters {
	c := counters{lines: eng.lines.Load(), failures: make(map[string]uint64, len(eng.jails)), bans: make(map[string]uint64, len(eng.jails))}
	for id, j := range eng.jails {
		c.failures[j.Name] = eng.m.Stats[id].Matched.Load()
		c.bans[j.Name] = eng.bans.Stats[id].Bans.Load()
	}
	return c
}

// tick closes the minutes that have passed since the last tick: their counts go into their
// slots (minutes with no tick at all get nothing), the current one starts from now's counters.
func (a *activity) tick(now time.Time, eng *engine) {
	m := now.Unix() / 60
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failures == nil {
		a.failures, a.bans = map[string]*[ringMinutes]uint64{}, map[string]*[ringMinutes]uint64{}
		a.minute = m // the first minute counts everything since the start (the counters start at 0)
		return
	}
	if m == a.minute {
		return
	}
	c := readCounters(eng)
	a.put(c)
	for step := min(m-a.minute, ringMinutes); step > 0; step-- { // the minutes in between: nothing counted
		a.slot = (a.slot + 1) % ringMinutes
		a.clearSlot()
	}
	a.minute, a.base = m, c
}

// put writes the current minute's counts (c minus base) into its slot.
func (a *activity) put(c counters) {
	a.lines[a.slot] = c.lines - min(a.base.lines, c.lines)
	for name, v := range c.failures {
		ring(a.failures, name)[a.slot] = v - min(a.base.failures[name], v)
	}
	for name, v := range c.bans {
		ring(a.bans, name)[a.slot] = v - min(a.base.bans[name], v)
	}
}

func (a *activity) clearSlot() {
	a.lines[a.slot] = 0
	for _, r := range a.failures {
		r[a.slot] = 0
	}
	for _, r := range a.bans {
		r[a.slot] = 0
	}
}

func ring(m map[string]*[ringMinutes]uint64, name string) *[ringMinutes]uint64 {
	r := m[name]
	if r == nil {
		r = new([ringMinutes]uint64)
		m[name] = r
	}
	return r
}

// ordered copies r oldest first, the current minute last.
func (a *activity) ordered(r *[ringMinutes]uint64) []uint64 {
	if r == nil {
		return make([]uint64, ringMinutes)
	}
	out := make([]uint64, 0, ringMinutes)
	out = append(out, r[a.slot+1:]...)
	return append(out, r[:a.slot+1]...)
}

// recent is the timeline: the last maxEvents bans and unbans, and the lines of the last
// maxEvidence bans.
type recent struct {
	mu       sync.Mutex
	events   []event // a ring: next is where the next one goes
	next     int
	evidence map[banKey][]string
	keys     []banKey // evidence's keys, oldest first (a FIFO bounded by maxEvidence)
}

// event is a timeline entry as kept; web.Event is its form in the API.
type event struct {
	time             int64
	op, jail, reason string
	prefix           netip.Prefix
}

func (e event) web() web.Event {
	return web.Event{Time: e.time, Op: e.op, Jail: e.jail, Prefix: sink.PrefixString(e.prefix), Reason: e.reason}
}

// banKey names a ban by its jail's name: a map key that costs no allocation.
type banKey struct {
	jail   string
	prefix netip.Prefix
}

// statusSink feeds the timeline as the applier commits: every ban and unban but the halves of a
// prolongation and the fleet's bans in force applied as a node joins (Bulk).
type statusSink struct{ r *recent }

func (statusSink) Name() string { return "status" }

func (s statusSink) Apply(batch []sink.Change, now int64) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, c := range batch {
		if ban.Extends(c.Reason) || c.Bulk {
			continue
		}
		op, t := "ban", c.Ban.Start
		if c.Unban {
			op, t = "unban", now
		}
		e := event{time: t, op: op, jail: c.Ban.Jail, prefix: c.Ban.Prefix, reason: c.Reason}
		if len(s.r.events) < maxEvents {
			s.r.events = append(s.r.events, e)
		} else {
			s.r.events[s.r.next] = e
		}
		s.r.next = (s.r.next + 1) % maxEvents
		k := banKey{c.Ban.Jail, c.Ban.Prefix}
		if c.Unban {
			delete(s.r.evidence, k)
			continue
		}
		if c.Evidence == nil || len(c.Evidence.Matches) == 0 {
			continue
		}
		if s.r.evidence == nil {
			s.r.evidence = map[banKey][]string{}
		}
		if _, ok := s.r.evidence[k]; !ok {
			s.r.keys = append(s.r.keys, k)
		}
		s.r.evidence[k] = slices.Clone(c.Evidence.Matches)
		for len(s.r.keys) > maxEvidence {
			delete(s.r.evidence, s.r.keys[0])
			s.r.keys = s.r.keys[1:]
		}
	}
	return nil
}

// eventsNewestFirst copies up to limit events.
func (r *recent) eventsNewestFirst(limit int) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]event, 0, min(limit, len(r.events)))
	for i := 1; i <= len(r.events) && len(out) < limit; i++ {
		out = append(out, r.events[(r.next-i+len(r.events))%len(r.events)])
	}
	return out
}

// nodeName is the page's title: the fleet name, else the host's.
func (d *Daemon) nodeName() string {
	if l := d.fleet.Load(); l != nil {
		return l.name
	}
	h, _ := os.Hostname()
	return h
}

// Summary implements web.Data.
func (d *Daemon) Summary() web.Summary {
	eng := d.current()
	now := d.opts.Now()
	a := &d.activity
	a.tick(now, eng)
	c := readCounters(eng)
	a.mu.Lock()
	a.put(c) // the minute in progress, as it stands
	s := web.Summary{Node: d.nodeName(), Now: now.Unix(), Uptime: int64(now.Sub(d.started).Seconds()), Lines: a.ordered(&a.lines)}
	first := (a.minute - ringMinutes + 1) * 60
	for i := range ringMinutes {
		s.Minutes = append(s.Minutes, first+int64(i)*60)
	}
	active := make([]int, len(eng.jails))
	for _, x := range eng.bans.Active(0, true) {
		active[x.Jail]++
	}
	for id, j := range eng.jails {
		wj := web.Jail{Name: j.Name, Failures: a.ordered(a.failures[j.Name]), Bans: a.ordered(a.bans[j.Name]), Banned: active[id]}
		wj.Total.Failures, wj.Total.Bans = c.failures[j.Name], c.bans[j.Name]
		s.Summary.Failures += wj.Total.Failures
		s.Summary.Bans += wj.Total.Bans
		s.Summary.Banned += uint64(active[id])
		s.Jails = append(s.Jails, wj)
	}
	a.mu.Unlock()
	s.Summary.Lines = c.lines
	for _, src := range eng.sources {
		st := src.src.Stats
		s.Sources = append(s.Sources, web.Source{Name: src.pattern, Lines: st.Lines.Load(), Bytes: st.Bytes.Load(),
			Skipped: st.Overlong.Load() + st.Binary.Load() + st.Malformed.Load()})
	}
	if sl := eng.syslog; sl != nil {
		s.Sources = append(s.Sources, web.Source{Name: "syslog", Lines: sl.Stats.Messages.Load(), Dropped: sl.Stats.Dropped.Load(),
			Skipped: sl.Stats.Oversized.Load() + sl.Stats.Denied.Load(), Connected: sl.Stats.Conns.Load()})
	}
	if l := d.fleet.Load(); l != nil {
		f := &web.Fleet{Connected: l.nc.IsConnected(), Published: l.stats.published.Load(), Applied: l.stats.applied.Load(), Decided: l.stats.decided.Load()}
		if f.Connected {
			f.Server = l.nc.ConnectedUrlRedacted()
		}
		s.Fleet = f
	}
	return s
}

// Bans implements web.Data: the newest maxPageBans bans in force, with their lines.
func (d *Daemon) Bans() []web.Ban {
	eng := d.current()
	list := eng.bans.Active(0, true)
	sort.Slice(list, func(i, j int) bool { return list[i].Start > list[j].Start })
	list = list[:min(len(list), maxPageBans)]
	inFleet := d.fleet.Load() != nil
	node := d.nodeName()
	out := make([]web.Ban, 0, len(list))
	for _, a := range list {
		jail := eng.jails[a.Jail].Name
		b := web.Ban{Jail: jail, Prefix: sink.PrefixString(a.Prefix), Start: a.Start, End: a.End, Count: a.Count, Origin: node}
		if inFleet {
			if sb, ok, _ := d.store.Ban(jail, a.Prefix); ok && sb.Fleet { // the store marks the fleet's
				b.Origin = "fleet"
			}
		}
		out = append(out, b)
	}
	d.recent.mu.Lock()
	defer d.recent.mu.Unlock()
	for i := range out {
		out[i].Evidence = slices.Clone(d.recent.evidence[banKey{out[i].Jail, list[i].Prefix}])
		if out[i].Evidence == nil {
			out[i].Evidence = []string{}
		}
	}
	return out
}

// Events implements web.Data.
func (d *Daemon) Events(limit int) []web.Event {
	evs := d.recent.eventsNewestFirst(limit)
	out := make([]web.Event, len(evs))
	for i, e := range evs {
		out[i] = e.web()
	}
	return out
}

// Top implements web.Data: the addresses and the networks (/24, /64) banned most over the last
// day, ten of each.
func (d *Daemon) Top() web.Top {
	since := d.opts.Now().Add(-24 * time.Hour).Unix()
	addrs, nets := map[string]int{}, map[string]int{}
	for _, e := range d.recent.eventsNewestFirst(maxEvents) {
		if e.op != "ban" || e.time < since {
			continue
		}
		p := e.prefix
		addrs[sink.PrefixString(p)]++
		bits := 24
		if p.Addr().Is6() {
			bits = 64
		}
		if p.Bits() > bits {
			n, _ := p.Addr().Prefix(bits)
			nets[n.String()]++
		}
	}
	return web.Top{Addresses: topOf(addrs), Networks: topOf(nets)}
}

func topOf(m map[string]int) []web.Count {
	out := make([]web.Count, 0, len(m))
	for k, n := range m {
		out = append(out, web.Count{Key: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out[:min(len(out), 10)]
}
