//go:build !unix

package sessionstore

import (
	"os"
	"path/filepath"
	"sync"
)

// inProcessLocks backs Lock where flock(2) is unavailable: it only keeps
// out a second holder in this process.
var inProcessLocks sync.Map

// Lock implements [Store.Lock]. Without flock(2) on this platform it only
// guards against a second holder in this process.
func (s *FileStore) Lock(accountID string) (Unlocker, error) {
	path := filepath.Join(s.dir, "session-"+SafeID(accountID)+lockSuffix)
	if _, loaded := inProcessLocks.LoadOrStore(path, true); loaded {
		return nil, &LockedError{Path: path, PID: os.Getpid()}
	}
	return &memLock{release: func() { inProcessLocks.Delete(path) }}, nil
}
