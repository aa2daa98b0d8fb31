package ops

import (
	"sync"
	"time"
)

// Outcomes of a send besides the failure classes of package openapi
// (token, rate_limited, transient, quota, reply_window, content,
// permission, target, invalid, canceled, other).
const (
	OutcomeOK           = "ok"            // the platform accepted it
	OutcomeDuplicate    = "duplicate"     // 40054005 on a numbered re-send: already delivered
	OutcomePendingAudit = "pending_audit" // accepted, held for audit
)

// SendKey labels a send: the endpoint it went to ("c2c", "group",
// "channel", "dm" for messages; "c2c_files", "group_files" for uploads)
// and its outcome (OutcomeOK, OutcomeDuplicate, OutcomePendingAudit or a
// failure class).
type SendKey struct {
	Endpoint string
	Outcome  string
}

// SendStats are an account's sends through the OpenAPI: handler replies
// and the local send API.
type SendStats struct {
	// ByOutcome counts sends per endpoint and outcome.
	ByOutcome map[SendKey]uint64
	// Latency is the time per send, retries included.
	Latency LatencySnapshot
	// GivenUp counts handler replies that were not delivered, by class:
	// the failure classes, "no_route" (an event that cannot be answered)
	// and "bad_output" (output that is not a reply).
	GivenUp map[string]uint64
}

// SendCounter fills a SendStats. The zero value is ready to use; all
// methods are safe for concurrent use. Its labels come from fixed sets
// (endpoints and classes qqgate names), so the maps stay small.
type SendCounter struct {
	mu      sync.Mutex
	by      map[SendKey]uint64
	givenUp map[string]uint64
	latency Latency
}

// Observe counts one send to endpoint with its outcome and duration.
func (c *SendCounter) Observe(endpoint, outcome string, took time.Duration) {
	c.latency.Observe(took)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[SendKey]uint64{}
	}
	c.by[SendKey{endpoint, outcome}]++
}

// GiveUp counts n replies given up with class.
func (c *SendCounter) GiveUp(class string, n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.givenUp == nil {
		c.givenUp = map[string]uint64{}
	}
	c.givenUp[class] += uint64(n)
}

// Snapshot returns a copy of the counts.
func (c *SendCounter) Snapshot() SendStats {
	c.mu.Lock()
	s := SendStats{ByOutcome: make(map[SendKey]uint64, len(c.by)), GivenUp: make(map[string]uint64, len(c.givenUp))}
	for k, v := range c.by {
		s.ByOutcome[k] = v
	}
	for k, v := range c.givenUp {
		s.GivenUp[k] = v
	}
	c.mu.Unlock()
	s.Latency = c.latency.Snapshot()
	return s
}
