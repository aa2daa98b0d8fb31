package ops

import (
	"sync"
	"time"
)

// latencyBounds are the upper bounds, in seconds, of the buckets a Latency
// counts into: 1 ms to 60 s. An observation above the last bound counts
// only in LatencySnapshot.Count (the +Inf bucket).
var latencyBounds = [...]float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60,
}

// LatencyBuckets returns the upper bounds, in seconds, of the fixed
// buckets a Latency counts into (1 ms to 60 s), in increasing order.
func LatencyBuckets() []float64 {
	return append([]float64(nil), latencyBounds[:]...)
}

// LatencySnapshot is a histogram of durations at one instant, in the shape
// Prometheus wants: Counts[i] is the number of observations at most
// Bounds[i] seconds (cumulative); Count and Sum (seconds) cover every
// observation, including those above the last bound. The zero value is an
// empty histogram.
type LatencySnapshot struct {
	Bounds []float64 // upper bounds in seconds, increasing
	Counts []uint64  // cumulative counts, len(Counts) == len(Bounds)
	Count  uint64    // all observations
	Sum    float64   // sum of all observations in seconds
}

// Latency tracks a histogram of durations in fixed buckets (see
// LatencyBuckets). The zero value is ready to use; all methods are safe for
// concurrent use. The runner's handler wrapper observes one duration per
// handled event.
type Latency struct {
	mu     sync.Mutex
	counts [len(latencyBounds)]uint64 // per bucket, not cumulative
	count  uint64
	sum    time.Duration
}

// Observe records one duration. Negative durations count as zero.
func (l *Latency) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	l.mu.Lock()
	if i < len(latencyBounds) {
		l.counts[i]++
	}
	l.count++
	l.sum += d
	l.mu.Unlock()
}

// Snapshot returns a consistent copy of the histogram.
func (l *Latency) Snapshot() LatencySnapshot {
	l.mu.Lock()
	counts := l.counts
	count, sum := l.count, l.sum
	l.mu.Unlock()
	s := LatencySnapshot{
		Bounds: LatencyBuckets(),
		Counts: make([]uint64, len(counts)),
		Count:  count,
		Sum:    sum.Seconds(),
	}
	var cum uint64
	for i, c := range counts {
		cum += c
		s.Counts[i] = cum
	}
	return s
}
