package matcher

/*
#cgo pkg-config: libhs
#include <hs.h>
#include <stdint.h>
#include <stdlib.h>

// One match: the pattern and the offset just after its last byte (the Go side's hit).
typedef struct {
	uint32_t id, to;
} hx_hit;

typedef struct {
	hx_hit *hits;
	size_t n, cap;
	int oom;
} hx_hits;

// hx_on_match collects a match in C: no call back into Go per match.
static int hx_on_match(unsigned int id, unsigned long long from, unsigned long long to,
		unsigned int flags, void *ctx) {
	hx_hits *h = ctx;
	(void)from; (void)flags;
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 1024;
		hx_hit *p = realloc(h->hits, cap * sizeof *p);
		if (!p) {
			h->oom = 1;
			return 1; // stop the scan
		}
		h->hits = p;
		h->cap = cap;
	}
	h->hits[h->n].id = id;
	h->hits[h->n].to = (uint32_t)to;
	h->n++;
	return 0;
}

static hs_error_t hx_scan(const hs_database_t *db, const char *data, unsigned int len,
		hs_scratch_t *scratch, hx_hits *h) {
	h->n = 0;
	h->oom = 0;
	return hs_scan(db, data, len, 0, scratch, hx_on_match, h);
}

static void hx_hits_free(hx_hits *h) {
	free(h->hits);
	free(h);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// The scan side of Hyperscan is ours: gohs compiles the database (its pattern, flag and error
// types are what New needs), but its Scan calls back into Go once per match through a handle
// allocated per scan, and a cgo callback costs tens of nanoseconds — more than the scan itself on
// failure-heavy input, where several patterns hit every line. hxDB holds the same database,
// deserialized from gohs's serialized form, and a scan collects every match in C and crosses the
// cgo boundary once per block.

// hit is one match as hx_hit lays it out.
type hit struct {
	id uint32
	to uint32
}

// The scan hands C's hx_hit array to Go as []hit: the two must be the same size (this fails to
// compile otherwise).
var _ [unsafe.Sizeof(hit{})]byte = [unsafe.Sizeof(C.hx_hit{})]byte{}

// hxDB is a compiled block-mode database.
type hxDB struct{ p *C.hs_database_t }

// newHXDB deserializes a database that gohs compiled and serialized.
func newHXDB(data []byte) (*hxDB, error) {
	if len(data) == 0 {
		return nil, errors.New("empty Hyperscan database")
	}
	var p *C.hs_database_t
	if rc := C.hs_deserialize_database((*C.char)(unsafe.Pointer(&data[0])), C.size_t(len(data)), &p); rc != C.HS_SUCCESS {
		return nil, fmt.Errorf("cannot load the Hyperscan database: error %d", int(rc))
	}
	return &hxDB{p: p}, nil
}

func (d *hxDB) close() {
	if d != nil && d.p != nil {
		C.hs_free_database(d.p)
		d.p = nil
	}
}

// hxScanner is one worker's scratch space and match buffer (C memory, grown as needed).
type hxScanner struct {
	scratch *C.hs_scratch_t
	hits    *C.hx_hits
}

func (d *hxDB) newScanner() (*hxScanner, error) {
	s := &hxScanner{hits: (*C.hx_hits)(C.calloc(1, C.size_t(unsafe.Sizeof(C.hx_hits{}))))}
	if s.hits == nil {
		return nil, errors.New("cannot allocate the Hyperscan match buffer")
	}
	if rc := C.hs_alloc_scratch(d.p, &s.scratch); rc != C.HS_SUCCESS {
		s.free()
		return nil, fmt.Errorf("cannot allocate Hyperscan scratch: error %d", int(rc))
	}
	return s, nil
}

func (s *hxScanner) free() {
	if s == nil {
		return
	}
	if s.scratch != nil {
		C.hs_free_scratch(s.scratch)
		s.scratch = nil
	}
	if s.hits != nil {
		C.hx_hits_free(s.hits)
		s.hits = nil
	}
}

// scan finds every match in buf, in the order Hyperscan reports them (by end offset, mostly).
// The result lives in the scanner's C buffer until the next scan.
func (s *hxScanner) scan(d *hxDB, buf []byte) ([]hit, error) {
	if len(buf) == 0 {
		return nil, nil
	}
	if len(buf) > math.MaxUint32 {
		return nil, fmt.Errorf("hyperscan scan: block of %d bytes", len(buf))
	}
	rc := C.hx_scan(d.p, (*C.char)(unsafe.Pointer(&buf[0])), C.uint(len(buf)), s.scratch, s.hits)
	switch {
	case s.hits.oom != 0:
		return nil, errors.New("hyperscan scan: out of memory for matches")
	case rc != C.HS_SUCCESS:
		return nil, fmt.Errorf("hyperscan scan: error %d", int(rc))
	}
	if s.hits.n == 0 {
		return nil, nil
	}
	return unsafe.Slice((*hit)(unsafe.Pointer(s.hits.hits)), int(s.hits.n)), nil
}
