package resume

import (
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Fixed waits of the reconnect policy.
const (
	// InvalidSessionDelay is the wait after op 9 false, before jitter.
	InvalidSessionDelay = 3 * time.Second
	// RateLimitDelay is the least wait after close 4008 or a "Too many
	// requests" answer.
	RateLimitDelay = 60 * time.Second
	// JitterFactor is the most [Jitter] adds, as a fraction of the delay.
	JitterFactor = 0.5
)

// Backoff settings of the reconnect policy.
const (
	BackoffInitial = 1 * time.Second
	BackoffFactor  = 2
	BackoffMax     = 60 * time.Second
	BackoffJitter  = 0.5
)

// NewBackOff gives the reconnect backoff: 1 s initial, factor 2,
// capped at 60 s, randomization 0.5, and no elapsed-time limit, so it never
// gives up (MaxElapsedTime 0). opts are applied after these defaults, e.g.
// backoff.WithRandomizationFactor(0) in tests. Wrap it in
// backoff.WithMaxRetries for an attempt cap.
//
// Like every cenkalti/backoff value it is not safe for concurrent use. Call
// Reset only after a session has stayed up for a stable period, never
// on a successful dial.
func NewBackOff(opts ...backoff.ExponentialBackOffOpts) *backoff.ExponentialBackOff {
	all := append([]backoff.ExponentialBackOffOpts{
		backoff.WithInitialInterval(BackoffInitial),
		backoff.WithMultiplier(BackoffFactor),
		backoff.WithMaxInterval(BackoffMax),
		backoff.WithRandomizationFactor(BackoffJitter),
		backoff.WithMaxElapsedTime(0),
	}, opts...)
	return backoff.NewExponentialBackOff(all...)
}

// Jitter spreads d upward: it returns d + d*[JitterFactor]*r, in [d, 1.5d)
// for r in [0, 1). It never returns less than d, so "at least 60 s" holds.
// r outside [0, 1) (or NaN) is clamped; pass rand.Float64() in production
// and a fixed value in tests.
func Jitter(d time.Duration, r float64) time.Duration {
	if d <= 0 {
		return d
	}
	if !(r > 0) { // also NaN
		r = 0
	}
	if r >= 1 {
		r = math.Nextafter(1, 0)
	}
	extra := float64(d) * JitterFactor * r
	if extra >= float64(math.MaxInt64-d) {
		return time.Duration(math.MaxInt64)
	}
	return d + time.Duration(extra)
}

// Delay gives the wait w stands for: 0 for [WaitNone], b.NextBackOff() for
// [WaitBackoff], and [InvalidSessionDelay] or [RateLimitDelay] with [Jitter]
// r for the others. It returns backoff.Stop when b gives up. b may be nil
// unless w is [WaitBackoff]; it is advanced only for WaitBackoff.
func (w Wait) Delay(b backoff.BackOff, r float64) time.Duration {
	switch w {
	case WaitBackoff:
		return b.NextBackOff()
	case WaitInvalidSession:
		return Jitter(InvalidSessionDelay, r)
	case WaitRateLimit:
		return Jitter(RateLimitDelay, r)
	}
	return 0
}
