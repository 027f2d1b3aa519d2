package ban

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// IgnoreCommand is fail2ban's ignorecommand: a program asked, before each ban, whether an address
// is to be left alone — exit status 0 means ignore it, 1 means ban it. It runs without a shell
// (argv from the configured line, <ip> replaced by the address), with a timeout, and its answers
// are cached for a while (fail2ban's ignorecache), so a flood of crossings does not fork a
// process each.
type IgnoreCommand struct {
	Argv    []string      // with "<ip>" where the address goes
	Timeout time.Duration // 10 s when zero
	Cache   time.Duration // 5 min when zero
	MaxKeys int           // cached answers; 10,000 when zero

	mu    sync.Mutex
	cache map[netip.Addr]cached
}

type cached struct {
	ignore bool
	until  time.Time
}

// Ignore runs the command for addr (or answers from the cache). An error (the program could not
// run, timed out, or exited with neither 0 nor 1) means "do not ignore": protection first.
func (c *IgnoreCommand) Ignore(addr netip.Addr, now time.Time) (bool, error) {
	c.mu.Lock()
	if e, ok := c.cache[addr]; ok && now.Before(e.until) {
		c.mu.Unlock()
		return e.ignore, nil
	}
	c.mu.Unlock()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		argv[i] = strings.ReplaceAll(a, "<ip>", addr.String())
	}
	err := exec.CommandContext(ctx, argv[0], argv[1:]...).Run()
	var ignore bool
	var ee *exec.ExitError
	switch {
	case err == nil:
		ignore = true
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		ignore = false
	case ctx.Err() != nil:
		return false, fmt.Errorf("ignorecommand timed out after %v", timeout)
	default:
		return false, fmt.Errorf("ignorecommand: %v", err)
	}
	ttl, maxKeys := c.Cache, c.MaxKeys
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if maxKeys <= 0 {
		maxKeys = 10_000
	}
	c.mu.Lock()
	if c.cache == nil || len(c.cache) >= maxKeys {
		c.cache = make(map[netip.Addr]cached) // simple and bounded: start over when full
	}
	c.cache[addr] = cached{ignore: ignore, until: now.Add(ttl)}
	c.mu.Unlock()
	return ignore, nil
}
