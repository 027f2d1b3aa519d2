package sink

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/store"
)

// The log sink says every ban and unban on a line of its own, except those of a bulk (the fleet's
// bans in force as a node joins), which the daemon sums up in one line.
func TestLogLeavesBulkOut(t *testing.T) {
	var out bytes.Buffer
	l := Log{L: slog.New(slog.NewTextHandler(&out, nil))}
	b := func(a string) store.Ban {
		return store.Ban{Jail: "sshd", Prefix: netip.MustParsePrefix(a), Start: 1, End: 2}
	}
	l.Apply([]Change{{Ban: b("192.0.2.1/32"), Reason: "failures"}, {Ban: b("192.0.2.2/32"), Reason: "fleet", Bulk: true},
		{Unban: true, Ban: b("192.0.2.3/32"), Reason: "manual"}}, 0)
	got := out.String()
	if strings.Count(got, "\n") != 2 || !strings.Contains(got, "192.0.2.1/32") || !strings.Contains(got, "192.0.2.3/32") || strings.Contains(got, "192.0.2.2") {
		t.Fatalf("log:\n%s", got)
	}
}
