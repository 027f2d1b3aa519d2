package ingest

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// watcher wakes a tailer as soon as anything changes in the folders of its pattern, instead of
// waiting for the next poll. Polling stays as the fallback (and covers what inotify cannot see,
// such as a symlink's target in another folder).
type watcher struct {
	f    *os.File
	wake chan struct{}
}

// newWatcher watches the folder of pattern (when that folder has no glob characters). It returns
// nil when inotify is unavailable.
func newWatcher(pattern string) *watcher {
	dir := filepath.Dir(pattern)
	if strings.ContainsAny(dir, "*?[") {
		return nil
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil
	}
	// A non-blocking descriptor in os.File is driven by Go's poller: Close unblocks Read.
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify:"+dir), wake: make(chan struct{}, 1)}
	go w.loop()
	return w
}

func (w *watcher) loop() {
	buf := make([]byte, 64*1024)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return
		}
		select {
		case w.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

func (w *watcher) close() {
	if w != nil {
		w.f.Close()
	}
}

func (w *watcher) channel() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.wake
}
