package client

import (
	"context"
	"time"
)

// SetSleep replaces the client's waits (backoff, invalid session, rate
// limit, identify budget) so tests neither sleep nor wait on the clock.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// SetTokenClock replaces the token source's clock.
func SetTokenClock(s *AppTokenSource, now func() time.Time) { s.now = now }

// SetLimiterClock replaces the identify limiter's clock.
func SetLimiterClock(l *IdentifyLimiter, now func() time.Time) { l.now = now }

// SetRefreshEvery shortens the savedAt refresh while connected.
func SetRefreshEvery(c *Client, d time.Duration) { c.refreshEvery = d }
