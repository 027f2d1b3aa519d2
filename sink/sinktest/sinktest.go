// Package sinktest is an in-memory firewall for unit tests of everything above the kernel:
// sink.Memory (the sets a real table would hold, elements expiring by their timeouts on its
// clock) that also records every transaction and can be made to fail, so a test can assert both
// the state and how it was reached. The namespace system tests prove the same paths against
// nftables itself.
package sinktest

import (
	"slices"
	"sync"

	"github.com/portcullis/portcullis/sink"
)

// Firewall implements sink.Firewall in memory. It is safe for concurrent use.
type Firewall struct {
	sink.Memory

	mu      sync.Mutex
	applied []Transaction
	builds  int
	// fail, when set, is returned by the next Apply and Build, which then change nothing.
	fail error
}

// Transaction is one Apply: what it added and removed.
type Transaction struct{ Add, Del []sink.Element }

var _ sink.Firewall = (*Firewall)(nil)

func (f *Firewall) Build(jails []sink.JailSpec, elems []sink.Element) error {
	f.mu.Lock()
	if f.fail != nil {
		defer f.mu.Unlock()
		return f.fail
	}
	f.builds++
	f.mu.Unlock()
	return f.Memory.Build(jails, elems)
}

func (f *Firewall) Apply(add, del []sink.Element) error {
	f.mu.Lock()
	if f.fail != nil {
		defer f.mu.Unlock()
		return f.fail
	}
	if len(add) > 0 || len(del) > 0 {
		f.applied = append(f.applied, Transaction{Add: slices.Clone(add), Del: slices.Clone(del)})
	}
	f.mu.Unlock()
	return f.Memory.Apply(add, del)
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
