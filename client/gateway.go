package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// GatewayError is a failed gateway discovery: an HTTP error status with
// the OpenAPI's {code, message} body.
type GatewayError struct {
	URL     string
	Status  int
	Code    int
	Message string
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("gateway discovery %s: HTTP %d: code %d: %s", e.URL, e.Status, e.Code, e.Message)
}

// Is reports ErrRateLimited for HTTP 429 or code 100001.
func (e *GatewayError) Is(target error) bool {
	return target == ErrRateLimited && (e.Status == http.StatusTooManyRequests || e.Code == 100001)
}

// discover asks {api}/gateway/bot for the URL and identify budget, falling
// back to {api}/gateway.
func (c *Client) discover(ctx context.Context, token string) (wire.Gateway, error) {
	if c.cfg.GatewayURL != "" {
		return wire.Gateway{URL: c.cfg.GatewayURL}, nil
	}
	gw, err := c.getGateway(ctx, c.cfg.APIBase+"/gateway/bot", token)
	if err != nil {
		var ge *GatewayError
		if ctx.Err() != nil || errors.Is(err, ErrRateLimited) || (asGatewayError(err, &ge) && ge.Status == http.StatusUnauthorized) {
			return gw, err
		}
		c.log.Debug().Err(err).Msg("gateway/bot failed; trying /gateway")
		gw, err = c.getGateway(ctx, c.cfg.APIBase+"/gateway", token)
		if err != nil {
			return gw, err
		}
	}
	if err := checkEndpoint("gateway url", gw.URL, "wss", "ws"); err != nil {
		return gw, err
	}
	return gw, nil
}

func (c *Client) getGateway(ctx context.Context, u, token string) (wire.Gateway, error) {
	var gw wire.Gateway
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return gw, fmt.Errorf("gateway discovery: %w", err)
	}
	req.Header.Set("Authorization", wire.TokenPrefix+token)
	req.Header.Set("X-Union-Appid", c.cfg.AppID)
	req.Header.Set("User-Agent", defaultUserAgent)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return gw, fmt.Errorf("gateway discovery: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return gw, fmt.Errorf("gateway discovery: read body: %w", err)
	}
	var ae wire.APIError
	_ = json.Unmarshal(raw, &ae)
	if resp.StatusCode != http.StatusOK || ae.Code != 0 {
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
		return gw, &GatewayError{URL: u, Status: resp.StatusCode, Code: ae.Code, Message: ae.Message}
	}
	if err := json.Unmarshal(raw, &gw); err != nil {
		return gw, fmt.Errorf("gateway discovery %s: decode answer: %w", u, err)
	}
	if gw.URL == "" {
		return gw, fmt.Errorf("gateway discovery %s: answer has no url", u)
	}
	return gw, nil
}

// IdentifyLimiter spaces IDENTIFYs per app to obey /gateway/bot's
// session_start_limit: at most max_concurrency per 5 seconds, and none
// while remaining is 0 until reset_after has passed. One value shared by
// the clients of a process makes them share the budget. The zero value is
// not usable; call NewIdentifyLimiter. It is safe for concurrent use.
type IdentifyLimiter struct {
	mu   sync.Mutex
	apps map[string]*identifyBudget
	now  func() time.Time
}

type identifyBudget struct {
	recent    []time.Time // reserved IDENTIFY times within the window
	remaining int         // -1: unknown
	resetAt   time.Time
}

// IdentifyWindow is the window max_concurrency counts over.
const IdentifyWindow = 5 * time.Second

// MaxResetAfter caps the wait session_start_limit.reset_after can ask for
// while remaining is 0. A longer (or absurd) value waits this long, then
// the client asks /gateway/bot again and obeys its fresh answer.
const MaxResetAfter = time.Hour

// NewIdentifyLimiter returns an empty limiter.
func NewIdentifyLimiter() *IdentifyLimiter {
	return &IdentifyLimiter{apps: map[string]*identifyBudget{}, now: time.Now}
}

// Update records a fresh session_start_limit for the app.
func (l *IdentifyLimiter) Update(appID string, lim *wire.SessionStartLimit) {
	if lim == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.budget(appID)
	b.remaining = lim.Remaining
	wait := MaxResetAfter
	if ms := lim.ResetAfter; ms < wait.Milliseconds() {
		wait = time.Duration(max(ms, 0)) * time.Millisecond
	}
	b.resetAt = l.now().Add(wait)
}

func (l *IdentifyLimiter) budget(appID string) *identifyBudget {
	b := l.apps[appID]
	if b == nil {
		b = &identifyBudget{remaining: -1}
		l.apps[appID] = b
	}
	return b
}

// Reserve takes one IDENTIFY slot for the app and returns how long the
// caller must wait before sending it (zero: at once).
func (l *IdentifyLimiter) Reserve(appID string, maxConcurrency int) time.Duration {
	if maxConcurrency < 1 {
		maxConcurrency = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.budget(appID)
	at := now
	if b.remaining == 0 && now.Before(b.resetAt) {
		at = b.resetAt
	}
	// Drop reservations that left the window before `at`.
	keep := b.recent[:0]
	for _, t := range b.recent {
		if t.Add(IdentifyWindow).After(at) {
			keep = append(keep, t)
		}
	}
	b.recent = keep
	if len(b.recent) >= maxConcurrency {
		if next := b.recent[len(b.recent)-maxConcurrency].Add(IdentifyWindow); next.After(at) {
			at = next
		}
	}
	b.recent = append(b.recent, at)
	if b.remaining > 0 {
		b.remaining--
	}
	return at.Sub(now)
}
