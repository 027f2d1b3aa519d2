package sink

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Memory is a firewall that blocks nothing: it holds the sets a real table would hold (elements
// expire by their timeouts, on its clock), for `portcullis run --dry-run` and for tests
// (sinktest.Firewall). It is safe for concurrent use; expired elements are dropped when listed.
type Memory struct {
	// Now is the clock for element timeouts; time.Now when nil. Set it before first use.
	Now func() time.Time

	mu    sync.Mutex
	sets  map[string]map[netip.Prefix]time.Time // jail -> prefix -> deadline (zero: none)
	watch func()
}

var _ Firewall = (*Memory)(nil)

func (f *Memory) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Memory) Build(jails []JailSpec, elems []Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = make(map[string]map[netip.Prefix]time.Time, len(jails))
	for _, j := range jails {
		f.sets[j.Name] = map[netip.Prefix]time.Time{}
	}
	return f.addLocked(elems)
}

func (f *Memory) addLocked(elems []Element) error {
	now := f.now()
	for _, e := range elems {
		set, ok := f.sets[e.Jail]
		if !ok {
			return fmt.Errorf("no set for jail %q", e.Jail)
		}
		if d, in := set[e.Prefix]; in && (d.IsZero() || d.After(now)) {
			continue // as the kernel does: an element added over itself keeps its timeout
		}
		var deadline time.Time
		if e.Timeout > 0 {
			deadline = now.Add(e.Timeout)
		}
		set[e.Prefix] = deadline
	}
	return nil
}

func (f *Memory) Apply(add, del []Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range del {
		if set, ok := f.sets[e.Jail]; ok {
			delete(set, e.Prefix)
		}
	}
	return f.addLocked(add)
}

func (f *Memory) Present() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets != nil, nil
}

func (f *Memory) Elements(jail string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	set, ok := f.sets[jail]
	if !ok {
		return nil, fmt.Errorf("no set for jail %q", jail)
	}
	now := f.now()
	var out []netip.Prefix
	for p, d := range set {
		if d.IsZero() || d.After(now) {
			out = append(out, p)
		} else {
			delete(set, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out, nil
}

func (f *Memory) WatchDeletes(changed func()) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watch = changed
	return func() {
		f.mu.Lock()
		f.watch = nil
		f.mu.Unlock()
	}, nil
}

// Delete removes an element as an admin's nft delete element would, and tells the watcher.
func (f *Memory) Delete(jail string, p netip.Prefix) {
	f.mu.Lock()
	delete(f.sets[jail], p)
	w := f.watch
	f.mu.Unlock()
	if w != nil {
		w()
	}
}

// Flush drops the whole table, as nft flush ruleset would, and tells the watcher.
func (f *Memory) Flush() {
	f.mu.Lock()
	f.sets = nil
	w := f.watch
	f.mu.Unlock()
	if w != nil {
		w()
	}
}
