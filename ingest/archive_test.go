package ingest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestOpenLogArchives(t *testing.T) {
	dir := t.TempDir()
	text := strings.Repeat("Nov 24 10:01:02 h sshd[1]: Failed password for root from 203.0.113.1 port 22 ssh2\n", 1000)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write([]byte(text))
	gw.Close()
	zw, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write([]byte(text))
	zw.Close()
	files := map[string][]byte{"auth.log": []byte(text), "auth.log.2.gz": gz.Bytes(), "auth.log.3.zst": zs.Bytes(), "misnamed.log": gz.Bytes()}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		r, err := OpenLog(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(got) != text {
			t.Fatalf("%s: %d bytes, err %v", name, len(got), err)
		}
	}
	// A truncated archive is an error, not silently short text.
	p := filepath.Join(dir, "broken.gz")
	os.WriteFile(p, gz.Bytes()[:len(gz.Bytes())/2], 0o644)
	r, err := OpenLog(p)
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	if err == nil {
		t.Fatal("a truncated gzip archive read without error")
	}
}
