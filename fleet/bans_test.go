package fleet

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func connect(t *testing.T, url string) (*Bans, jetstream.KeyValue) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenBans(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b, b.kv
}

func next(t *testing.T, ch <-chan Change, what string) Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(20 * time.Second): // a bound for a broken server, not a speed goal
		t.Fatalf("no change: %s", what)
	}
	return Change{}
}

// Two nodes on a real embedded NATS server with JetStream: a ban one shares reaches the other's
// watch with everything it carries; an unban lifts it; a ban's end lifts it by itself (the per-key
// TTL); sharing a ban again (prolonged) replaces it; a node that starts watching later gets the
// bans in force, then ready; a value that is not a ban is reported, never applied.
func TestSharedBans(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedOptions{Name: "n1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	a, _ := connect(t, srv.URL())
	b, rawKV := connect(t, srv.URL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen, ready, bad := make(chan Change, 16), make(chan struct{}, 1), make(chan string, 4)
	if err := b.Watch(ctx, func(c Change) { seen <- c }, func() { ready <- struct{}{} }, func(k string, _ error) { bad <- k }); err != nil {
		t.Fatal(err)
	}
	<-ready
	now := time.Now()
	short := Ban{Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"), Start: now.Unix(), End: now.Unix() + 2, Count: 3, Origin: "n1", Reason: "failures",
		Evidence: &Evidence{Failures: 3, Times: []uint32{uint32(now.Unix())}, Lines: []string{"Failed password for root from 192.0.2.7"}}}
	forever := Ban{Jail: "web.v2", Prefix: netip.MustParsePrefix("2001:db8::/64"), Start: now.Unix(), Count: 1, Origin: "n1"}
	for _, x := range []Ban{short, forever} {
		if err := a.Put(ctx, x, now); err != nil {
			t.Fatal(err)
		}
		if c := next(t, seen, "the shared ban"); c.Unban || !reflect.DeepEqual(c.Ban, x) {
			t.Fatalf("shared %+v, watched %+v", x, c)
		}
	}
	if err := a.Delete(ctx, forever.Jail, forever.Prefix); err != nil {
		t.Fatal(err)
	}
	if c := next(t, seen, "the unban"); !c.Unban || c.Ban.Jail != forever.Jail || c.Ban.Prefix != forever.Prefix {
		t.Fatalf("unban watched as %+v", c)
	}
	if c := next(t, seen, "the end of the 2 s ban"); !c.Unban || c.Ban.Prefix != short.Prefix {
		t.Fatalf("expiry watched as %+v", c)
	}
	if end := time.Unix(short.End, 0); time.Now().Before(end) {
		t.Fatalf("a ban shared until %v was lifted at %v", end, time.Now())
	}
	longer := forever
	longer.Count = 2
	for _, x := range []Ban{forever, longer} {
		if err := a.Put(ctx, x, time.Now()); err != nil {
			t.Fatalf("sharing %+v again: %v", x, err)
		}
		// Shared again, a ban is one put for the watchers: never a lift between two bans.
		if c := next(t, seen, "the ban shared again"); c.Unban || !reflect.DeepEqual(c.Ban, x) {
			t.Fatalf("shared %+v, watched %+v", x, c)
		}
	}
	// A ban lifted by an unban is remembered (a node coming back learns of it); one that ended is
	// not.
	gone := Ban{Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.99/32"), Start: now.Unix(), Count: 1, Origin: "n1"}
	if err := a.Put(ctx, gone, time.Now()); err != nil {
		t.Fatal(err)
	}
	next(t, seen, "the ban to lift")
	if err := a.Delete(ctx, gone.Jail, gone.Prefix); err != nil {
		t.Fatal(err)
	}
	next(t, seen, "its unban")
	// A node that watches now gets the one ban in force and the unban, then ready.
	late, lateReady := make(chan Change, 16), make(chan struct{}, 1)
	c, _ := connect(t, srv.URL())
	if err := c.Watch(ctx, func(ch Change) { late <- ch }, func() { lateReady <- struct{}{} }, nil); err != nil {
		t.Fatal(err)
	}
	if got := next(t, late, "the ban in force"); got.Unban || !reflect.DeepEqual(got.Ban, longer) {
		t.Fatalf("a late watcher got %+v, want %+v", got, longer)
	}
	if got := next(t, late, "the unban remembered"); !got.Unban || got.Ban.Prefix != gone.Prefix || got.At < now.Unix()-60 || got.At > time.Now().Unix() {
		t.Fatalf("a late watcher got %+v, want the lift of %s", got, gone.Prefix)
	}
	select {
	case <-lateReady:
	case got := <-late:
		t.Fatalf("a late watcher got %+v before ready", got)
	case <-time.After(20 * time.Second):
		t.Fatal("a late watcher was never ready")
	}
	// Hostile writers: a value that is no ban, a ban's value under a key that is no ban's, and a
	// ban's value with a byte more.
	val := appendValue(nil, &short)
	rawKV.Put(ctx, Key("sshd", netip.MustParsePrefix("192.0.2.8/32")), []byte(`{"jail":"sshd","prefix":"10.0.0.1/32"}`))
	rawKV.Put(ctx, "73736864.0a000001-33", val)
	rawKV.Put(ctx, Key("sshd", netip.MustParsePrefix("192.0.2.9/32")), append(val, 0))
	for range 3 {
		select {
		case <-bad:
		case got := <-seen:
			t.Fatalf("a value that is not a ban was applied: %+v", got)
		case <-time.After(20 * time.Second):
			t.Fatal("a bad value was not reported")
		}
	}
}

// Keys never collide and read back; a key that is not a ban's is refused.
func TestKeys(t *testing.T) {
	for _, c := range []struct {
		jail string
		p    string
	}{{"sshd", "192.0.2.1/32"}, {"a.b", "2001:db8::/64"}, {"x-y_z", "10.0.0.0/8"}} {
		p := netip.MustParsePrefix(c.p)
		j, q, err := new(valueReader).key(Key(c.jail, p))
		if err != nil || j != c.jail || q != p {
			t.Errorf("%s %s: %q %v %v", c.jail, c.p, j, q, err)
		}
	}
	for _, k := range []string{"", "zz.00-1", "73736864.c0000201-99", "73736864.c00002", "73736864.c0000201-24"} {
		if _, _, err := new(valueReader).key(k); err == nil {
			t.Errorf("key %q read as a ban's", k)
		}
	}
}

// What a fleet electing a leader answers (no responders) is worth asking again; a stream that
// does not exist is not.
func TestTransient(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedOptions{Name: "n1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, err = nc.Request("nobody.listens", nil, time.Second)
	if !Transient(err) {
		t.Fatalf("%v is not transient", err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), "no_such_stream"); err == nil || Transient(err) {
		t.Fatalf("a missing stream: %v", err)
	}
}
