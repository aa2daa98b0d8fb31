package ops

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLatencyBuckets(t *testing.T) {
	t.Parallel()
	var l Latency
	s := l.Snapshot()
	require.Equal(t, LatencyBuckets(), s.Bounds)
	require.Len(t, s.Counts, len(s.Bounds))
	assert.Zero(t, s.Count)

	l.Observe(500 * time.Microsecond) // <= 1ms
	l.Observe(time.Millisecond)       // <= 1ms (bounds are inclusive)
	l.Observe(3 * time.Millisecond)   // <= 5ms
	l.Observe(2 * time.Second)        // <= 2.5s
	l.Observe(2 * time.Minute)        // +Inf only
	l.Observe(-time.Second)           // counts as 0
	s = l.Snapshot()
	at := func(bound float64) uint64 {
		for i, b := range s.Bounds {
			if b == bound {
				return s.Counts[i]
			}
		}
		t.Fatalf("no bound %v", bound)
		return 0
	}
	assert.EqualValues(t, 3, at(0.001))
	assert.EqualValues(t, 3, at(0.0025))
	assert.EqualValues(t, 4, at(0.005))
	assert.EqualValues(t, 4, at(1))
	assert.EqualValues(t, 5, at(2.5))
	assert.EqualValues(t, 5, at(60))
	assert.EqualValues(t, 6, s.Count)
	assert.InDelta(t, 0.0005+0.001+0.003+2+120, s.Sum, 1e-9)

	// A snapshot is a copy.
	s.Counts[0] = 99
	s.Bounds[0] = 99
	assert.EqualValues(t, 3, l.Snapshot().Counts[0])
	assert.Equal(t, 0.001, LatencyBuckets()[0])
}

func TestLatencyConcurrent(t *testing.T) {
	t.Parallel()
	var l Latency
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.Observe(time.Duration(g*i) * time.Microsecond)
				if i%100 == 0 {
					s := l.Snapshot()
					assert.LessOrEqual(t, s.Counts[len(s.Counts)-1], s.Count)
				}
			}
		})
	}
	wg.Wait()
	s := l.Snapshot()
	assert.EqualValues(t, 8000, s.Count)
	for i := 1; i < len(s.Counts); i++ {
		assert.GreaterOrEqual(t, s.Counts[i], s.Counts[i-1])
	}
}
