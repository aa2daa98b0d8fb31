package client

import "time"

// clock is the time source of a connection: HELLO and READY timeouts,
// heartbeats, the stable-session timer, the savedAt refresh and the wait
// after a failed write. Production uses the system clock; tests inject a
// fake one so timing rules are checked without sleeping.
type clock interface {
	Now() time.Time
	// AfterFunc runs f on a goroutine of its own d from now, as
	// time.AfterFunc does.
	AfterFunc(d time.Duration, f func()) timer
}

// timer is a one-shot timer made by a clock's AfterFunc. Stop and Reset
// follow time.Timer: Stop reports whether it stopped f from running, Reset
// schedules f again (once) d from now.
type timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }
