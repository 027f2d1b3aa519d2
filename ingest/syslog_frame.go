package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// ErrFraming is a syslog stream that is not RFC 6587 framing (a bad octet count).
var ErrFraming = errors.New("syslog framing error")

// deadlineReader flushes the connection's open blocks whenever the peer pauses, so a quiet sender's
// last lines are not held back, and ends the stream with a timeout error after idle without data.
type deadlineReader struct {
	c     net.Conn
	every time.Duration
	idle  time.Duration
	bt    *batcher
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	for {
		_ = d.c.SetReadDeadline(time.Now().Add(d.every))
		n, err := d.c.Read(p)
		if n > 0 {
			return n, nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			d.bt.flush()
			_ = d.c.SetReadDeadline(time.Now().Add(d.idle))
			n, err = d.c.Read(p)
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		return n, err
	}
}

// FrameReader splits a syslog stream into messages as RFC 6587 allows, deciding per message: one
// starting with a digit is octet-counted ("LEN SP MSG"), any other ends at a newline. Messages
// longer than max are skipped and reported to oversized.
type FrameReader struct {
	r         *bufio.Reader
	max       int
	msg       []byte
	oversized func()
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader, max int, oversized func()) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 64*1024), max: max, oversized: oversized}
}

// Next returns the next non-empty message, valid until the next call. At the end of the stream it
// returns what is left (a last line without newline) with the error.
func (f *FrameReader) Next() ([]byte, error) {
	for {
		first, err := f.r.Peek(1)
		if err != nil {
			return nil, err
		}
		if first[0] >= '1' && first[0] <= '9' {
			lenText, err := f.r.ReadSlice(' ')
			if err != nil || len(lenText) > 11 {
				if err == nil {
					err = fmt.Errorf("%w: octet count too long", ErrFraming)
				}
				return nil, err // not octet counting after all: a broken stream
			}
			n, err := strconv.Atoi(string(lenText[:len(lenText)-1]))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("%w: bad octet count %q", ErrFraming, lenText)
			}
			if n > f.max {
				if f.oversized != nil {
					f.oversized()
				}
				if _, err := f.r.Discard(n); err != nil {
					return nil, err
				}
				continue
			}
			if cap(f.msg) < n {
				f.msg = make([]byte, 0, n)
			}
			f.msg = f.msg[:n]
			if _, err := io.ReadFull(f.r, f.msg); err != nil {
				return nil, err
			}
			return f.msg, nil
		}
		f.msg = f.msg[:0]
		over := false
		for {
			part, err := f.r.ReadSlice('\n')
			if !over {
				if len(f.msg)+len(part) > f.max+1 {
					over = true
				} else {
					f.msg = append(f.msg, part...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if over && f.oversized != nil {
					f.oversized() // an overlong last line the stream ended in
				}
				if over || len(bytes.TrimRight(f.msg, "\r\n \x00")) == 0 {
					return nil, err
				}
				return f.msg, err
			}
			break
		}
		if over {
			if f.oversized != nil {
				f.oversized()
			}
			continue
		}
		if len(bytes.TrimRight(f.msg, "\r\n \x00")) > 0 {
			return f.msg, nil
		}
	}
}
