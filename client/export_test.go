package client

import (
	"context"
	"sync"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// SetSleep replaces the client's waits (backoff, invalid session, rate
// limit, identify budget) so tests neither sleep nor wait on the clock.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// SetTokenClock replaces the token source's clock.
func SetTokenClock(s *AppTokenSource, now func() time.Time) { s.now = now }

// LimiterUpdate records a session_start_limit in l, as a discovery does.
func LimiterUpdate(l *IdentifyLimiter, appID string, lim *wire.SessionStartLimit) {
	l.update(appID, lim)
}

// LimiterReserve takes an IDENTIFY slot of l, as an attempt does.
func LimiterReserve(l *IdentifyLimiter, appID string, maxConcurrency int) time.Duration {
	return l.reserve(appID, maxConcurrency)
}

// SetLimiterClock replaces the identify limiter's clock.
func SetLimiterClock(l *IdentifyLimiter, now func() time.Time) { l.now = now }

// SetRefreshEvery shortens the savedAt refresh while connected.
func SetRefreshEvery(c *Client, d time.Duration) { c.refreshEvery = d }

// SetClock replaces the connection loop's clock (timeouts, heartbeats, the
// stable-session timer, the savedAt refresh, session age).
func SetClock(c *Client, clk *FakeClock) { c.clock = clk }

// FakeClock is a manual clock: time moves only with Advance, and timers
// fire when it passes their deadline.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer // pending
	created []time.Duration
	changed chan struct{}
}

// NewFakeClock returns a clock at a fixed start time.
func NewFakeClock() *FakeClock {
	return &FakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), changed: make(chan struct{})}
}

type fakeTimer struct {
	clk      *FakeClock
	f        func() // run on a goroutine of its own when the timer fires
	deadline time.Time
	d        time.Duration
	pending  bool
}

// Now gives the fake time.
func (f *FakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// AfterFunc makes a timer that runs fn on a goroutine of its own, as
// time.AfterFunc does, once the fake now passes d from now.
func (f *FakeClock) AfterFunc(d time.Duration, fn func()) timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clk: f, f: fn}
	f.created = append(f.created, d)
	f.armLocked(t, d)
	return t
}

func (f *FakeClock) armLocked(t *fakeTimer, d time.Duration) {
	t.d, t.deadline = d, f.now.Add(d)
	if !t.pending {
		t.pending = true
		f.timers = append(f.timers, t)
	}
	f.fireLocked()
	f.notifyLocked()
}

func (f *FakeClock) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// fireLocked fires every pending timer whose deadline has passed.
func (f *FakeClock) fireLocked() {
	keep := f.timers[:0]
	for _, t := range f.timers {
		if t.deadline.After(f.now) {
			keep = append(keep, t)
			continue
		}
		t.pending = false
		go t.f()
	}
	clear(f.timers[len(keep):])
	f.timers = keep
}

func (f *FakeClock) stopLocked(t *fakeTimer) bool {
	was := t.pending
	if t.pending {
		t.pending = false
		for i, x := range f.timers {
			if x == t {
				f.timers = append(f.timers[:i], f.timers[i+1:]...)
				break
			}
		}
	}
	f.notifyLocked()
	return was
}

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	return t.clk.stopLocked(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.clk.stopLocked(t)
	t.clk.armLocked(t, d)
	return was
}

// Advance moves the fake time on by d, firing the timers it passes.
func (f *FakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.fireLocked()
	f.notifyLocked()
}

// Created counts the timers made with duration d so far.
func (f *FakeClock) Created(d time.Duration) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, x := range f.created {
		if x == d {
			n++
		}
	}
	return n
}

// Pending counts the pending timers set to d (by AfterFunc or Reset).
func (f *FakeClock) Pending(d time.Duration) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if t.d == d {
			n++
		}
	}
	return n
}

// Changed returns a channel closed at the next change: a timer made,
// stopped, reset or fired, or time advanced.
func (f *FakeClock) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// SetMinHeartbeat lowers the heartbeat interval's floor, for tests that
// heartbeat every few milliseconds.
func SetMinHeartbeat(c *Client, d time.Duration) { c.minHeartbeat = d }

// SetDialTimeout shortens the WebSocket dial's own timeout.
func SetDialTimeout(c *Client, d time.Duration) { c.dialTimeout = d }
