package window

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/portcullis/portcullis/matcher"
)

// BenchmarkAdd adds batches of 256 events spread over a key space of the given size, from every
// core at once (RunParallel), as the pipeline's workers do.
func BenchmarkAdd(b *testing.B) {
	for _, keys := range []int{1, 1000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			w := New([]JailParams{{MaxRetry: 5, FindTime: 600}}, Options{MaxKeys: 2 * keys})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				a := w.NewAdder()
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
