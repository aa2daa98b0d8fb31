package sessionstore

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// throttle is the write scheduling shared by the stores: per-account
// throttling with a trailing write, SaveNow, Clear, Flush and Close. The
// backend's write function does the actual write.
//
// Every Save, SaveNow and Clear takes a generation number; a write whose
// generation is older than what is already on disk (or cleared) is
// dropped, so a slow write can never overwrite a newer one.
type throttle struct {
	clock    Clock
	log      zerolog.Logger
	interval time.Duration
	// write stores r (SavedAt already set). Called with the account's
	// wmu held.
	write func(r Record) error

	mu     sync.Mutex
	accts  map[string]*acct // by account id; guarded by mu
	closed bool             // guarded by mu
	done   chan struct{}    // closed by close
}

// acct is one account's throttle state.
type acct struct {
	wmu     sync.Mutex // serialises writes and removals of the record
	written uint64     // guarded by wmu: generation last written or cleared

	// guarded by throttle.mu
	gen        uint64    // generation of the latest Save/SaveNow/Clear
	last       time.Time // when the last write started
	hasLast    bool
	pending    *Record
	pendingGen uint64
	timer      Timer
	timerID    uint64 // identifies the live timer; bumped when it stops
}

func newThrottle(clock Clock, log zerolog.Logger, write func(Record) error) *throttle {
	return &throttle{
		clock:    clock,
		log:      log,
		interval: ThrottleInterval,
		write:    write,
		accts:    make(map[string]*acct),
		done:     make(chan struct{}),
	}
}

// get returns the account's state; t.mu must be held.
func (t *throttle) get(accountID string) *acct {
	a := t.accts[accountID]
	if a == nil {
		a = &acct{}
		t.accts[accountID] = a
	}
	return a
}

// account returns the account's state.
func (t *throttle) account(accountID string) *acct {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.get(accountID)
}

// stopTimer cancels a pending trailing write; t.mu must be held.
func (a *acct) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.timerID++
}

// retryAfterFailure is how many throttle intervals a failed trailing write
// waits before it is tried again.
const retryAfterFailure = 5

func (t *throttle) save(r Record) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	a := t.get(r.AccountID)
	a.gen++
	g := a.gen
	now := t.clock.Now()
	since := now.Sub(a.last)
	if a.timer == nil && (!a.hasLast || since >= t.interval || since < 0) {
		a.last, a.hasLast = now, true
		a.pending = nil
		t.mu.Unlock()
		return t.do(a, r, g)
	}
	a.pending, a.pendingGen = &r, g
	if a.timer == nil {
		a.timerID++
		id := a.timerID
		a.timer = t.clock.AfterFunc(t.interval-since, func() { t.fire(a, id) })
	}
	t.mu.Unlock()
	return nil
}

// fire is the trailing write.
func (t *throttle) fire(a *acct, id uint64) {
	t.mu.Lock()
	if a.timerID != id || a.timer == nil {
		t.mu.Unlock()
		return // stopped by SaveNow, Clear, Flush or Close
	}
	a.timer = nil
	p, g := a.pending, a.pendingGen
	a.pending = nil
	if p == nil {
		t.mu.Unlock()
		return
	}
	a.last, a.hasLast = t.clock.Now(), true
	t.mu.Unlock()
	if err := t.do(a, *p, g); err != nil {
		t.log.Error().Err(err).Str("account", p.AccountID).Msg("session write failed; kept pending")
		t.restore(a, p, g)
	}
}

// restore puts back a state whose write failed, unless something newer
// came along, and arms a retry: with no later Save (a bot that went
// quiet), the newest state must still reach the disk once it can.
func (t *throttle) restore(a *acct, p *Record, g uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.pending != nil || a.gen != g {
		return
	}
	a.pending, a.pendingGen = p, g
	if a.timer == nil && !t.closed {
		a.timerID++
		id := a.timerID
		a.timer = t.clock.AfterFunc(retryAfterFailure*t.interval, func() { t.fire(a, id) })
	}
}

func (t *throttle) saveNow(r Record) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	a := t.get(r.AccountID)
	a.gen++
	g := a.gen
	a.stopTimer()
	a.pending = nil
	a.last, a.hasLast = t.clock.Now(), true
	t.mu.Unlock()
	return t.do(a, r, g)
}

// do writes r as generation g unless something newer is already written.
func (t *throttle) do(a *acct, r Record, g uint64) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if g <= a.written {
		return nil
	}
	r.SavedAt = t.clock.Now()
	if err := t.write(r); err != nil {
		return err
	}
	a.written = g
	return nil
}

// clear drops pending writes and runs remove with the write lock held, so
// no older write can land after it.
func (t *throttle) clear(accountID string, remove func() error) error {
	t.mu.Lock()
	a := t.get(accountID)
	a.gen++
	g := a.gen
	a.stopTimer()
	a.pending = nil
	t.mu.Unlock()
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.written = g
	return remove()
}

// flush writes every pending state now.
func (t *throttle) flush() error {
	type job struct {
		a *acct
		r *Record
		g uint64
	}
	var jobs []job
	t.mu.Lock()
	now := t.clock.Now()
	for _, a := range t.accts {
		if a.pending == nil {
			continue
		}
		jobs = append(jobs, job{a, a.pending, a.pendingGen})
		a.stopTimer()
		a.pending = nil
		a.last, a.hasLast = now, true
	}
	t.mu.Unlock()
	var errs []error
	for _, j := range jobs {
		if err := t.do(j.a, *j.r, j.g); err != nil {
			errs = append(errs, fmt.Errorf("flush session of account %q: %w", j.r.AccountID, err))
			t.restore(j.a, j.r, j.g)
		}
	}
	return errors.Join(errs...)
}

// close flushes and refuses further writes; idempotent.
func (t *throttle) close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.mu.Unlock()
	err := t.flush()
	t.mu.Lock()
	for _, a := range t.accts {
		a.stopTimer()
	}
	t.mu.Unlock()
	return err
}

func (t *throttle) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}
