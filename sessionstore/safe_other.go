//go:build !unix

package sessionstore

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/qqgate/qqgate/internal/fsutil"
)

// openFile opens a file in the session directory for flag (with perm when
// it creates it) and checks it with checkFile. Without O_NOFOLLOW on this
// platform, the file is looked at before and after opening, and refused if
// it is a link or special file or was swapped in between.
func openFile(path string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	before, err := os.Lstat(path)
	switch {
	case err == nil:
		if err := checkFile(path, before); err != nil {
			return nil, nil, err
		}
	case flag&os.O_CREATE == 0:
		return nil, nil, err
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkFile(path, fi)
	}
	if err == nil && before != nil && !os.SameFile(before, fi) {
		err = &UnsafePathError{Path: path, Reason: "was replaced while being opened"}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// checkFile accepts a regular file; file ownership is not checked on this
// platform.
func checkFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &UnsafePathError{Path: path, Reason: fsutil.DescribeMode(fi.Mode())}
	}
	return nil
}

// checkDir accepts a directory; ownership is not checked on this platform.
func checkDir(path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return nil
}
