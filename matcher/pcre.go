package matcher

/*
#cgo LDFLAGS: -lpcre2-8
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>

// One confirming match of a batch. The subject is buf[off:off+len], or, when dep >= 0, what group
// `group` of the earlier request dep captured (a prefregex's <F-CONTENT>); C writes the resolved
// subject back into off and len.
typedef struct {
	uintptr_t code;
	int32_t off, len;
	int32_t dep, group;
	int32_t ov;    // first of this request's 2*pairs slots in ovec
	int32_t pairs; // groups kept, the whole match included
	int32_t rc;    // out: > 0 matched, PCRE2_ERROR_NOMATCH, another PCRE2 error, or PX_SKIPPED
} px_req;

#define PX_SKIPPED (-1000)

static pcre2_code *px_compile(const char *p, size_t n, int *err, size_t *erroff) {
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)p, n, 0, err, erroff, NULL);
	if (c) pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); // without JIT (unsupported CPU) pcre2_match interprets
	return c;
}

static uint32_t px_groups(pcre2_code *c) {
	uint32_t n = 0;
	pcre2_pattern_info(c, PCRE2_INFO_CAPTURECOUNT, &n);
	return n;
}

// px_names copies the name table: entries of `size` bytes, the group number in the first two.
static uint32_t px_names(pcre2_code *c, uint32_t *size, PCRE2_SPTR *table) {
	uint32_t n = 0;
	pcre2_pattern_info(c, PCRE2_INFO_NAMECOUNT, &n);
	pcre2_pattern_info(c, PCRE2_INFO_NAMEENTRYSIZE, size);
	pcre2_pattern_info(c, PCRE2_INFO_NAMETABLE, table);
	return n;
}

typedef struct {
	pcre2_match_data *md;
	pcre2_match_context *mc;
	pcre2_jit_stack *js;
} px_ctx;

static px_ctx *px_ctx_new(uint32_t pairs, uint32_t match_limit, uint32_t depth_limit) {
	px_ctx *x = calloc(1, sizeof *x);
	if (!x) return NULL;
	x->md = pcre2_match_data_create(pairs, NULL);
	x->mc = pcre2_match_context_create(NULL);
	x->js = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
	if (!x->md || !x->mc) {
		if (x->md) pcre2_match_data_free(x->md);
		if (x->mc) pcre2_match_context_free(x->mc);
		if (x->js) pcre2_jit_stack_free(x->js);
		free(x);
		return NULL;
	}
	pcre2_set_match_limit(x->mc, match_limit);
	pcre2_set_depth_limit(x->mc, depth_limit);
	if (x->js) pcre2_jit_stack_assign(x->mc, NULL, x->js);
	return x;
}

static void px_ctx_free(px_ctx *x) {
	pcre2_match_data_free(x->md);
	pcre2_match_context_free(x->mc);
	if (x->js) pcre2_jit_stack_free(x->js);
	free(x);
}

// px_run runs requests [from, n) of r; a request may depend on any earlier one.
static void px_run(px_req *r, int from, int n, const uint8_t *buf, int32_t *ovec, px_ctx *x) {
	for (int i = from; i < n; i++) {
		px_req *q = &r[i];
		if (q->dep >= 0) {
			px_req *d = &r[q->dep];
			if (d->rc <= 0 || q->group >= d->pairs || ovec[d->ov + 2 * q->group] < 0) {
				q->rc = PX_SKIPPED;
				continue;
			}
			q->off = ovec[d->ov + 2 * q->group];
			q->len = ovec[d->ov + 2 * q->group + 1] - q->off;
		}
		int rc = pcre2_match((pcre2_code *)q->code, buf + q->off, (PCRE2_SIZE)q->len, 0, 0, x->md, x->mc);
		q->rc = rc;
		if (rc <= 0)
			continue;
		PCRE2_SIZE *o = pcre2_get_ovector_pointer(x->md);
		uint32_t count = pcre2_get_ovector_count(x->md);
		for (int k = 0; k < q->pairs; k++) {
			int32_t *dst = &ovec[q->ov + 2 * k];
			if ((uint32_t)k < count && (uint32_t)k < (uint32_t)rc && o[2 * k] != PCRE2_UNSET) {
				dst[0] = q->off + (int32_t)o[2 * k];
				dst[1] = q->off + (int32_t)o[2 * k + 1];
			} else {
				dst[0] = dst[1] = -1;
			}
		}
	}
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// pcre is a confirming regex compiled by PCRE2 (JIT where the CPU allows). PCRE2 backtracks with
// Python's rules (leftmost, alternatives and repeats in priority order), takes Python's syntax
// ((?P<name>…), (?P=name), lookaround, conditionals) and matches an sshd failregex with its
// captures several times faster than Go's regexp, a cgo call included (BenchmarkConfirmRegex
// compares). It works on bytes, as Go's regexp does for the ASCII patterns it is
// used for (see usePCRE).
type pcre struct {
	code  *C.pcre2_code
	pairs int   // capture groups + 1 (the whole match)
	named []int // group number of each rx name, in rx.names order
	// written is the pattern as written when p was compiled with (?s) for text without newlines
	// (pcreForm), with the names it reports; nl is that pattern compiled, once, when text with a
	// newline first needs it.
	written string
	names   []string
	nlOnce  sync.Once
	nl      *pcre
}

// dotAll reports whether p was compiled with (?s), for text without newlines.
func (p *pcre) dotAll() bool { return p.written != "" }

// forNewlines is p for text that holds a newline: p itself, or the pattern as written when p
// was compiled with (?s); nil when PCRE2 cannot have it.
func (p *pcre) forNewlines() *pcre {
	if !p.dotAll() {
		return p
	}
	p.nlOnce.Do(func() { p.nl, _ = compilePCRE(p.written, p.names) })
	return p.nl
}

// Limits for one match: a line that would make a pattern backtrack without end gets an error,
// and the regex then answers with Go's regexp (linear) or regexp2 (timed out) instead.
const (
	pcreMatchLimit = 1_000_000
	pcreDepthLimit = 10_000
)

// compilePCRE compiles expr and maps names (the groups rx reports) to group numbers.
func compilePCRE(expr string, names []string) (*pcre, error) {
	var errc C.int
	var erroff C.size_t
	cs := C.CString(expr)
	defer C.free(unsafe.Pointer(cs))
	code := C.px_compile(cs, C.size_t(len(expr)), &errc, &erroff)
	if code == nil {
		var msg [256]byte
		C.pcre2_get_error_message(errc, (*C.uchar)(&msg[0]), C.size_t(len(msg)))
		return nil, fmt.Errorf("PCRE2: %s at offset %d", C.GoString((*C.char)(unsafe.Pointer(&msg[0]))), int(erroff))
	}
	p := &pcre{code: code, pairs: int(C.px_groups(code)) + 1}
	var size C.uint32_t
	var table C.PCRE2_SPTR
	n := int(C.px_names(code, &size, &table))
	byName := make(map[string]int, n)
	for i := range n {
		e := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(table), i*int(size))), int(size))
		num := int(e[0])<<8 | int(e[1])
		name := e[2:]
		for j, b := range name {
			if b == 0 {
				name = name[:j]
				break
			}
		}
		byName[string(name)] = num
	}
	for _, name := range names {
		num, ok := byName[name]
		if !ok {
			p.free()
			return nil, fmt.Errorf("PCRE2 has no group %q", name)
		}
		p.named = append(p.named, num)
	}
	return p, nil
}

func (p *pcre) free() {
	if p != nil && p.nl != nil {
		p.nl.free()
	}
	if p != nil && p.code != nil {
		C.pcre2_code_free(p.code)
		p.code = nil
	}
}

// pxReq mirrors px_req.
type pxReq = C.px_req

const pxNoMatch = int32(C.PCRE2_ERROR_NOMATCH)

// pxResult is a finished request: its outcome and where its subject lies in the batch buffer.
type pxResult struct{ q pxReq }

func (r pxResult) rc() int32 { return int32(r.q.rc) }
func (r pxResult) off() int  { return int(r.q.off) }

// pcreBatch is one worker's PCRE2 state: match data, limits, JIT stack, and the requests of the
// block being confirmed, run in one cgo call.
type pcreBatch struct {
	ctx  *C.px_ctx
	reqs []pxReq
	buf  []byte  // the subjects (lines without their dates)
	ovec []int32 // group offsets into buf, 2 per group, -1 for a group that did not take part

	oneReq []pxReq
	oneOv  []int32
	empty  byte
}

func newPCREBatch(pairs int) (*pcreBatch, error) {
	ctx := C.px_ctx_new(C.uint32_t(max(pairs, 1)), pcreMatchLimit, pcreDepthLimit)
	if ctx == nil {
		return nil, fmt.Errorf("cannot allocate PCRE2 match data")
	}
	return &pcreBatch{ctx: ctx}, nil
}

func (x *pcreBatch) free() {
	if x != nil && x.ctx != nil {
		C.px_ctx_free(x.ctx)
		x.ctx = nil
	}
}

func (x *pcreBatch) reset() {
	x.reqs, x.buf, x.ovec = x.reqs[:0], x.buf[:0], x.ovec[:0]
}

// add queues p on buf[off:off+n] (dep < 0) or on group `group` of request dep, and returns the
// request's index.
func (x *pcreBatch) add(p *pcre, off, n, dep, group int) int {
	x.reqs = append(x.reqs, request(p, off, n, dep, group, len(x.ovec)))
	x.ovec = append(x.ovec, make([]int32, 2*p.pairs)...)
	return len(x.reqs) - 1
}

// request is p on buf[off:off+n] or on group `group` of request dep (dep >= 0), its offsets kept
// from ovec[ov] on.
func request(p *pcre, off, n, dep, group, ov int) pxReq {
	return pxReq{
		code: C.uintptr_t(uintptr(unsafe.Pointer(p.code))),
		off:  C.int32_t(off), len: C.int32_t(n),
		dep: C.int32_t(dep), group: C.int32_t(group),
		ov: C.int32_t(ov), pairs: C.int32_t(p.pairs),
	}
}

// run matches the requests queued since the last run (from on): one cgo call for all of them.
// The batch is run at most twice per block (see Worker.planDeferred).
func (x *pcreBatch) run(from int) {
	if from >= len(x.reqs) {
		return
	}
	if len(x.buf) == 0 {
		x.buf = append(x.buf, 0) // a valid pointer for empty subjects
	}
	C.px_run(&x.reqs[0], C.int(from), C.int(len(x.reqs)), (*C.uint8_t)(unsafe.Pointer(&x.buf[0])), (*C.int32_t)(unsafe.Pointer(&x.ovec[0])), x.ctx)
}

// one matches p against text now, outside the block's batch (which it leaves alone).
func (x *pcreBatch) one(p *pcre, text []byte) (pxResult, []int32) {
	x.oneReq = append(x.oneReq[:0], request(p, 0, len(text), -1, 0, 0))
	x.oneOv = append(x.oneOv[:0], make([]int32, 2*p.pairs)...)
	base := &x.empty
	if len(text) > 0 {
		base = &text[0]
	}
	C.px_run(&x.oneReq[0], 0, 1, (*C.uint8_t)(unsafe.Pointer(base)), (*C.int32_t)(unsafe.Pointer(&x.oneOv[0])), x.ctx)
	return pxResult{x.oneReq[0]}, x.oneOv
}

// find returns the result of p on text among requests [from, to) of the batch that was run, when
// text is exactly a subject queued there.
func (x *pcreBatch) find(from, to int, p *pcre, text []byte) (pxResult, []int32, bool) {
	if len(x.buf) == 0 {
		return pxResult{}, nil, false
	}
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(text))) - uintptr(unsafe.Pointer(unsafe.SliceData(x.buf))))
	if off < 0 || off+len(text) > len(x.buf) {
		return pxResult{}, nil, false
	}
	code := C.uintptr_t(uintptr(unsafe.Pointer(p.code)))
	for i := from; i < to; i++ {
		q := &x.reqs[i]
		if q.code == code && int(q.off) == off && int(q.len) == len(text) && q.rc != C.PX_SKIPPED {
			return pxResult{*q}, x.ovec[q.ov : int(q.ov)+2*int(q.pairs)], true
		}
	}
	return pxResult{}, nil, false
}
