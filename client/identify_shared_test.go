package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/client"
)

// laterBudget is a shared budget that moves every IDENTIFY by a fixed
// delay (another process took the slots before).
type laterBudget struct {
	by    time.Duration
	calls int
}

func (b *laterBudget) Reserve(appID string, maxConcurrency int, notBefore time.Time) time.Time {
	b.calls++
	return notBefore.Add(b.by)
}

func TestIdentifyLimiterSharedBudgetWaitsForTheLaterOfTheTwo(t *testing.T) {
	l := client.NewIdentifyLimiter()
	now := time.Unix(1_800_000_000, 0)
	client.SetLimiterClock(l, func() time.Time { return now })
	assert.Zero(t, client.LimiterReserve(l, "app", 1), "no shared budget: this process's only")
	shared := &laterBudget{by: 3 * time.Second}
	l.Share(shared)
	assert.Equal(t, client.IdentifyWindow+3*time.Second, client.LimiterReserve(l, "app", 1), "own window, then the shared budget's delay")
	assert.Equal(t, 3*time.Second, client.LimiterReserve(l, "other", 1))
	assert.Equal(t, 2, shared.calls)
}
