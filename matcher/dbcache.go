package matcher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/flier/gohs/hyperscan"
)

// The compiled Hyperscan database is cached on disk, keyed by everything that goes into it (each
// pattern's expression, flags and id, Hyperscan's version, the platform): a daemon restart or a
// `portcullis regex` run over the same filters deserializes it in milliseconds instead of compiling
// for a fraction of a second per filter. A cache that cannot be read or written is ignored.

const dbCacheKeep = 16 // databases kept per cache folder (the newest)

func dbCacheKey(pats []*hyperscan.Pattern) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", hyperscan.Version(), runtime.GOARCH, runtime.Version())
	for _, p := range pats {
		fmt.Fprintf(h, "%d\x00%d\x00%s\x00", p.Id, p.Flags, p.Expression)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// loadCachedDB returns the cached database for pats, or nil.
func loadCachedDB(dir string, pats []*hyperscan.Pattern) *hxDB {
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "hs-"+dbCacheKey(pats)+".db"))
	if err != nil {
		return nil
	}
	db, err := newHXDB(data)
	if err != nil {
		return nil
	}
	return db
}

// storeCachedDB writes the serialized database for pats (atomically) and prunes the folder to the
// newest databases.
func storeCachedDB(dir string, pats []*hyperscan.Pattern, data []byte) {
	if dir == "" {
		return
	}
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	name := filepath.Join(dir, "hs-"+dbCacheKey(pats)+".db")
	tmp, err := os.CreateTemp(dir, ".hs-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), name) != nil {
		os.Remove(tmp.Name())
		return
	}
	entries, _ := os.ReadDir(dir)
	type f struct {
		name string
		mod  int64
	}
	var fs []f
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "hs-") {
			continue
		}
		if info, err := e.Info(); err == nil {
			fs = append(fs, f{e.Name(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod > fs[j].mod })
	for _, old := range fs[min(len(fs), dbCacheKeep):] {
		os.Remove(filepath.Join(dir, old.name))
	}
}
