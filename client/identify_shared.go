package client

import "time"

// SharedIdentifyBudget is an IDENTIFY budget shared with other processes
// (the runners of a cluster share each app's max_concurrency per
// [IdentifyWindow] through etcd). It must be safe for concurrent use.
type SharedIdentifyBudget interface {
	// Reserve takes a slot of the app's shared budget for an IDENTIFY at
	// notBefore or later and returns the time it may be sent. On failure
	// to reach the shared budget it returns notBefore (the process's own
	// budget still holds).
	Reserve(appID string, maxConcurrency int, notBefore time.Time) time.Time
}

// Share makes the limiter also reserve every IDENTIFY in b, after its own
// budget: the wait Reserve returns is the later of the two.
func (l *IdentifyLimiter) Share(b SharedIdentifyBudget) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shared = b
}
