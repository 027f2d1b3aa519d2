package sink

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/store"
)

// A batch reaches the kernel as its net effect, key by key.
func TestNetEffect(t *testing.T) {
	const now = 1000
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	ban := func(s string, end int64) Change {
		return Change{Ban: store.Ban{Jail: "sshd", Prefix: p(s), End: end}, Kernel: true}
	}
	unban := func(s string) Change {
		return Change{Unban: true, Ban: store.Ban{Jail: "sshd", Prefix: p(s)}, Kernel: true}
	}
	expiry := func(s string) Change { return Change{Unban: true, Ban: store.Ban{Jail: "sshd", Prefix: p(s)}} }
	show := func(els []Element) []string {
		var out []string
		for _, e := range els {
			out = append(out, fmt.Sprintf("%s %v", e.Prefix, e.Timeout))
		}
		return out
	}
	for _, c := range []struct {
		name     string
		batch    []Change
		add, del []string
	}{
		{"ban", []Change{ban("192.0.2.1/32", now+60)}, []string{"192.0.2.1/32 1m0s"}, nil},
		{"forever", []Change{ban("192.0.2.1/32", 0)}, []string{"192.0.2.1/32 0s"}, nil},
		{"unban", []Change{unban("192.0.2.1/32")}, nil, []string{"192.0.2.1/32 0s"}},
		{"expiry: the kernel dropped it", []Change{expiry("192.0.2.1/32")}, nil, nil},
		{"a ban already over", []Change{ban("192.0.2.1/32", now)}, nil, nil},
		{"aggregated in the same batch", []Change{ban("2001:db8::1/128", now+60), unban("2001:db8::1/128"), ban("2001:db8::/56", now+60)},
			[]string{"2001:db8::/56 1m0s"}, nil},
		// A prolonged ban: the element is replaced, as adding over it keeps the old timeout.
		{"lifted and banned again", []Change{unban("192.0.2.1/32"), ban("192.0.2.1/32", now+120)}, []string{"192.0.2.1/32 2m0s"}, []string{"192.0.2.1/32 0s"}},
		{"lifted, banned, lifted", []Change{unban("192.0.2.1/32"), ban("192.0.2.1/32", now+60), unban("192.0.2.1/32")}, nil, []string{"192.0.2.1/32 0s"}},
		{"lifted, then a ban already over", []Change{unban("192.0.2.1/32"), ban("192.0.2.1/32", now)}, nil, []string{"192.0.2.1/32 0s"}},
	} {
		add, del := NetEffect(c.batch, now)
		if !slices.Equal(show(add), c.add) || !slices.Equal(show(del), c.del) {
			t.Errorf("%s: add %v del %v, want add %v del %v", c.name, show(add), show(del), c.add, c.del)
		}
	}
}
