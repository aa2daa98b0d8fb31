package client

import "time"

// clock is the time source of the connection loop: HELLO and READY
// timeouts, heartbeats, the stable-session timer and the savedAt refresh.
// Production uses the system clock; tests inject a fake one so timing rules
// are checked without sleeping.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

// timer is a one-shot timer made by a clock. Stop and Reset follow
// time.Timer (Go 1.23 semantics: no stale value is received after either).
type timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.Timer.C }
