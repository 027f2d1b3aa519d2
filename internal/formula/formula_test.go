package formula

import (
	"math"
	"testing"
)

func TestFormula(t *testing.T) {
	f := func(expr string, v Vars, want float64) {
		t.Helper()
		fm, err := Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fm.Eval(v)
		if err != nil || math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Fatalf("%s with %+v = %v, %v; want %v", expr, v, got, err, want)
		}
	}
	// fail2ban's default: doubling per previous ban, capped at 2^20.
	for count, want := range map[float64]float64{0: 600, 1: 1200, 2: 2400, 5: 19200, 20: 600 * (1 << 20), 25: 600 * (1 << 20)} {
		f(Default, Vars{Time: 600, Count: count, Factor: 1}, want)
	}
	f(Default, Vars{Time: 600, Count: 1, Factor: 3}, 3600)
	// The exponential example from fail2ban's jail.conf.
	f("ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)", Vars{Time: 600, Count: 2, Factor: 1}, 600*math.Exp(2))
	f("-2 ** 2 + 10 // 3 % 2 + (1 if 0 else 7)", Vars{}, -4+1+7)
	f("max(ban.Time, 60, 3600) + min(1, 2)", Vars{Time: 600}, 3601)
	for _, bad := range []string{"", "ban.Time +", "__import__('os')", "open(1)", "ban.Time if 1", "1/0", "ban.Secret", "(1"} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
