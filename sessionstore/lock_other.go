//go:build !unix

package sessionstore

import (
	"os"
	"path/filepath"
)

// Lock implements [Store.Lock]. Without flock(2) on this platform it only
// guards against a second holder through this FileStore.
func (s *FileStore) Lock(accountID string) (Unlocker, error) {
	path := filepath.Join(s.dir, "session-"+SafeID(accountID)+lockSuffix)
	if _, loaded := s.inProcLocks.LoadOrStore(path, true); loaded {
		return nil, &LockedError{Path: path, PID: os.Getpid()}
	}
	return &memLock{release: func() { s.inProcLocks.Delete(path) }}, nil
}
