package tzenv

import (
	"testing"
	"time"
)

func TestFromRule(t *testing.T) {
	loc, err := FromRule("CET-01CEST-02,M3.5.0,M10.5.0")
	if err != nil {
		t.Fatal(err)
	}
	f := func(unix int64, wantOff int, wantName string) {
		t.Helper()
		name, off := time.Unix(unix, 0).In(loc).Zone()
		if off != wantOff || name != wantName {
			t.Fatalf("%d: %s %d, want %s %d", unix, name, off, wantName, wantOff)
		}
	}
	f(1124013600, 7200, "CEST") // fail2ban's test clock: 2005-08-14 12:00 CEST
	f(1104537600, 3600, "CET")  // 2005-01-01
	est, err := FromRule("EST5EDT,M3.2.0,M11.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, off := time.Date(2026, 7, 1, 12, 0, 0, 0, est).Zone(); off != -4*3600 {
		t.Fatalf("EDT offset %d", off)
	}
	if _, err := FromRule("??"); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("TZ", "Europe/Berlin")
	if FromEnv() != nil {
		t.Fatal("a zone name Go loads itself must be left to Go")
	}
	t.Setenv("TZ", "CET-01CEST-02,M3.5.0,M10.5.0")
	if loc := FromEnv(); loc == nil {
		t.Fatal("POSIX rule not loaded")
	}
}
