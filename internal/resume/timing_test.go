package resume

import (
	"math"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
)

func TestNewBackOff(t *testing.T) {
	t.Parallel()
	b := Backoff{}.New(DefaultBackoff)
	assert.Equal(t, time.Second, b.InitialInterval)
	assert.Equal(t, 2.0, b.Multiplier)
	assert.Equal(t, 60*time.Second, b.MaxInterval)
	assert.Equal(t, 0.5, b.RandomizationFactor)
	assert.Equal(t, time.Duration(0), b.MaxElapsedTime)

	b = Backoff{Jitter: -1}.New(DefaultBackoff)
	var got []time.Duration
	for range 9 {
		got = append(got, b.NextBackOff())
	}
	s := time.Second
	assert.Equal(t, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s, 60 * s}, got)
	b.Reset()
	assert.Equal(t, s, b.NextBackOff())
}

func TestBackOffJitterBounds(t *testing.T) {
	t.Parallel()
	b := DefaultBackoff.New(Backoff{})
	for i := range 50 {
		d := b.NextBackOff()
		base := min(float64(time.Second)*math.Pow(2, float64(i)), float64(60*time.Second))
		assert.GreaterOrEqual(t, float64(d), base*0.5, i)
		assert.LessOrEqual(t, float64(d), base*1.5, i)
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	d := 3 * time.Second
	assert.Equal(t, d, Jitter(d, 0))
	assert.Equal(t, d+d/4, Jitter(d, 0.5))
	for _, r := range []float64{0, 0.1, 0.5, 0.999999, 1, 2, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		got := Jitter(d, r)
		assert.GreaterOrEqual(t, got, d, r)
		assert.Less(t, got, d+d/2, r)
	}
	assert.GreaterOrEqual(t, Jitter(DefaultRateLimitDelay, 0), 60*time.Second, "rate-limit wait is at least 60s")
	assert.Equal(t, time.Duration(0), Jitter(0, 0.7))
	assert.Equal(t, time.Duration(-5), Jitter(-5, 0.7))
	assert.Equal(t, time.Duration(math.MaxInt64), Jitter(time.Duration(math.MaxInt64-1), 0.9))
}

func TestWaitDelay(t *testing.T) {
	t.Parallel()
	b := Backoff{Jitter: -1}.New(DefaultBackoff)
	none := Delays{}
	assert.Equal(t, time.Duration(0), WaitNone.Delay(nil, none, 0.5))
	assert.Equal(t, time.Second, WaitBackoff.Delay(b, none, 0.5))
	assert.Equal(t, 2*time.Second, WaitBackoff.Delay(b, none, 0.5))
	assert.Equal(t, DefaultInvalidSessionDelay+DefaultInvalidSessionDelay/4, WaitInvalidSession.Delay(nil, none, 0.5))
	assert.Equal(t, DefaultRateLimitDelay, WaitRateLimit.Delay(nil, none, 0))
	assert.Equal(t, 4*time.Second, WaitBackoff.Delay(b, none, 0), "others do not advance the backoff")

	// Configured delays replace the defaults.
	set := Delays{InvalidSession: 10 * time.Millisecond, RateLimit: time.Second}
	assert.Equal(t, 10*time.Millisecond, WaitInvalidSession.Delay(nil, set, 0))
	assert.Equal(t, time.Second+time.Second/4, WaitRateLimit.Delay(nil, set, 0.5))

	capped := backoff.WithMaxRetries(DefaultBackoff.New(Backoff{}), 1)
	assert.NotEqual(t, backoff.Stop, WaitBackoff.Delay(capped, none, 0))
	assert.Equal(t, backoff.Stop, WaitBackoff.Delay(capped, none, 0))
}

// Zero fields take the defaults given; a cap below the first wait is the
// first wait; jitter is clamped to [0, 1].
func TestBackoffConfig(t *testing.T) {
	t.Parallel()
	def := Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.5}
	b := Backoff{}.New(def)
	assert.Equal(t, 500*time.Millisecond, b.InitialInterval)
	assert.Equal(t, 30*time.Second, b.MaxInterval)
	assert.Equal(t, 0.5, b.RandomizationFactor)
	b = Backoff{Initial: 2 * time.Second, Max: time.Second, Jitter: 7}.New(def)
	assert.Equal(t, 2*time.Second, b.MaxInterval)
	assert.Equal(t, 1.0, b.RandomizationFactor)
	b = Backoff{Jitter: -0.1}.New(def)
	assert.Zero(t, b.RandomizationFactor)
}
