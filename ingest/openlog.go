package ingest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrNotRegular is returned for a log path that is not a regular file (a directory, a FIFO, a
// device): such a path would block the reader (FIFO), never end (/dev/zero) or fail on every poll.
var ErrNotRegular = errors.New("not a regular file")

// ErrForeignSymlink is returned for a log path that is a symlink owned by neither root nor the
// owner of the file it points to: whoever can write the log's folder could otherwise point it at
// a file only root may read (/etc/shadow) and have the daemon read it.
var ErrForeignSymlink = errors.New("symlink owned by neither root nor its target's owner")

// openRegular opens a followed log path for reading without ever blocking: the open is
// non-blocking (a FIFO cannot hang it), and the file opened must be a regular file; when path is
// a symlink, the kernel's protected_symlinks rule applies whatever the sysctl says: it is followed
// only when owned by root or by the owner of its target. The caller owns the file.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	lst, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, st.Mode().Type())
	}
	if lst.Mode()&os.ModeSymlink != 0 {
		link, target := owner(lst), owner(st)
		if link != 0 && link != target {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w (link uid %d, target uid %d)", path, ErrForeignSymlink, link, target)
		}
	}
	return f, st, nil
}

func owner(st os.FileInfo) uint32 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid
	}
	return 0
}
