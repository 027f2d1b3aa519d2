package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/portcullis/portcullis/ban"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/store"
)

// Exec runs the executed actions of fail2ban's action.d (mail, whois, Cloudflare, AbuseIPDB, your
// own) as fail2ban runs them: each command through /bin/sh with the ban's tags, never in the way
// of a ban. Each (jail, action) has an ordered queue kept in Pebble: Stage turns a batch's bans
// and unbans into jobs that the applier commits with the bans themselves, so a crash between a
// ban and its mail loses no mail, and a restart resumes the queue. Queues run one job at a time
// each, at most Concurrency commands in all; a failed run is retried with backoff, up to
// MaxAttempts, each counted in portcullis_action_* metrics.
type Exec struct {
	st          *store.Store
	log         *slog.Logger
	concurrency chan struct{}
	set         *metrics.Set

	mu      sync.Mutex
	actions map[string]config.Action // queue name -> the action, from the configuration in force
	queues  map[string]*execQueue
	seq     uint64
	closed  bool
	// stopWithin bounds the unbans run at stop (stopQueue).
	stopWithin time.Duration
	wg         sync.WaitGroup
	stop       chan struct{}
}

// ExecOptions configure Exec.
type ExecOptions struct {
	Concurrency int // commands running at once, in every queue; 4 when zero
	Log         *slog.Logger
	Metrics     *metrics.Set // where portcullis_action_* go; none when nil
	// StopWithin bounds the time the actionunban runs at stop take, per action; 30 s when zero.
	StopWithin time.Duration
}

// MaxAttempts is how often a failing run is tried before it is given up (logged and counted).
const MaxAttempts = 5

// execJob is a queued run: a ban, unban, prolonged ban or re-ban of one (jail, action).
type execJob struct {
	Unban bool `json:"unban,omitempty"`
	// Key is the command to run when not actionban or actionunban: actionprolong, actionreban.
	Key      string    `json:"key,omitempty"`
	Restored bool      `json:"restored,omitempty"` // a ban restored at start: <restored> is 1
	Queued   int64     `json:"queued,omitempty"`   // unix seconds, for digests
	Change   jobChange `json:"change"`
	Attempts int       `json:"attempts,omitempty"`
}

// jobChange is what of a Change a job needs, as stored.
type jobChange struct {
	Jail     string            `json:"jail"`
	Prefix   string            `json:"prefix"`
	Start    int64             `json:"start"`
	End      int64             `json:"end"`
	Count    uint32            `json:"count"`
	Failures int               `json:"failures,omitempty"`
	Matches  []string          `json:"matches,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"` // the filter's captures: <F-*>
}

// key is the command the job runs.
func (j *execJob) key() string {
	switch {
	case j.Key != "":
		return j.Key
	case j.Unban:
		return "actionunban"
	}
	return "actionban"
}

type execQueue struct {
	name string
	wake chan struct{}
	// What the queue's goroutine has done, per family (0 inet4, 1 inet6), as fail2ban's
	// __started: actionstart run (the command, so one the other family ran is not run twice),
	// and whether a ban was run since, so stopping unbans only what it banned.
	started [2]string
	items   [2]bool
	depth   int // jobs stored, for the queue-depth gauge; under Exec.mu
}

var families = [2]string{"inet4", "inet6"}

// familyOf is a ban's <family>: inet6 for IPv6 networks and addresses, inet4 for the rest.
func familyOf(p netip.Prefix) string {
	if p.Addr().Is6() && !p.Addr().Is4In6() {
		return "inet6"
	}
	return "inet4"
}

func famIndex(f string) int {
	if f == "inet6" {
		return 1
	}
	return 0
}

// NewExec starts the queues the store still holds jobs for (a restart resumes them).
func NewExec(st *store.Store, o ExecOptions) (*Exec, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.StopWithin <= 0 {
		o.StopWithin = 30 * time.Second
	}
	e := &Exec{st: st, log: o.Log, concurrency: make(chan struct{}, o.Concurrency), set: o.Metrics,
		actions: map[string]config.Action{}, queues: map[string]*execQueue{}, stop: make(chan struct{}),
		seq: uint64(time.Now().UnixNano()), stopWithin: o.StopWithin}
	return e, nil
}

func (*Exec) Name() string { return "actions" }

// QueueName is the queue of a jail's action.
func QueueName(jail string, a *config.Action) string {
	n := a.Args["actname"]
	if n == "" {
		n = a.Name
	}
	return jail + "/" + n
}

// SetJails takes the executed actions of the configuration in force (at start and on reload) and
// starts every queue, resuming the jobs stored for it. Jobs of an action no longer configured are
// dropped with a warning when their queue runs.
func (e *Exec) SetJails(jails []*config.Jail) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.actions = map[string]config.Action{}
	for _, j := range jails {
		for i := range j.Actions {
			if a := j.Actions[i]; a.Kind == config.ActionExec || a.Kind == config.ActionWebhook || a.Kind == config.ActionSMTP {
				e.actions[QueueName(j.Name, &a)] = a
			}
		}
	}
	names, err := e.st.JobQueues()
	if err != nil {
		return err
	}
	for q := range e.actions {
		names = append(names, q)
	}
	for _, q := range names {
		e.queueLocked(q)
	}
	for _, q := range e.queues {
		e.wakeLocked(q)
	}
	return nil
}

func (e *Exec) queueLocked(name string) *execQueue {
	if q := e.queues[name]; q != nil {
		return q
	}
	q := &execQueue{name: name, wake: make(chan struct{}, 1)}
	_ = e.st.Jobs(name, func(store.Job) bool { q.depth++; return true })
	e.queues[name] = q
	e.gaugeLocked(q)
	e.wg.Add(1)
	go e.run(q)
	return q
}

func (e *Exec) wakeLocked(q *execQueue) {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Stage turns the batch's bans and unbans into a job per executed action of their jail. A prolonged
// ban (lifted and banned again in one go) runs only actionprolong where an action has one, as in
// fail2ban.
func (e *Exec) Stage(batch []Change) []store.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	var jobs []store.Job
	for _, c := range batch {
		key := "actionban"
		switch {
		case ban.FromFleet(c.Reason):
			continue // another node decided it and runs its actions: a mail goes out once
		case c.Reason == ban.Prolonged && c.Unban:
			continue
		case c.Reason == ban.Prolonged:
			key = "actionprolong"
		case c.Unban:
			key = "actionunban"
		}
		fam := familyOf(c.Ban.Prefix)
		for q, a := range e.actions {
			if !strings.HasPrefix(q, c.Ban.Jail+"/") {
				continue
			}
			switch {
			case a.Webhook != nil:
				if key == "actionprolong" {
					continue
				}
			case a.SMTP != nil:
				if key != "actionban" {
					continue
				}
			case a.Command(key, fam) == "":
				continue
			}
			jc := jobChange{Jail: c.Ban.Jail, Prefix: c.Ban.Prefix.String(), Start: c.Ban.Start, End: c.Ban.End, Count: c.Ban.Count}
			if ev := c.Evidence; ev != nil {
				jc.Failures, jc.Matches, jc.Fields = ev.Failures, ev.Matches, ev.Fields
			}
			// Bans taken over from fail2ban are restored bans: norestored actions skip them.
			job := execJob{Unban: c.Unban, Change: jc, Queued: time.Now().Unix(), Restored: c.Reason == ban.Imported}
			if job.Restored && a.NoRestored {
				continue
			}
			if key == "actionprolong" {
				job.Key = key
			}
			data, _ := json.Marshal(job)
			e.seq++
			jobs = append(jobs, store.Job{Queue: q, Seq: e.seq, Data: data})
			e.addDepthLocked(q, 1)
		}
	}
	return jobs
}

// StageRestored makes the jobs of the bans restored at start: fail2ban runs actionban again for
// each, with <restored> 1, in every action that does not set norestored (mail and report actions
// do; a Cloudflare or hosts.deny action puts its entry back).
func (e *Exec) StageRestored(bans []store.Ban) []store.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	var jobs []store.Job
	for _, b := range bans {
		for q, a := range e.actions {
			if !strings.HasPrefix(q, b.Jail+"/") || a.NoRestored || a.Command("actionban", familyOf(b.Prefix)) == "" {
				continue
			}
			data, _ := json.Marshal(execJob{Restored: true, Change: jobChange{Jail: b.Jail, Prefix: b.Prefix.String(), Start: b.Start, End: b.End, Count: b.Count}})
			e.seq++
			jobs = append(jobs, store.Job{Queue: q, Seq: e.seq, Data: data})
			e.addDepthLocked(q, 1)
		}
	}
	return jobs
}

// Apply wakes the queues: the batch's jobs are in the store by now.
func (e *Exec) Apply(batch []Change, _ int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, q := range e.queues {
		e.wakeLocked(q)
	}
	return nil
}

// Close stops the queues after the runs in progress and runs each started action's actionstop.
// Jobs not yet run stay in the store for the next start.
func (e *Exec) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	close(e.stop)
	e.mu.Unlock()
	e.wg.Wait()
}

// run is one queue's goroutine: the oldest job first, one at a time.
func (e *Exec) run(q *execQueue) {
	defer e.wg.Done()
	defer e.stopQueue(q)
	// As fail2ban: actionstart for both families when the jail starts, unless
	// actionstart_on_demand defers each to its family's first ban.
	if a, ok := e.action(q.name); ok && !a.StartOnDemand {
		for _, f := range families {
			e.start(q, a, f)
		}
	}
	for {
		for {
			select {
			case <-e.stop:
				return // the jobs not run stay stored for the next start
			default:
			}
			job, ok := e.next(q)
			if !ok {
				break
			}
			if a, ok := e.action(q.name); ok && a.Digest > 0 {
				if !e.runDigest(q, a, job) {
					return // stopping
				}
				continue
			}
			if !e.runJob(q, job) {
				return // stopping
			}
		}
		select {
		case <-e.stop:
			return
		case <-q.wake:
		}
	}
}

// start runs the action's actionstart for family unless it ran already, or the other family ran
// the same command (fail2ban runs a command shared by both families once).
func (e *Exec) start(q *execQueue, a config.Action, family string) {
	i := famIndex(family)
	if q.started[i] != "" {
		return
	}
	cmd := a.Command("actionstart", family)
	q.started[i] = cmd + "\x00" // started, even with no command
	if cmd == "" || q.started[1-i] == q.started[i] {
		return
	}
	if err := e.exec(q.name, "actionstart", cmd, BanTags{"family": family}, a.Timeout); err != nil {
		e.log.Warn("actionstart failed", "queue", q.name, "family", family, "err", err)
	}
}

// stopQueue is fail2ban's jail stop for one action: actionflush once, or else actionunban for every
// ban in force that the queue banned, then actionstop, for each family started. A ban restored at
// the next start runs actionban again (unless norestored), so the action ends where it was. The
// unbans get StopWithin in all; those left are logged.
func (e *Exec) stopQueue(q *execQueue) {
	a, ok := e.action(q.name)
	if !ok || a.Webhook != nil || a.SMTP != nil {
		return
	}
	var started []string
	for i, f := range families {
		if q.started[i] != "" {
			started = append(started, f)
		}
	}
	if len(started) == 0 {
		return
	}
	if e.operation(q, a, "actionflush", started) == 0 && (a.Commands["actionunban"] != "" || a.Commands6["actionunban"] != "") {
		bans, err := e.st.Bans()
		if err != nil {
			e.log.Error("cannot read the bans to unban at stop", "queue", q.name, "err", err)
		}
		deadline := time.Now().Add(e.stopWithin)
		left := 0
		now := time.Now().Unix()
		for _, b := range bans {
			fam := familyOf(b.Prefix)
			if !strings.HasPrefix(q.name, b.Jail+"/") || b.End != 0 && b.End <= now || !q.items[famIndex(fam)] || a.Command("actionunban", fam) == "" {
				continue
			}
			if time.Now().After(deadline) {
				left++
				continue
			}
			c := Change{Unban: true, Ban: b}
			if err := e.exec(q.name, "actionunban", a.Command("actionunban", fam), TagsOf(c, false), a.Timeout); err != nil {
				e.log.Warn("actionunban at stop failed", "queue", q.name, "ip", b.Prefix, "err", err)
			}
		}
		if left > 0 {
			e.log.Warn("stopping: actionunban not run for every ban in force (out of time); the next start bans them again", "queue", q.name, "left", left)
		}
	}
	e.operation(q, a, "actionstop", started)
}

// operation runs a command of no ban (actionflush, actionstop, actionrepair) for each of families,
// once where two families share it, and returns how many it ran.
func (e *Exec) operation(q *execQueue, a config.Action, key string, fams []string) int {
	ran, n := "", 0
	for _, f := range fams {
		cmd := a.Command(key, f)
		if cmd == "" || cmd == ran {
			continue
		}
		ran = cmd
		n++
		if err := e.exec(q.name, key, cmd, BanTags{"family": f}, a.Timeout); err != nil {
			e.log.Warn(key+" failed", "queue", q.name, "family", f, "err", err)
		}
	}
	return n
}

// check is fail2ban's invariant check after a failed command: actioncheck, and when it fails, the
// repair (actionrepair, or actionstop and actionstart) and the check again. A repair may have
// emptied what the action held, so every other ban in force of the jail is queued again through
// actionreban (fail2ban re-bans an address when it is next seen; portcullis does not wait).
// False when the action stays broken. An unban repairs only with actionrepair_on_unban.
func (e *Exec) check(q *execQueue, a config.Action, key, family string, except netip.Prefix) bool {
	checkCmd := a.Command("actioncheck", family)
	if checkCmd == "" || e.exec(q.name, "actioncheck", checkCmd, BanTags{"family": family}, a.Timeout) == nil {
		return true
	}
	if key == "actionunban" && !a.RepairOnUnban {
		e.log.Error("actioncheck failed: the unban cannot be run", "queue", q.name)
		return false
	}
	e.log.Error("actioncheck failed; restoring a sane environment", "queue", q.name, "family", family)
	e.count("portcullis_action_repairs_total", q.name)
	if e.operation(q, a, "actionrepair", []string{family}) == 0 {
		e.operation(q, a, "actionstop", []string{family})
		i := famIndex(family)
		shared := q.started[i] == q.started[1-i] // one command served both: both stopped
		q.started[i] = ""
		if shared {
			q.started[1-i] = ""
		}
		e.start(q, a, family)
		if shared {
			q.started[1-i] = q.started[i]
		}
	}
	e.reban(q, a, family, except)
	if err := e.exec(q.name, "actioncheck", checkCmd, BanTags{"family": family}, a.Timeout); err != nil {
		e.log.Error("actioncheck failed after the repair", "queue", q.name, "family", family, "err", err)
		return false
	}
	return true
}

// reban queues actionreban (actionban where the action has none) for each ban in force of the
// queue's jail and family but except, after the queue's pending jobs.
func (e *Exec) reban(q *execQueue, a config.Action, family string, except netip.Prefix) {
	bans, err := e.st.Bans()
	if err != nil {
		e.log.Error("cannot read the bans to re-ban", "queue", q.name, "err", err)
		return
	}
	now := time.Now().Unix()
	e.mu.Lock()
	var jobs []store.Job
	for _, b := range bans {
		if !strings.HasPrefix(q.name, b.Jail+"/") || familyOf(b.Prefix) != family || b.Prefix == except || b.End != 0 && b.End <= now {
			continue
		}
		data, _ := json.Marshal(execJob{Key: "actionreban", Queued: now, Change: jobChange{Jail: b.Jail, Prefix: b.Prefix.String(), Start: b.Start, End: b.End, Count: b.Count}})
		e.seq++
		jobs = append(jobs, store.Job{Queue: q.name, Seq: e.seq, Data: data})
	}
	e.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	if err := e.st.CommitWith(nil, jobs); err != nil {
		e.log.Error("cannot queue the re-bans", "queue", q.name, "err", err)
		return
	}
	e.mu.Lock()
	e.addDepthLocked(q.name, len(jobs))
	e.mu.Unlock()
}

func (e *Exec) action(queue string) (config.Action, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.actions[queue]
	return a, ok
}

func (e *Exec) next(q *execQueue) (store.Job, bool) {
	var out store.Job
	found := false
	if err := e.st.Jobs(q.name, func(j store.Job) bool { out, found = j, true; return false }); err != nil {
		e.log.Error("cannot read the action queue", "queue", q.name, "err", err)
	}
	return out, found
}

// addDepthLocked counts n jobs staged for (or, negative, removed from) a queue.
func (e *Exec) addDepthLocked(queue string, n int) {
	if q := e.queues[queue]; q != nil {
		q.depth += n
		e.gaugeLocked(q)
	}
}

func (e *Exec) gaugeLocked(q *execQueue) {
	if e.set != nil {
		e.set.GetOrCreateGauge(fmt.Sprintf("portcullis_action_queue_depth{queue=%q}", q.name), nil).Set(float64(q.depth))
	}
}

// runJob runs one job with retries; false when the daemon is stopping (the job stays stored).
func (e *Exec) runJob(q *execQueue, sj store.Job) bool {
	var job execJob
	a, ok := e.action(q.name)
	if err := json.Unmarshal(sj.Data, &job); err != nil || !ok {
		if !ok {
			e.log.Warn("dropping a queued action run: the action is no longer configured", "queue", q.name)
		} else {
			e.log.Error("dropping an unreadable queued action run", "queue", q.name, "err", err)
		}
		e.done(sj)
		return true
	}
	c, err := job.Change.change()
	if err != nil {
		e.log.Error("dropping a queued action run", "queue", q.name, "err", err)
		e.done(sj)
		return true
	}
	fam := familyOf(c.Ban.Prefix)
	key := job.key()
	cmd := a.Command(key, fam)
	if key == "actionreban" && cmd == "" {
		cmd = a.Command("actionban", fam)
	}
	if a.Webhook == nil && a.SMTP == nil && key != "actionunban" {
		e.start(q, a, fam) // on demand: a family starts with its first ban
	}
	tags := TagsOf(c, job.Restored)
	for attempt := 1; ; attempt++ {
		var err error
		if a.Webhook != nil || a.SMTP != nil {
			err = e.post(q.name, a, job.Unban, c)
		} else {
			// As fail2ban: a failed command is followed by the invariant check (and the
			// repair it may call for), then run once more.
			err = e.exec(q.name, key, cmd, tags, a.Timeout)
			if err != nil && (a.Command("actioncheck", fam) != "") && e.check(q, a, key, fam, c.Ban.Prefix) {
				err = e.exec(q.name, key, cmd, tags, a.Timeout)
			}
		}
		if err == nil {
			break
		}
		if attempt >= MaxAttempts {
			e.log.Error("action given up", "queue", q.name, "command", key, "ip", c.Ban.Prefix, "attempts", attempt, "err", err)
			e.count("portcullis_action_given_up_total", q.name)
			break
		}
		e.log.Warn("action failed; retrying", "queue", q.name, "command", key, "ip", c.Ban.Prefix, "attempt", attempt, "err", err)
		if !e.backoff(attempt) {
			return false
		}
	}
	if key != "actionunban" {
		q.items[famIndex(fam)] = true
	}
	e.done(sj)
	return true
}

func (e *Exec) done(j store.Job) {
	if err := e.st.DoneJob(j); err != nil {
		e.log.Error("cannot remove a finished action run from its queue", "queue", j.Queue, "err", err)
		return
	}
	e.mu.Lock()
	e.addDepthLocked(j.Queue, -1)
	e.mu.Unlock()
}

func (e *Exec) count(name, queue string) {
	if e.set != nil {
		e.set.GetOrCreateCounter(fmt.Sprintf("%s{queue=%q}", name, queue)).Inc()
	}
}

// exec runs one command through /bin/sh with the ban's tags filled in (attacker text in the
// environment, never in the script), killing its whole process group at timeout.
func (e *Exec) exec(queue, key, cmd string, tags BanTags, timeout time.Duration) error {
	if cmd == "" {
		return nil
	}
	e.concurrency <- struct{}{}
	defer func() { <-e.concurrency }()
	script, env := cmd, []string(nil)
	if tags != nil {
		script, env = Command(cmd, tags)
	}
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	c.Env = append(os.Environ(), env...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	start := time.Now()
	out, err := c.CombinedOutput()
	if e.set != nil {
		e.set.GetOrCreateHistogram(fmt.Sprintf("portcullis_action_seconds{queue=%q}", queue)).UpdateDuration(start)
	}
	e.count("portcullis_action_runs_total", queue)
	if err != nil {
		e.count("portcullis_action_failures_total", queue)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v", timeout)
		}
		if len(out) > 512 {
			out = out[:512]
		}
		return fmt.Errorf("%s: %w: %s", key, err, out)
	}
	return nil
}

func (j jobChange) change() (Change, error) {
	p, err := netip.ParsePrefix(j.Prefix)
	if err != nil {
		return Change{}, err
	}
	c := Change{Ban: store.Ban{Jail: j.Jail, Prefix: p, Start: j.Start, End: j.End, Count: j.Count}}
	if j.Failures > 0 || len(j.Matches) > 0 || len(j.Fields) > 0 {
		c.Evidence = &ban.Evidence{Failures: j.Failures, Matches: j.Matches, Fields: j.Fields}
	}
	return c, nil
}

// backoff waits before attempt+1 (1, 2, 4, 8 … s); false when the daemon stops meanwhile.
func (e *Exec) backoff(attempt int) bool {
	select {
	case <-e.stop:
		return false
	case <-time.After(time.Duration(1<<min(attempt-1, 5)) * time.Second):
		return true
	}
}

// post runs one webhook call or mail, with the same concurrency bound and metrics as a command.
func (e *Exec) post(queue string, a config.Action, unban bool, c Change) error {
	e.concurrency <- struct{}{}
	defer func() { <-e.concurrency }()
	start := time.Now()
	var err error
	switch {
	case a.SMTP != nil:
		if !unban {
			err = sendMail(context.Background(), a.SMTP, c, a.Timeout)
		}
	default:
		err = postWebhook(context.Background(), a.Webhook, unban, c, a.Timeout)
	}
	if e.set != nil {
		e.set.GetOrCreateHistogram(fmt.Sprintf("portcullis_action_seconds{queue=%q}", queue)).UpdateDuration(start)
	}
	e.count("portcullis_action_runs_total", queue)
	if err != nil {
		e.count("portcullis_action_failures_total", queue)
	}
	return err
}

// runDigest waits until the oldest job of a digest queue is Digest old, then sends one message for
// every ban queued by then and removes them; false when the daemon is stopping (they stay stored).
func (e *Exec) runDigest(q *execQueue, a config.Action, oldest store.Job) bool {
	var first execJob
	_ = json.Unmarshal(oldest.Data, &first)
	if wait := time.Until(time.Unix(first.Queued, 0).Add(a.Digest)); wait > 0 {
		select {
		case <-e.stop:
			return false
		case <-time.After(wait):
		}
	}
	var jobs []store.Job
	var bans []Change
	_ = e.st.Jobs(q.name, func(j store.Job) bool {
		jobs = append(jobs, j)
		var x execJob
		if json.Unmarshal(j.Data, &x) == nil && !x.Unban {
			if c, err := x.Change.change(); err == nil {
				bans = append(bans, c)
			}
		}
		return true
	})
	for attempt := 1; len(bans) > 0; attempt++ {
		e.concurrency <- struct{}{}
		var err error
		if a.SMTP != nil {
			err = sendDigestMail(context.Background(), a.SMTP, bans, a.Timeout)
		} else {
			err = postDigest(context.Background(), a.Webhook, bans, a.Timeout)
		}
		<-e.concurrency
		e.count("portcullis_action_runs_total", q.name)
		if err == nil {
			break
		}
		e.count("portcullis_action_failures_total", q.name)
		if attempt >= MaxAttempts {
			e.log.Error("digest given up", "queue", q.name, "bans", len(bans), "err", err)
			e.count("portcullis_action_given_up_total", q.name)
			break
		}
		e.log.Warn("digest failed; retrying", "queue", q.name, "bans", len(bans), "attempt", attempt, "err", err)
		if !e.backoff(attempt) {
			return false
		}
	}
	for _, j := range jobs {
		e.done(j)
	}
	return true
}
