package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// OpenLog opens a log file for reading from its start, decompressing gzip and zstd archives (as
// logrotate leaves them: auth.log.2.gz) by their magic bytes, whatever the file is named.
func OpenLog(path string) (io.ReadCloser, error) { return OpenLogCounted(path, nil) }

// OpenLogCounted is OpenLog telling read, when set, of every read of the file itself: the bytes
// of an archive as stored, not as they decompress (a progress bar's share of the file's size).
func OpenLogCounted(path string, read func(n int)) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var in io.Reader = f
	if read != nil {
		in = countingReader{f, read}
	}
	r, err := Decompress(in)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &closers{Reader: r, close: []io.Closer{r, f}}, nil
}

// Decompress wraps r in a gzip or zstd decoder when it starts with their magic, and passes plain
// text through. Closing the result releases the decoder, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("cannot read gzip archive: %w", err)
		}
		return z, nil
	case bytes.HasPrefix(head, zstdMagic):
		z, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("cannot read zstd archive: %w", err)
		}
		return z.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

type closers struct {
	io.Reader
	close []io.Closer
}

func (c *closers) Close() error {
	var first error
	for _, cl := range c.close {
		if err := cl.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ReadAll reads a finite stream (a file, an archive, standard input) into blocks of whole lines —
// at the end of the stream the last line counts even without its newline — rewriting JSON lines
// when format is set, and hands every non-empty block to fn. fn owns the block: it must return it
// with PutBlock or pass it on. ReadAll stops at the first error of fn or of the reader.
func ReadAll(r io.Reader, src *Source, format *JSONFormat, fn func(*Block) error) error {
	var split Splitter
	for {
		b := GetBlock()
		n, err := split.Fill(b, r.Read)
		eof := n == 0 && err != nil
		if eof && len(b.Buf) > 0 && b.Buf[len(b.Buf)-1] != '\n' {
			b.Buf = append(b.Buf, '\n')
		}
		split.Split(b, src.Stats)
		b = format.apply(b, src.Stats)
		if len(b.Buf) > 0 {
			b.Source = src
			if ferr := fn(b); ferr != nil {
				return ferr
			}
		} else {
			PutBlock(b)
		}
		if eof {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

type countingReader struct {
	r    io.Reader
	read func(int)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read(n)
	return n, err
}
