package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// GatewayError is a failed gateway discovery: the OpenAPI's error answer,
// with its HTTP status, code, message and trace id. It is the one error type
// of the platform's HTTP answers, *wire.APIError.
type GatewayError = wire.APIError

// discover asks {api}/gateway/bot for the URL and identify budget, falling
// back to {api}/gateway. An answer that refuses the access token (HTTP 401,
// codes 11241 to 11245) drops the cached token, so the next attempt
// fetches a new one.
func (c *Client) discover(ctx context.Context, token string) (wire.Gateway, error) {
	if c.cfg.GatewayURL != "" {
		return wire.Gateway{URL: c.cfg.GatewayURL}, nil
	}
	gw, err := c.getGateway(ctx, c.cfg.APIBase+"/gateway/bot", token)
	if err != nil {
		var ae *wire.APIError
		isAPI := errors.As(err, &ae)
		if isAPI && ae.TokenRejected() {
			c.tokens.Invalidate()
		}
		if ctx.Err() != nil || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrRedirectRefused) || (isAPI && ae.TokenRejected()) {
			return gw, err
		}
		c.log.Debug().Err(err).Msg("gateway/bot failed; trying /gateway")
		gw, err = c.getGateway(ctx, c.cfg.APIBase+"/gateway", token)
		if err != nil {
			if errors.As(err, &ae) && ae.TokenRejected() {
				c.tokens.Invalidate()
			}
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
		return gw, redactErr(fmt.Errorf("gateway discovery: %w", err))
	}
	req.Header.Set("Authorization", wire.TokenPrefix+token)
	req.Header.Set("X-Union-Appid", c.cfg.AppID)
	req.Header.Set("User-Agent", defaultUserAgent)
	raw, apiErr, err := apiCall(c.cfg.HTTPClient, req, c.dialTimeout)
	if err != nil {
		return gw, fmt.Errorf("gateway discovery: %w", err)
	}
	if apiErr != nil {
		return gw, fmt.Errorf("gateway discovery: %w", apiErr)
	}
	if err := json.Unmarshal(raw, &gw); err != nil {
		return gw, fmt.Errorf("gateway discovery: %s: decode answer: %w", requestName(req), err)
	}
	if gw.URL == "" {
		return gw, fmt.Errorf("gateway discovery: %s: answer has no url", requestName(req))
	}
	return gw, nil
}

// IdentifyLimiter spaces IDENTIFYs per app to obey /gateway/bot's
// session_start_limit: at most max_concurrency per 5 seconds, and none
// while remaining is 0 until reset_after has passed. One value shared by
// the clients of a process makes them share the budget. The zero value is
// not usable; call NewIdentifyLimiter. It is safe for concurrent use.
type IdentifyLimiter struct {
	mu     sync.Mutex
	apps   map[string]*identifyBudget
	now    func() time.Time
	shared SharedIdentifyBudget // nil: this process only; see Share
}

type identifyBudget struct {
	recent    []time.Time // reserved IDENTIFY times within the window
	remaining int         // -1: unknown
	resetAt   time.Time
}

// IdentifyWindow is the window max_concurrency counts over: at most
// max_concurrency IDENTIFYs per app start within it.
const IdentifyWindow = 5 * time.Second

// MaxResetAfter caps the wait session_start_limit.reset_after can ask for
// while remaining is 0. A longer (or absurd) value waits this long, then
// the client asks /gateway/bot again and obeys its fresh answer.
const MaxResetAfter = time.Hour

// NewIdentifyLimiter returns an empty limiter.
func NewIdentifyLimiter() *IdentifyLimiter {
	return &IdentifyLimiter{apps: map[string]*identifyBudget{}, now: time.Now}
}

// update records a fresh session_start_limit for the app.
func (l *IdentifyLimiter) update(appID string, lim *wire.SessionStartLimit) {
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

// reserve takes one IDENTIFY slot for the app and returns how long the
// caller must wait before sending it (zero: at once).
func (l *IdentifyLimiter) reserve(appID string, maxConcurrency int) time.Duration {
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
	if l.shared != nil {
		at = l.shared.Reserve(appID, maxConcurrency, at)
	}
	return at.Sub(now)
}
