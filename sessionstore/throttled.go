package sessionstore

import (
	"github.com/rs/zerolog"
)

// Throttled is the write scheduling of the stores, for a [Store] kept
// outside this package (the cluster's etcd store): per-account throttling
// to one write per [ThrottleInterval] with a trailing write, SaveNow,
// Clear, Flush and Close, with the same guarantees as [FileStore] (a
// slow write never overwrites a newer one; a failed trailing write stays
// pending and is retried). Create it with [NewThrottled].
type Throttled struct {
	t *throttle
}

// NewThrottled returns a Throttled that calls write for every write it
// schedules, with SavedAt already set from clock (nil means
// [SystemClock]). write is called with the account's write lock held, so
// an account's writes never overlap. Failures of trailing writes go to
// log.
func NewThrottled(clock Clock, log zerolog.Logger, write func(Record) error) *Throttled {
	if clock == nil {
		clock = SystemClock{}
	}
	return &Throttled{t: newThrottle(clock, log, write)}
}

// Save is [Store.Save]'s scheduling: a write at once, or the newest state
// kept pending for the trailing write.
func (t *Throttled) Save(r Record) error { return t.t.save(r) }

// SaveNow is [Store.SaveNow]'s: a write at once, dropping any pending one.
func (t *Throttled) SaveNow(r Record) error { return t.t.saveNow(r) }

// Clear drops the account's pending write and runs remove with the
// account's write lock held, so no older write can land after it.
func (t *Throttled) Clear(accountID string, remove func() error) error {
	return t.t.clear(accountID, remove)
}

// Serialize runs fn with the account's write lock held (a read that must
// not interleave with a write, such as a Load that removes an expired
// record).
func (t *Throttled) Serialize(accountID string, fn func()) {
	a := t.t.account(accountID)
	a.wmu.Lock()
	defer a.wmu.Unlock()
	fn()
}

// Flush writes every pending state now.
func (t *Throttled) Flush() error { return t.t.flush() }

// Close flushes and refuses later writes with [ErrClosed]; idempotent.
func (t *Throttled) Close() error { return t.t.close() }

// Closed returns a channel closed by Close.
func (t *Throttled) Closed() <-chan struct{} { return t.t.done }
