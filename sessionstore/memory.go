package sessionstore

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// MemoryStoreConfig configures [NewMemoryStore]. The zero value is usable.
type MemoryStoreConfig struct {
	// Clock is the time source for savedAt, expiry and throttling. Zero
	// means [SystemClock].
	Clock Clock
	// Logger receives failures of trailing saves. Zero means no logging.
	Logger zerolog.Logger
}

// MemoryStore is a [Store] in memory, for tests and for embedding where
// no resume across restarts is wanted. It has the same semantics as
// [FileStore] (throttling, expiry, the file-name collision of [SafeID],
// in-process locks) except that nothing can be corrupt and Watch only
// waits: no other process writes to it. It is safe for concurrent use.
type MemoryStore struct {
	clock Clock
	t     *throttle

	mu      sync.Mutex
	records map[string]Record // by file name; guarded by mu
	locks   map[string]bool   // by file name; guarded by mu
	writes  int               // guarded by mu
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore. The config is optional:
// NewMemoryStore() uses the defaults; only the first config is used.
func NewMemoryStore(config ...MemoryStoreConfig) *MemoryStore {
	var cfg MemoryStoreConfig
	if len(config) > 0 {
		cfg = config[0]
	}
	s := &MemoryStore{
		clock:   cfg.Clock,
		records: make(map[string]Record),
		locks:   make(map[string]bool),
	}
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	s.t = newThrottle(s.clock, cfg.Logger, s.write)
	return s
}

func (s *MemoryStore) write(r Record) error {
	r.SavedAt = fromMS(ms(r.SavedAt)) // as a file would hold them
	r.LastConnectedAt = fromMS(ms(r.LastConnectedAt))
	if r.Extra != nil {
		r.Extra = cloneExtra(r.Extra)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[FileName(r.AccountID)] = r
	s.writes++
	return nil
}

func cloneExtra(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// Writes returns how many records have been written so far, for tests
// of the throttle.
func (s *MemoryStore) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Peek returns the account's record as stored, even if expired or not
// resumable; a missing or foreign one gives [ErrNoSession].
func (s *MemoryStore) Peek(ctx context.Context, accountID string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	r, ok := s.records[FileName(accountID)]
	s.mu.Unlock()
	if !ok {
		return Record{}, noSession(accountID, "no record")
	}
	if r.AccountID != accountID {
		return Record{}, noSession(accountID, "record belongs to account %q", r.AccountID)
	}
	return r, nil
}

// Load implements [Store.Load].
func (s *MemoryStore) Load(ctx context.Context, accountID, appID string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	a := s.t.account(accountID)
	a.wmu.Lock()
	defer a.wmu.Unlock()
	name := FileName(accountID)
	s.mu.Lock()
	r, ok := s.records[name]
	if !ok {
		s.mu.Unlock()
		return Record{}, noSession(accountID, "no record")
	}
	if r.AccountID != accountID {
		s.mu.Unlock()
		return Record{}, noSession(accountID, "record belongs to account %q", r.AccountID)
	}
	now := s.clock.Now()
	if r.Expired(now) {
		delete(s.records, name)
		s.mu.Unlock()
		return Record{}, noSession(accountID, "expired (saved %s ago)", now.Sub(r.SavedAt).Round(time.Second))
	}
	s.mu.Unlock()
	if r.AppID != "" && appID != "" && r.AppID != appID {
		return Record{}, noSession(accountID, "record is for app %q, not %q", r.AppID, appID)
	}
	if r.Extra != nil {
		r.Extra = cloneExtra(r.Extra)
	}
	if r.SessionID == "" || !r.HasSeq {
		return r, noSession(accountID, "record has no session id or seq")
	}
	return r, nil
}

// Save implements [Store.Save].
func (s *MemoryStore) Save(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.save(r)
}

// SaveNow implements [Store.SaveNow].
func (s *MemoryStore) SaveNow(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.saveNow(r)
}

// Clear implements [Store.Clear].
func (s *MemoryStore) Clear(ctx context.Context, accountID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.clear(accountID, func() error {
		name := FileName(accountID)
		s.mu.Lock()
		defer s.mu.Unlock()
		if r, ok := s.records[name]; ok && r.AccountID == accountID {
			delete(s.records, name)
		}
		return nil
	})
}

// List implements [Store.List]; Path is the would-be file name.
func (s *MemoryStore) List(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.records))
	for name, r := range s.records {
		out = append(out, Entry{Record: r, Path: name, Expired: r.Expired(now)})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		switch {
		case a.Path < b.Path:
			return -1
		case a.Path > b.Path:
			return 1
		}
		return 0
	})
	return out, nil
}

// RemoveExpired implements [Store.RemoveExpired].
func (s *MemoryStore) RemoveExpired(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []string
	for name, r := range s.records {
		if r.Expired(now) {
			delete(s.records, name)
			removed = append(removed, name)
		}
	}
	slices.Sort(removed)
	return removed, nil
}

// Flush implements [Store.Flush].
func (s *MemoryStore) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.flush()
}

// Close implements [Store.Close].
func (s *MemoryStore) Close() error { return s.t.close() }

// Watch implements [Store.Watch]. Nothing else writes a MemoryStore, so it
// only waits for ctx or Close.
func (s *MemoryStore) Watch(ctx context.Context, accountID string, fn func(Change)) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.t.done:
		return ErrClosed
	}
}

// Lock implements [Store.Lock] within this MemoryStore: a second Lock of
// the same account fails with a [*LockedError] naming this process.
func (s *MemoryStore) Lock(accountID string) (Unlocker, error) {
	name := "session-" + SafeID(accountID) + lockSuffix
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[name] {
		return nil, &LockedError{Path: name, PID: os.Getpid()}
	}
	s.locks[name] = true
	return &memLock{release: func() {
		s.mu.Lock()
		delete(s.locks, name)
		s.mu.Unlock()
	}}, nil
}

// memLock is an in-process lock.
type memLock struct {
	once    sync.Once
	release func()
}

// Unlock releases the lock; idempotent.
func (l *memLock) Unlock() error {
	l.once.Do(l.release)
	return nil
}
