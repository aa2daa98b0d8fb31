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
	b := NewBackOff()
	assert.Equal(t, time.Second, b.InitialInterval)
	assert.Equal(t, 2.0, b.Multiplier)
	assert.Equal(t, 60*time.Second, b.MaxInterval)
	assert.Equal(t, 0.5, b.RandomizationFactor)
	assert.Equal(t, time.Duration(0), b.MaxElapsedTime)

	b = NewBackOff(backoff.WithRandomizationFactor(0))
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
	b := NewBackOff()
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
	assert.GreaterOrEqual(t, Jitter(RateLimitDelay, 0), 60*time.Second, "rate-limit wait is at least 60s")
	assert.Equal(t, time.Duration(0), Jitter(0, 0.7))
	assert.Equal(t, time.Duration(-5), Jitter(-5, 0.7))
	assert.Equal(t, time.Duration(math.MaxInt64), Jitter(time.Duration(math.MaxInt64-1), 0.9))
}

func TestWaitDelay(t *testing.T) {
	t.Parallel()
	b := NewBackOff(backoff.WithRandomizationFactor(0))
	assert.Equal(t, time.Duration(0), WaitNone.Delay(nil, 0.5))
	assert.Equal(t, time.Second, WaitBackoff.Delay(b, 0.5))
	assert.Equal(t, 2*time.Second, WaitBackoff.Delay(b, 0.5))
	assert.Equal(t, InvalidSessionDelay+InvalidSessionDelay/4, WaitInvalidSession.Delay(nil, 0.5))
	assert.Equal(t, RateLimitDelay, WaitRateLimit.Delay(nil, 0))
	assert.Equal(t, 4*time.Second, WaitBackoff.Delay(b, 0), "others do not advance the backoff")

	capped := backoff.WithMaxRetries(NewBackOff(), 1)
	assert.NotEqual(t, backoff.Stop, WaitBackoff.Delay(capped, 0))
	assert.Equal(t, backoff.Stop, WaitBackoff.Delay(capped, 0))
}
