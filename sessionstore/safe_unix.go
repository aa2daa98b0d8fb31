//go:build unix

package sessionstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/qqgate/qqgate/internal/fsutil"
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
				return nil, nil, &UnsafePathError{Path: path, Reason: fsutil.DescribeMode(fi.Mode())}
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
		return &UnsafePathError{Path: path, Reason: fsutil.DescribeMode(fi.Mode())}
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

// checkDir accepts a directory owned by this process's effective user
// whose ancestors pass checkAncestors.
func checkDir(path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != os.Geteuid() {
			return &UnsafePathError{Path: path, Reason: notOwned(uid)}
		}
	}
	return checkAncestors(path)
}

// checkAncestors refuses a directory that another user could swap for a
// link to somewhere else: one below a directory (or link) owned by a user
// other than root and this one, or below a directory every user may write
// that lacks the sticky bit. /tmp (root's, sticky) passes; a
// /tmp/.openclaw made by another user does not. Both the path as given and
// the path with its links resolved are checked.
func checkAncestors(dir string) error {
	paths := ancestors(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		paths = append(paths, ancestors(real)...)
	}
	euid := os.Geteuid()
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // it was reachable a moment ago; the next check sees it
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		if uid := int(st.Uid); uid != 0 && uid != euid {
			return &UnsafePathError{Path: p, Reason: notOwned(uid) + ", so that user could replace " + dir}
		}
		if fi.IsDir() && fi.Mode().Perm()&0o002 != 0 && fi.Mode()&fs.ModeSticky == 0 {
			return &UnsafePathError{Path: p, Reason: "is writable by every user without the sticky bit, so anyone could replace " + dir}
		}
	}
	return nil
}

// ancestors lists the directories above the absolute path dir, the root
// first.
func ancestors(dir string) []string {
	var out []string
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		out = append(out, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	slices.Reverse(out)
	return out
}

func notOwned(uid int) string {
	return fmt.Sprintf("is owned by uid %d, not by this user (uid %d)", uid, os.Geteuid())
}
