//go:build unix

package sessionstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Lock implements [Store.Lock] with flock(2) on session-<safe>.lock beside
// the record; the holder's PID is written into the file. The kernel drops
// the lock when the process dies, so a crash leaves no stale lock. Two
// account ids with the same [SafeID] share one lock. A lock file that is
// not a regular file of the current user's with one link (a planted
// symbolic link, for one) is refused with an error wrapping
// [ErrUnsafePath], never truncated.
func (s *FileStore) Lock(accountID string) (Unlocker, error) {
	if err := s.ensureDir(); err != nil {
		return nil, fmt.Errorf("lock session: %w", err)
	}
	path := filepath.Join(s.dir, "session-"+SafeID(accountID)+lockSuffix)
	defer s.fileIO()()
	// Only a regular file of ours with one link is truncated and written:
	// never a planted link's target, never a named pipe.
	f, _, err := openFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("lock session: %w", err)
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := io.ReadAll(io.LimitReader(f, 32))
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &LockedError{Path: path, PID: pid}
		}
		return nil, fmt.Errorf("lock session %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			s.log.Warn().Err(err).Str("path", path).Msg("cannot write PID into lock file")
		}
	}
	return &fileLock{f: f}, nil
}

// fileLock is a held flock.
type fileLock struct {
	once sync.Once
	f    *os.File
}

// Unlock clears the PID and releases the lock; idempotent.
func (l *fileLock) Unlock() error {
	var err error
	l.once.Do(func() {
		_ = l.f.Truncate(0)
		err = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
	})
	return err
}
