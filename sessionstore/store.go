package sessionstore

import (
	"context"
	"time"
)

// Store keeps session records, one per account. All implementations are
// safe for concurrent use by multiple goroutines.
type Store interface {
	// Load returns the account's record if it is present, not expired
	// and ours: accountId matches, and appId matches when both it and
	// appID are set. A missing, expired, foreign or otherwise unusable
	// record gives an error wrapping [ErrNoSession]; an expired record is
	// removed, a foreign one left alone. A record that is ours but not
	// resumable (no session id or null lastSeq) is returned together with
	// the ErrNoSession error, so its IntentLevelIndex stays usable. A file
	// that does not parse gives a [*CorruptError] and is renamed aside.
	Load(ctx context.Context, accountID, appID string) (Record, error)

	// Save stores r, throttled: at most one write per [ThrottleInterval]
	// per account. A save within the interval replaces the pending state,
	// which a timer writes when the interval ends, so the newest state
	// always reaches the store. The store sets SavedAt.
	// Save returns the error of a write it does at once; errors of
	// trailing writes are logged and the state stays pending for the
	// next Save, Flush or Close.
	Save(ctx context.Context, r Record) error

	// SaveNow writes r at once (READY, RESUMED, graceful close) and
	// drops any pending throttled write of that account.
	SaveNow(ctx context.Context, r Record) error

	// Clear removes the account's record, if its accountId matches, and
	// any pending write. A missing record is not an error.
	Clear(ctx context.Context, accountID string) error

	// List returns every record in the store, including expired and
	// corrupt ones, sorted by path. It changes nothing.
	List(ctx context.Context) ([]Entry, error)

	// RemoveExpired removes expired records and corrupt files (set-aside
	// ones, and in-place ones not modified within [Expiry]), and returns
	// the paths it removed.
	RemoveExpired(ctx context.Context) ([]string, error)

	// Flush writes all pending throttled saves now.
	Flush(ctx context.Context) error

	// Close flushes pending saves and stops timers. Later writes and
	// watches fail with [ErrClosed]. Close is idempotent.
	Close() error

	// Watch blocks until ctx ends (returning ctx.Err()) or the store is
	// closed (returning ErrClosed), calling fn, debounced, each time
	// another process rewrites or removes the account's record. The
	// store's own writes are not reported. fn runs on Watch's goroutine.
	Watch(ctx context.Context, accountID string, fn func(Change)) error

	// Lock takes the account's one-live-process lock. A second holder,
	// in this process or another, fails at once with a [*LockedError]
	// naming the holder's PID. The lock goes away on Unlock, or with the
	// process.
	Lock(accountID string) (Unlocker, error)
}

// Unlocker releases a lock taken by [Store.Lock]. Unlock is idempotent.
type Unlocker interface {
	Unlock() error
}

// Entry is one record found by [Store.List].
type Entry struct {
	// Record is the parsed record; zero when Err is set.
	Record Record
	// Path is the record's file (for [MemoryStore], its would-be file
	// name).
	Path string
	// Expired is Record.Expired at the time of listing.
	Expired bool
	// Err is a [*CorruptError] when the file does not parse, or an error
	// wrapping [ErrUnsafePath] when the store refuses to read it (not a
	// regular file of the current user's).
	Err error
}

// Change is what [Store.Watch] reports.
type Change struct {
	// AccountID is the watched account.
	AccountID string
	// Removed is true when the record is gone.
	Removed bool
	// Record is the new record when it was rewritten and parses.
	Record Record
	// Err is set when the new file cannot be read or does not parse (a
	// [*CorruptError], left in place).
	Err error
}

// Clock is the time source of a store: Now for savedAt and expiry,
// AfterFunc for trailing throttled writes. Tests inject a fake one.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer made by [Clock.AfterFunc].
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// SystemClock is the real [Clock]: time.Now and time.AfterFunc.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc calls time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
