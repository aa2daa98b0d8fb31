package sessionstore

import "sync/atomic"

// countWrites counts the store's record writes (successful or not). Call
// it before the store is used.
func countWrites(s *FileStore) *atomic.Int64 {
	var n atomic.Int64
	w := s.t.write
	s.t.write = func(r Record) error {
		n.Add(1)
		return w(r)
	}
	return &n
}
