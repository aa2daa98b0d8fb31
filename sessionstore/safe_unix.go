//go:build unix

package sessionstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openFile opens a file in the session directory for flag (with perm when
// it creates it) and checks it with checkFile. It never follows a link in
// the last path element (O_NOFOLLOW) and never waits on a named pipe or
// device (O_NONBLOCK, which has no effect on the regular file it accepts).
// A refused file is closed again before anything is read or written.
func openFile(path string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// ELOOP for a link (EMLINK on some BSDs), ENXIO for a socket.
			if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
				return nil, nil, &UnsafePathError{Path: path, Reason: describeMode(fi.Mode())}
			}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkFile(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// checkFile accepts a regular file with one link, owned by this process's
// effective user.
func checkFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &UnsafePathError{Path: path, Reason: describeMode(fi.Mode())}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != os.Geteuid() {
		return &UnsafePathError{Path: path, Reason: notOwned(uid)}
	}
	if n := uint64(st.Nlink); n != 1 {
		return &UnsafePathError{Path: path, Reason: fmt.Sprintf("has %d hard links", n)}
	}
	return nil
}

// checkDir accepts a directory owned by this process's effective user.
func checkDir(path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != os.Geteuid() {
			return &UnsafePathError{Path: path, Reason: notOwned(uid)}
		}
	}
	return nil
}

func notOwned(uid int) string {
	return fmt.Sprintf("is owned by uid %d, not by this user (uid %d)", uid, os.Geteuid())
}
