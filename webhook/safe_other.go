//go:build !unix

package webhook

import (
	"io/fs"
	"os"
)

// openSafe opens a file of the inbox directory; only a regular file is
// kept open.
func openSafe(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &UnsafePathError{Path: path, Reason: "is not a regular file"}
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// checkOwned checks the kind of the file only: ownership is a unix notion.
func checkOwned(path string, fi fs.FileInfo, dir bool) error {
	if dir && !fi.IsDir() || !dir && !fi.Mode().IsRegular() {
		return &UnsafePathError{Path: path, Reason: "is not a regular file or directory"}
	}
	return nil
}

// lockFile does nothing: without flock, one process per inbox is the
// caller's care.
func lockFile(*os.File) error { return nil }

// openDir opens the inbox directory, refusing a link.
func openDir(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &UnsafePathError{Path: path, Reason: "is a symbolic link"}
	}
	return os.Open(path)
}
