// Package sinktest is an in-memory firewall for unit tests of everything above the kernel: it
// keeps the sets a real table would hold (elements expire by their timeouts, on its clock) and
// records every transaction, so a test can assert both the state and how it was reached. The
// namespace system tests prove the same paths against nftables itself.
package sinktest

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/portcullis/portcullis/sink"
)

// Firewall implements sink.Firewall in memory. It is safe for concurrent use.
type Firewall struct {
	// Now is the clock for element timeouts; time.Now when nil. Set it before first use.
	Now func() time.Time

	mu      sync.Mutex
	jails   map[string]sink.JailSpec
	sets    map[string]map[netip.Prefix]time.Time // jail -> prefix -> deadline (zero: none)
	applied []Transaction
	builds  int
	watch   func()
	// Fail, when set, is returned by the next Apply and Build, which then change nothing.
	fail error
}

// Transaction is one Apply: what it added and removed.
type Transaction struct{ Add, Del []sink.Element }

var _ sink.Firewall = (*Firewall)(nil)

func (f *Firewall) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Firewall) Build(jails []sink.JailSpec, elems []sink.Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.builds++
	f.jails = make(map[string]sink.JailSpec, len(jails))
	f.sets = make(map[string]map[netip.Prefix]time.Time, len(jails))
	for _, j := range jails {
		f.jails[j.Name] = j
		f.sets[j.Name] = map[netip.Prefix]time.Time{}
	}
	return f.addLocked(elems)
}

func (f *Firewall) addLocked(elems []sink.Element) error {
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

func (f *Firewall) Apply(add, del []sink.Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if len(add) == 0 && len(del) == 0 {
		return nil
	}
	f.applied = append(f.applied, Transaction{Add: slices.Clone(add), Del: slices.Clone(del)})
	for _, e := range del {
		if set, ok := f.sets[e.Jail]; ok {
			delete(set, e.Prefix)
		}
	}
	return f.addLocked(add)
}

func (f *Firewall) Present() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets != nil, nil
}

func (f *Firewall) Elements(jail string) ([]netip.Prefix, error) {
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
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out, nil
}

func (f *Firewall) WatchDeletes(changed func()) (func(), error) {
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
func (f *Firewall) Delete(jail string, p netip.Prefix) {
	f.mu.Lock()
	delete(f.sets[jail], p)
	w := f.watch
	f.mu.Unlock()
	if w != nil {
		w()
	}
}

// Flush drops the whole table, as nft flush ruleset would, and tells the watcher.
func (f *Firewall) Flush() {
	f.mu.Lock()
	f.sets, f.jails = nil, nil
	w := f.watch
	f.mu.Unlock()
	if w != nil {
		w()
	}
}

// Transactions returns a copy of every Apply so far, in order.
func (f *Firewall) Transactions() []Transaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

// Builds counts the table builds so far.
func (f *Firewall) Builds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.builds
}

// FailWith makes every Apply and Build fail with err until it is called with nil.
func (f *Firewall) FailWith(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}
