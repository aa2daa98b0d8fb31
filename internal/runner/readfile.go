package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/qqgate/qqgate/internal/fsutil"
)

// ErrNotRegular is wrapped by the error of a configuration or secret file
// that is not a regular file (a named pipe, a device, a directory): such a
// file could block a reload forever or never end.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by the error of a configuration or secret file
// larger than its bound.
var ErrTooLarge = errors.New("file too large")

// maxSecretBytes bounds a secret file; a real secret is tens of bytes.
const maxSecretBytes = 64 << 10

// readRegular reads the file at path, which must be a regular file of at
// most limit bytes. It is opened without blocking (a named pipe with no
// writer would otherwise block the open) and checked before anything is
// read; at most limit+1 bytes are read. A symbolic link is followed: a
// mounted secret or a ConfigMap-style ..data link is a regular use.
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s, %w", path, fsutil.DescribeMode(fi.Mode()), ErrNotRegular)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes, the limit is %d)", path, ErrTooLarge, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit { // it grew meanwhile
		return nil, fmt.Errorf("%s: %w (over %d bytes)", path, ErrTooLarge, limit)
	}
	return b, nil
}

// ReadSecretFile reads a client secret from path, without surrounding
// white space. The file must be a regular file of at most 64 KiB; other
// files fail with an error wrapping [ErrNotRegular] or [ErrTooLarge]. The
// secret never appears in an error.
func ReadSecretFile(path string) (string, error) {
	b, err := readRegular(path, maxSecretBytes)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
