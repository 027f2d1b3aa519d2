// Package store keeps portcullis state in Pebble.
//
// Key layout (all values big-endian):
//
//	ban/<jail>/<prefix>  -> start int64 | end int64 (0 = forever) | count uint32 [| 1: from the fleet]   an active ban
//	hist/<prefix>        -> count uint32 | last ban start int64                  ban history, for escalation
//	histj/<jail>/<prefix> -> count uint32 | last ban start int64                 the same, per jail
//	off/<path>           -> dev | inode | fingerprint | fingerprint length | offset   how far a log was read
//	cur/<source>         -> journal cursor                                             how far the journal was read
//	win/<jail>/<address> -> failure times u32...                                       failures counted, saved with off/ at shutdown and reload
//	job/<queue>/<seq>    -> a queued action run (opaque to the store)                  committed with the bans that made it, deleted once run
//
// Every batch of ban decisions is committed with fsync before it is applied to the firewall or
// reported done, so a ban that was reported can be restored after any crash.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/cockroachdb/pebble"
)

// Ban is a stored active ban.
type Ban struct {
	Jail   string
	Prefix netip.Prefix
	Start  int64
	End    int64 // 0 = forever
	Count  uint32
	// JailCount is how often the prefix was banned in this jail (kept under histj/, for
	// bantime.increment); not part of the ban record.
	JailCount uint32
	// Fleet: another node decided the ban and this one applied it (stored as a 21st value byte,
	// 1): a node that joins publishes its own bans in force, never these.
	Fleet bool
}

// Change is one ban to write or remove.
type Change struct {
	Unban bool
	Ban   Ban
}

// Store is safe for concurrent use.
type Store struct {
	db *pebble.DB
}

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...interface{}) {}
func (s slogLogger) Errorf(format string, args ...interface{}) {
	s.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (s slogLogger) Fatalf(format string, args ...interface{}) {
	s.l.Error("pebble: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

// Open opens (creating if needed) the store in dir. Only one process may hold it.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create store folder %q: %w", dir, err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: slogLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("cannot open store %q: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close flushes and closes the store.
func (s *Store) Close() error { return s.db.Close() }

func banKey(jail string, p netip.Prefix) []byte {
	return []byte("ban/" + jail + "/" + p.String())
}

func histKey(p netip.Prefix) []byte { return []byte("hist/" + p.String()) }

// Commit writes changes in one synced batch.
func (s *Store) Commit(changes []Change) error { return s.CommitWith(changes, nil) }

// Job is a queued piece of work that must survive a crash (an action run for a ban): Queue names
// its ordered queue, Seq its place there, Data is the owner's.
type Job struct {
	Queue string
	Seq   uint64
	Data  []byte
}

func jobKey(queue string, seq uint64) []byte {
	return fmt.Appendf([]byte("job/"+queue+"/"), "%016x", seq)
}

// CommitWith writes changes and jobs in one synced batch: the jobs a batch of bans makes are
// stored exactly when the bans are.
func (s *Store) CommitWith(changes []Change, jobs []Job) error {
	if len(changes) == 0 && len(jobs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, j := range jobs {
		if err := b.Set(jobKey(j.Queue, j.Seq), j.Data, nil); err != nil {
			return err
		}
	}
	var v [21]byte
	var h [12]byte
	for _, c := range changes {
		k := banKey(c.Ban.Jail, c.Ban.Prefix)
		if c.Unban {
			if err := b.Delete(k, nil); err != nil {
				return err
			}
			continue
		}
		binary.BigEndian.PutUint64(v[0:], uint64(c.Ban.Start))
		binary.BigEndian.PutUint64(v[8:], uint64(c.Ban.End))
		binary.BigEndian.PutUint32(v[16:], c.Ban.Count)
		n := 20
		if c.Ban.Fleet {
			v[20], n = 1, 21
		}
		if err := b.Set(k, v[:n], nil); err != nil {
			return err
		}
		putHistory(h[:], History{Count: c.Ban.Count, Last: c.Ban.Start})
		if err := b.Set(histKey(c.Ban.Prefix), h[:], nil); err != nil {
			return err
		}
		if c.Ban.JailCount > 0 {
			putHistory(h[:], History{Count: c.Ban.JailCount, Last: c.Ban.Start})
			if err := b.Set(histJailKey(c.Ban.Jail, c.Ban.Prefix), h[:], nil); err != nil {
				return err
			}
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot commit %d ban changes: %w", len(changes), err)
	}
	return nil
}

// Bans returns every stored active ban.
func (s *Store) Bans() ([]Ban, error) {
	var out []Ban
	err := s.scan("ban/", func(k, v []byte) error {
		b, err := decodeBan(k, v)
		if err == nil {
			out = append(out, b)
		}
		return err
	})
	return out, err
}

// Ban returns the stored ban of prefix in jail, if there is one.
func (s *Store) Ban(jail string, p netip.Prefix) (Ban, bool, error) {
	k := banKey(jail, p)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return Ban{}, false, nil
	}
	if err != nil {
		return Ban{}, false, err
	}
	defer closer.Close()
	b, err := decodeBan(k, v)
	return b, err == nil, err
}

// decodeBan reads a ban record (see the key layout).
func decodeBan(k, v []byte) (Ban, error) {
	rest := strings.TrimPrefix(string(k), "ban/")
	slash := strings.IndexByte(rest, '/')
	if slash < 0 || (len(v) != 20 && !(len(v) == 21 && v[20] == 1)) {
		return Ban{}, fmt.Errorf("corrupt ban record %q", k)
	}
	p, err := netip.ParsePrefix(rest[slash+1:])
	if err != nil {
		return Ban{}, fmt.Errorf("corrupt ban record %q: %w", k, err)
	}
	return Ban{
		Jail: rest[:slash], Prefix: p,
		Start: int64(binary.BigEndian.Uint64(v[0:])),
		End:   int64(binary.BigEndian.Uint64(v[8:])),
		Count: binary.BigEndian.Uint32(v[16:]),
		Fleet: len(v) == 21,
	}, nil
}

// History is how often a prefix was banned and when last (unix seconds).
type History struct {
	Count uint32
	Last  int64
}

// putHistory encodes h into v (12 bytes): count, then last ban time.
func putHistory(v []byte, h History) {
	binary.BigEndian.PutUint32(v[0:], h.Count)
	binary.BigEndian.PutUint64(v[4:], uint64(h.Last))
}

func decodeHistory(k, v []byte) (History, error) {
	if len(v) < 12 {
		return History{}, fmt.Errorf("corrupt history record %q", k)
	}
	return History{Count: binary.BigEndian.Uint32(v), Last: int64(binary.BigEndian.Uint64(v[4:]))}, nil
}

// History returns the ban history of every prefix banned (and not purged).
func (s *Store) History() (map[netip.Prefix]History, error) {
	out := make(map[netip.Prefix]History)
	err := s.scan("hist/", func(k, v []byte) error {
		p, err := netip.ParsePrefix(strings.TrimPrefix(string(k), "hist/"))
		if err != nil {
			return fmt.Errorf("corrupt history record %q", k)
		}
		out[p], err = decodeHistory(k, v)
		return err
	})
	return out, err
}

func histJailKey(jail string, p netip.Prefix) []byte {
	return []byte("histj/" + jail + "/" + p.String())
}

// JailHistory returns per-jail ban history: jail -> prefix -> history.
func (s *Store) JailHistory() (map[string]map[netip.Prefix]History, error) {
	out := make(map[string]map[netip.Prefix]History)
	err := s.scan("histj/", func(k, v []byte) error {
		rest := strings.TrimPrefix(string(k), "histj/")
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return fmt.Errorf("corrupt history record %q", k)
		}
		p, err := netip.ParsePrefix(rest[slash+1:])
		if err != nil {
			return fmt.Errorf("corrupt history record %q", k)
		}
		jail := rest[:slash]
		if out[jail] == nil {
			out[jail] = make(map[netip.Prefix]History)
		}
		out[jail][p], err = decodeHistory(k, v)
		return err
	})
	return out, err
}

// DeleteHistory removes ban history (dbpurgeage), overall and per jail, in one synced batch.
func (s *Store) DeleteHistory(overall []netip.Prefix, perJail map[string][]netip.Prefix) error {
	if len(overall) == 0 && len(perJail) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, p := range overall {
		if err := b.Delete(histKey(p), nil); err != nil {
			return err
		}
	}
	for jail, ps := range perJail {
		for _, p := range ps {
			if err := b.Delete(histJailKey(jail, p), nil); err != nil {
				return err
			}
		}
	}
	return b.Commit(pebble.Sync)
}

func (s *Store) scan(prefix string, fn func(k, v []byte) error) error {
	upper := []byte(prefix)
	upper[len(upper)-1]++
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if !bytes.HasPrefix(it.Key(), []byte(prefix)) {
			break
		}
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// Offset is how far a log file was read (see ingest.Position).
type Offset struct {
	Path        string
	Dev, Ino    uint64
	Fingerprint uint64
	FPLen       int
	Offset      int64
}

func offKey(path string) []byte { return []byte("off/" + path) }

// Progress is how far the daemon got: file positions, journal cursors and, at the points where
// they agree with the positions exactly (shutdown, reload), the failures counted so far.
type Progress struct {
	Offsets []Offset
	Cursors map[string]string
	// Windows, when set, replaces every stored failure count: it calls put for each tracked
	// (jail, address) with its failure times and, when not nil, how many failures each time
	// stands for.
	Windows func(put func(jail string, addr netip.Addr, times, counts []uint32) error) error
}

// SaveProgress writes p in one synced batch, so stored positions and stored counts always
// describe the same lines: a restart neither misses a failure nor counts one twice.
//
//	off/<path> -> dev u64 | ino u64 | fingerprint u64 | fplen u32 | offset i64
//	cur/<source> -> cursor
//	win/<jail>/<address, 16 bytes> -> failure times, u32 unix seconds each, oldest first
func (s *Store) SaveProgress(p Progress) error {
	if len(p.Offsets) == 0 && len(p.Cursors) == 0 && p.Windows == nil {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var v [36]byte
	for _, o := range p.Offsets {
		binary.BigEndian.PutUint64(v[0:], o.Dev)
		binary.BigEndian.PutUint64(v[8:], o.Ino)
		binary.BigEndian.PutUint64(v[16:], o.Fingerprint)
		binary.BigEndian.PutUint32(v[24:], uint32(o.FPLen))
		binary.BigEndian.PutUint64(v[28:], uint64(o.Offset))
		if err := b.Set(offKey(o.Path), v[:], nil); err != nil {
			return err
		}
	}
	for name, c := range p.Cursors {
		if c == "" {
			continue
		}
		if err := b.Set([]byte("cur/"+name), []byte(c), nil); err != nil {
			return err
		}
	}
	windows := 0
	if p.Windows != nil {
		if err := b.DeleteRange([]byte("win/"), []byte("win0"), nil); err != nil {
			return err
		}
		var key, val []byte
		err := p.Windows(func(jail string, addr netip.Addr, times, counts []uint32) error {
			a := addr.As16()
			key = append(append(append(key[:0], "win/"...), jail...), '/')
			key = append(key, a[:]...)
			val = val[:0]
			if counts != nil {
				val = append(val, winCounted)
			}
			for i, t := range times {
				val = binary.BigEndian.AppendUint32(val, t)
				if counts != nil {
					val = binary.BigEndian.AppendUint32(val, counts[i])
				}
			}
			windows++
			return b.Set(key, val, nil)
		})
		if err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot commit %d file offsets, %d cursors and %d failure counts: %w", len(p.Offsets), len(p.Cursors), windows, err)
	}
	return nil
}

// winCounted starts a failure count record of (time, count) pairs; a record without it is
// plain times, one failure each. Its length (1 + 8n bytes) cannot be a multiple of 4.
const winCounted = 1

// Windows calls fn for every stored failure count (see SaveProgress); counts is nil when every
// time stands for one failure. Both slices are reused between calls.
func (s *Store) Windows(fn func(jail string, addr netip.Addr, times, counts []uint32)) error {
	var times, counts []uint32
	return s.scan("win/", func(k, v []byte) error {
		rest := k[len("win/"):]
		counted := len(v)%8 == 1 && v[0] == winCounted
		if len(rest) < 18 || rest[len(rest)-17] != '/' || len(v)%4 != 0 && !counted {
			return fmt.Errorf("corrupt failure count record %q", k)
		}
		times, counts = times[:0], counts[:0]
		if counted {
			for i := 1; i < len(v); i += 8 {
				times = append(times, binary.BigEndian.Uint32(v[i:]))
				counts = append(counts, binary.BigEndian.Uint32(v[i+4:]))
			}
		} else {
			for i := 0; i < len(v); i += 4 {
				times = append(times, binary.BigEndian.Uint32(v[i:]))
			}
		}
		var cs []uint32
		if counted {
			cs = counts
		}
		fn(string(rest[:len(rest)-17]), netip.AddrFrom16([16]byte(rest[len(rest)-16:])).Unmap(), times, cs)
		return nil
	})
}

// Offsets returns every stored file position by path.
func (s *Store) Offsets() (map[string]Offset, error) {
	out := make(map[string]Offset)
	err := s.scan("off/", func(k, v []byte) error {
		if len(v) != 36 {
			return fmt.Errorf("corrupt offset record %q", k)
		}
		p := strings.TrimPrefix(string(k), "off/")
		out[p] = Offset{Path: p, Dev: binary.BigEndian.Uint64(v[0:]), Ino: binary.BigEndian.Uint64(v[8:]),
			Fingerprint: binary.BigEndian.Uint64(v[16:]), FPLen: int(binary.BigEndian.Uint32(v[24:])),
			Offset: int64(binary.BigEndian.Uint64(v[28:]))}
		return nil
	})
	return out, err
}

// Cursors returns the stored journal cursors by source name.
func (s *Store) Cursors() (map[string]string, error) {
	out := make(map[string]string)
	err := s.scan("cur/", func(k, v []byte) error {
		out[strings.TrimPrefix(string(k), "cur/")] = string(v)
		return nil
	})
	return out, err
}

// Jobs calls fn with every stored job of queue, in Seq order, until fn returns false.
func (s *Store) Jobs(queue string, fn func(Job) bool) error {
	prefix := "job/" + queue + "/"
	stop := fmt.Errorf("stop")
	err := s.scan(prefix, func(k, v []byte) error {
		var seq uint64
		if _, err := fmt.Sscanf(string(k[len(prefix):]), "%016x", &seq); err != nil {
			return nil // not ours
		}
		if !fn(Job{Queue: queue, Seq: seq, Data: append([]byte(nil), v...)}) {
			return stop
		}
		return nil
	})
	if err == stop {
		return nil
	}
	return err
}

// JobQueues lists the queues that hold jobs.
func (s *Store) JobQueues() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := s.scan("job/", func(k, _ []byte) error {
		q := string(k[len("job/"):])
		if i := strings.LastIndexByte(q, '/'); i > 0 {
			q = q[:i]
		}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
		return nil
	})
	return out, err
}

// DoneJob deletes a job once it has run (or been given up), synced.
func (s *Store) DoneJob(j Job) error {
	return s.db.Delete(jobKey(j.Queue, j.Seq), pebble.Sync)
}
