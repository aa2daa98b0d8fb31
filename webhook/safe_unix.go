//go:build unix

package webhook

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openSafe opens a file of the inbox directory: never through a link in
// its last element (O_NOFOLLOW), never waiting on a pipe or device
// (O_NONBLOCK); only a regular file of this user's with one link is kept
// open.
func openSafe(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK) || errors.Is(err, syscall.ENXIO) {
			return nil, &UnsafePathError{Path: path, Reason: "is not a regular file"}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkOwned(path, fi, false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOwned accepts a regular file with one link (or, for dir, a
// directory) owned by this process's effective user.
func checkOwned(path string, fi fs.FileInfo, dir bool) error {
	switch {
	case dir && !fi.IsDir():
		return &UnsafePathError{Path: path, Reason: "is not a directory"}
	case !dir && !fi.Mode().IsRegular():
		return &UnsafePathError{Path: path, Reason: "is not a regular file"}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != os.Geteuid() {
		return &UnsafePathError{Path: path, Reason: fmt.Sprintf("is owned by uid %d, not by this user (uid %d)", uid, os.Geteuid())}
	}
	if !dir && st.Nlink != 1 {
		return &UnsafePathError{Path: path, Reason: fmt.Sprintf("has %d hard links", st.Nlink)}
	}
	return nil
}

// lockFile takes an exclusive flock on f without waiting.
func lockFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return ErrLocked
		}
		return err
	}
	return nil
}

// openDir opens the inbox directory itself, never through a link.
func openDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
			return nil, &UnsafePathError{Path: path, Reason: "is a symbolic link or not a directory"}
		}
		return nil, fmt.Errorf("webhook: inbox: %w", err)
	}
	return f, nil
}
