package resume

import (
	"cmp"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Fixed waits of the reconnect policy, before jitter, when the client's
// configuration does not change them.
const (
	// DefaultInvalidSessionDelay is the wait after op 9 false.
	DefaultInvalidSessionDelay = 3 * time.Second
	// DefaultRateLimitDelay is the least wait after close 4008 or a "Too
	// many requests" answer.
	DefaultRateLimitDelay = 60 * time.Second
)

// jitterFactor is the most [Jitter] adds, as a fraction of the delay.
const jitterFactor = 0.5

// Backoff is the one configuration of an exponential backoff in qqgate,
// for the client's reconnects and the handlers' retries alike: factor 2,
// jittered, never giving up by itself (a caller that gives up counts its
// own attempts).
type Backoff struct {
	// Initial is the first wait.
	Initial time.Duration
	// Max caps a wait; below Initial it is taken as Initial.
	Max time.Duration
	// Jitter is the randomization factor in [0, 1]; negative means none,
	// above 1 is taken as 1.
	Jitter float64
}

// DefaultBackoff is the reconnect backoff: 1 s initial, 60 s cap,
// randomization 0.5.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 60 * time.Second, Jitter: 0.5}

// New gives the backoff b describes, each zero field taking def's value.
//
// Like every cenkalti/backoff value it is not safe for concurrent use. Call
// Reset only after a session has stayed up for a stable period, never
// on a successful dial.
func (b Backoff) New(def Backoff) *backoff.ExponentialBackOff {
	if b.Initial <= 0 {
		b.Initial = def.Initial
	}
	if b.Max <= 0 {
		b.Max = def.Max
	}
	b.Max = max(b.Max, b.Initial)
	switch {
	case b.Jitter == 0:
		b.Jitter = def.Jitter
	case b.Jitter < 0:
		b.Jitter = 0
	case b.Jitter > 1:
		b.Jitter = 1
	}
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(b.Initial),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(b.Max),
		backoff.WithRandomizationFactor(max(b.Jitter, 0)),
		backoff.WithMaxElapsedTime(0),
	)
	bo.Reset()
	return bo
}

// Jitter spreads d upward: it returns d + d*0.5*r, in [d, 1.5d) for r in
// [0, 1). It never returns less than d, so "at least 60 s" holds. r
// outside [0, 1) (or NaN) is clamped; pass rand.Float64() in production
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
	extra := float64(d) * jitterFactor * r
	if extra >= float64(math.MaxInt64-d) {
		return time.Duration(math.MaxInt64)
	}
	return d + time.Duration(extra)
}

// Delays are the fixed waits a [Wait] may stand for. Zero fields mean
// [DefaultInvalidSessionDelay] and [DefaultRateLimitDelay].
type Delays struct {
	InvalidSession time.Duration
	RateLimit      time.Duration
}

// Delay gives the wait w stands for: 0 for [WaitNone], b.NextBackOff() for
// [WaitBackoff], and the delay of d with [Jitter] r for the others. It
// returns backoff.Stop when b gives up. b may be nil unless w is
// [WaitBackoff]; it is advanced only for WaitBackoff.
func (w Wait) Delay(b backoff.BackOff, d Delays, r float64) time.Duration {
	switch w {
	case WaitBackoff:
		return b.NextBackOff()
	case WaitInvalidSession:
		return Jitter(cmp.Or(d.InvalidSession, DefaultInvalidSessionDelay), r)
	case WaitRateLimit:
		return Jitter(cmp.Or(d.RateLimit, DefaultRateLimitDelay), r)
	}
	return 0
}
