package matcher

import (
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/ingest"
)

func noiseLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		switch i % 4 {
		case 0:
			out[i] = fmt.Sprintf("Nov 24 10:01:%02d web1 CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", i%60, 1000+i)
		case 1:
			out[i] = fmt.Sprintf("Nov 24 10:01:%02d web1 sshd[%d]: Accepted publickey for deploy from 198.51.100.%d port %d ssh2: ED25519 SHA256:abcdef", i%60, 2000+i, i%250, 40000+i)
		case 2:
			out[i] = fmt.Sprintf("Nov 24 10:01:%02d web1 systemd-logind[%d]: New session %d of user deploy.", i%60, 300, i)
		default:
			out[i] = fmt.Sprintf("Nov 24 10:01:%02d web1 sshd[%d]: Received disconnect from 198.51.100.%d port %d:11: disconnected by user", i%60, 2000+i, i%250, 40000+i)
		}
	}
	return out
}

// The hot path allocates per block (the cgo call), never per non-matching line: a block 100 times
// longer costs the same allocations.
func TestMatchAllocationsDoNotGrowWithLines(t *testing.T) {
	m := newMatcher(t, JailSpec{ID: 0, Name: "sshd", Filter: shippedSSHD(t)})
	w := newWorker(t, m)
	small := block(ingest.NewJailSet(0), noiseLines(10)...)
	large := block(ingest.NewJailSet(0), noiseLines(1000)...)
	var dst []Event
	measure := func(b *ingest.Block) float64 {
		return testing.AllocsPerRun(50, func() {
			dst, _ = w.Match(b, dst[:0])
			if len(dst) != 0 {
				t.Fatalf("noise matched: %+v", dst)
			}
		})
	}
	a10, a1000 := measure(small), measure(large)
	if a1000 > a10 {
		t.Fatalf("allocations grow with non-matching lines: %v for 10 lines, %v for 1000", a10, a1000)
	}
	if a10 > 4 {
		t.Fatalf("%v allocations per block; want a handful at most (the cgo handle)", a10)
	}
}
