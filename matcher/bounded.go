package matcher

import (
	"runtime"
	"time"

	"github.com/dlclark/regexp2"
	"golang.org/x/sys/unix"
)

// regexp2Timeout bounds one backtracking match, so a hostile line cannot stall a worker.
const regexp2Timeout = 100 * time.Millisecond

// regexp2 bounds a match by wall-clock time (MatchTimeout), which a loaded machine reaches without
// the match having run: the scheduler held the thread off the CPU. find2 and match2 make it a bound
// on CPU time: a match that timed out having used less than regexp2Timeout of its thread's CPU is
// run again, so what matches never depends on the machine's load, and a line that really
// backtracks is given up after about twice regexp2Timeout of CPU. The fast path (no timeout) costs
// nothing more.
func find2(re *regexp2.Regexp, s string) (*regexp2.Match, error) {
	return bounded(func() (*regexp2.Match, error) { return re.FindStringMatch(s) })
}

func match2(re *regexp2.Regexp, s string) (bool, error) {
	return bounded(func() (bool, error) { return re.MatchString(s) })
}

// maxStarvedRetries caps the reruns of a match that keeps being held off the CPU.
const maxStarvedRetries = 50

func bounded[T any](run func() (T, error)) (T, error) {
	v, err := run()
	if err == nil { // regexp2's only error is its timeout
		return v, nil
	}
	// The first attempt's CPU use is unknown; from here on it is measured on a locked thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, ok := threadCPU()
	if !ok {
		return v, err
	}
	for range maxStarvedRetries {
		if v, err = run(); err == nil {
			return v, nil
		}
		if now, _ := threadCPU(); now-start >= regexp2Timeout {
			return v, err
		}
	}
	return v, err
}

func threadCPU() (time.Duration, bool) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
