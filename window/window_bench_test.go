package window

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"unsafe"

	"github.com/portcullis/portcullis/matcher"
)

// BenchmarkAdd adds batches of 256 events spread over a key space of the given size, from every
// core at once (RunParallel), as the pipeline's workers do. Bytes are the events' own (a batch of
// 256 matcher.Events per operation).
func BenchmarkAdd(b *testing.B) {
	for _, keys := range []int{1, 1000, 1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			w := New([]JailParams{{MaxRetry: 5, FindTime: 600}}, Options{MaxKeys: 2 * keys})
			b.SetBytes(256 * int64(unsafe.Sizeof(matcher.Event{})))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				a := w.NewAdder(nil)
				events := make([]matcher.Event, 256)
				var dst []Crossing
				i := 0
				for pb.Next() {
					for j := range events {
						k := (i*256 + j) % keys
						events[j] = matcher.Event{Jail: 0, Time: int64(i), Addr: netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})}
					}
					dst = a.Add(events, dst[:0])
					i++
				}
			})
			b.ReportMetric(float64(b.N)*256/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkMemoryPerKey holds 1M and 10M distinct IPv6 addresses, one failure each, at maxretry 5
// (inline rings) and 1000 (buckets), and reports the heap bytes per tracked key.
func BenchmarkMemoryPerKey(b *testing.B) {
	for _, tc := range []struct{ keys, maxRetry int }{{1_000_000, 5}, {10_000_000, 5}, {1_000_000, 1000}} {
		keys := tc.keys
		b.Run(fmt.Sprintf("keys=%d/maxretry=%d", keys, tc.maxRetry), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				w := New([]JailParams{{MaxRetry: tc.maxRetry, FindTime: 600}}, Options{MaxKeys: 2 * keys})
				a := w.NewAdder(nil)
				events := make([]matcher.Event, 1024)
				for k := 0; k < keys; k += len(events) {
					for j := range events {
						n := k + j
						events[j] = matcher.Event{Jail: 0, Time: 1, Addr: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8: byte(n >> 24), 9: byte(n >> 16), 10: byte(n >> 8), 11: byte(n), 15: 1})}
					}
					a.Add(events, nil)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(w.Tracked.Load()), "bytes/key")
				runtime.KeepAlive(w)
			}
		})
	}
}
