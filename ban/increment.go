package ban

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/portcullis/portcullis/internal/formula"
)

var defaultFormula, _ = formula.Compile(formula.Default)

// banTime returns the ban length for an address banned count times before, as fail2ban's
// observer computes it (incrBanTime, setBanTimeExtra): a first ban is bantime as set; from the
// second on, bantime × factor × multipliers[count] (the last one for larger counts), or the
// formula but never less than bantime; then at most maxtime, plus up to rndtime at random.
func incrementedBanTime(in *Increment, base time.Duration, count uint32, rnd func(int64) int64) time.Duration {
	if !in.Enabled || base <= 0 || count == 0 {
		return base
	}
	factor := in.Factor
	if factor == 0 {
		factor = 1
	}
	secs := base.Seconds()
	if len(in.Multipliers) > 0 {
		i := min(int(count), len(in.Multipliers)-1)
		secs *= factor * in.Multipliers[i]
	} else {
		f := in.Formula
		if f == nil {
			f = defaultFormula
		}
		if v, err := f.Eval(formula.Vars{Time: secs, Count: float64(count), Factor: factor}); err == nil {
			secs = max(secs, v)
		}
	}
	d := time.Duration(math.Min(secs, float64(math.MaxInt64/2)/1e9) * float64(time.Second))
	if in.MaxTime > 0 && d > in.MaxTime {
		d = in.MaxTime
	}
	if in.RndTime > 0 && rnd != nil {
		d += time.Duration(rnd(int64(in.RndTime/time.Second)+1)) * time.Second
	}
	return d
}

// Weights implements window.Weigher with fail2ban's observer (failureFound): with
// bantime.increment, a failure of an address banned n times before in the jail (the last ban
// before the failure) counts 2^(n-1)+1 times, at most maxretry, so a known offender is banned
// again sooner. It takes the lock once per call, and not at all when no event's jail increments.
func (m *Manager) Weights(n int, at func(i int) (jail uint16, key netip.Prefix, t int64), dst []uint8) []uint8 {
	if !m.anyIncrement {
		return dst
	}
	locked := false
	for i := range n {
		jail, key, t := at(i)
		if int(jail) >= len(m.pols) || !m.pols[jail].Increment.Enabled {
			continue
		}
		if !locked {
			m.mu.Lock()
			defer m.mu.Unlock()
			locked = true
		}
		h, ok := m.histJail[bkey{prefix: key, jail: jail}]
		if !ok || h.Count == 0 || t <= h.Last {
			continue
		}
		if len(dst) < n { // 0: the event counts once
			dst = slices.Grow(dst[:0], n)[:n]
			clear(dst)
		}
		w := uint32(1)<<min(h.Count, 20)/2 + 1
		dst[i] = uint8(min(w, uint32(m.pols[jail].MaxRetry), 255))
	}
	return dst
}
