package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// TokenSource supplies access tokens for the gateway and the OpenAPI.
// Implementations must be safe for concurrent use.
type TokenSource interface {
	// Token returns a valid access token (without the "QQBot " prefix).
	Token(ctx context.Context) (string, error)
	// Invalidate drops any cached token so that the next Token call
	// fetches a fresh one (after close 4004, HTTP 401 or an OpenAPI code
	// from 11241 to 11245).
	Invalidate()
}

// TokenError is an error answer of the token endpoint: a body with a
// non-zero code, or an HTTP error status. The answer itself (status, code,
// message, trace id) is the embedded *wire.APIError, which errors.As also
// finds. It never carries the secret or a token.
//
// Only a refused credential is final (errors.Is ErrBadCredentials: HTTP
// 401, or code 100007 app id invalid, 100016 invalid app id or secret,
// 10004 bot does not exist). Every other answer (a timeout, an HTML error
// page, a 5xx, an unknown code) is temporary, and a rate limit (errors.Is
// ErrRateLimited) asks for a wait of at least a minute. Through the
// embedded *wire.APIError it also matches the class sentinels of package
// wire (wire.ErrToken for HTTP 401, wire.ErrTransient for a 5xx, …).
type TokenError struct {
	AppID string
	*wire.APIError
}

func (e *TokenError) Error() string {
	if e.APIError == nil {
		return fmt.Sprintf("access token for app %s refused", e.AppID)
	}
	if errors.Is(e, ErrBadCredentials) {
		return fmt.Sprintf("access token for app %s refused: %v", e.AppID, e.APIError)
	}
	return fmt.Sprintf("access token for app %s: %v", e.AppID, e.APIError)
}

// Unwrap returns the endpoint's answer.
func (e *TokenError) Unwrap() error { return e.APIError }

// Is reports ErrBadCredentials for the answers that refuse the app id or
// secret: HTTP 401, codes 100007, 100016 and 10004. ErrRateLimited is
// matched by the wrapped *wire.APIError.
func (e *TokenError) Is(target error) bool {
	if target != ErrBadCredentials || e.APIError == nil {
		return false
	}
	switch e.EffectiveCode() {
	case wire.CodeAppIDInvalid, wire.CodeInvalidSecret, wire.CodeBotNotExist:
		return true
	}
	return e.Status == http.StatusUnauthorized
}

// Temporary reports whether retrying may help: every answer but a refused
// credential.
func (e *TokenError) Temporary() bool { return !errors.Is(e, ErrBadCredentials) }

// Renewal timing of AppTokenSource. The token endpoint hands out the same
// token until the last minute of its life, and only then a new one (the
// old one staying valid until it expires): a renewal is useful only inside
// that minute.
const (
	// tokenRenewAhead is how long before expiry a token is renewed, give or
	// take tokenRenewJitter.
	tokenRenewAhead  = 30 * time.Second
	tokenRenewJitter = 10 * time.Second
	// tokenReuseMargin is how long a cached token must still be valid to
	// be handed out when a renewal fails.
	tokenReuseMargin = 5 * time.Second
	// sameTokenGrace bounds the life of a token the endpoint hands out
	// again after the expiry it announced first.
	sameTokenGrace = time.Minute
)

// AppTokenSource fetches access tokens from the token endpoint with an app
// id and client secret, and caches them. Concurrent callers share one
// fetch.
//
// The endpoint returns the same token until the last 60 seconds of its
// life; only then does it issue a new one, and the old one stays valid
// until it expires. So the source renews about 30 seconds (jittered)
// before expiry. When a fetch returns the token already held, the earlier
// of the two expiries is kept: what expires_in says for a token handed out
// again is not documented, and a fresh full lifetime there would make the
// source hold on to a token the platform is about to drop. When a renewal
// fails while the cached token is still valid, the cached token is used.
// Use NewAppTokenSource.
type AppTokenSource struct {
	appID  string
	secret string
	url    string
	http   *http.Client
	now    func() time.Time
	rand   func() float64

	mu      sync.Mutex
	token   string    // the cached token; "" after Invalidate
	last    string    // the last token fetched, kept across Invalidate
	expires time.Time // when last expires
	renewAt time.Time // when to fetch again
	flight  *tokenFlight
}

type tokenFlight struct {
	done  chan struct{}
	token string
	err   error
}

// NewAppTokenSource returns a source for one app. url zero means
// DefaultTokenURL; hc nil means a client with DefaultHTTPTimeout. The
// source uses a copy of hc that follows no redirect to another origin.
func NewAppTokenSource(appID, secret, url string, hc *http.Client) *AppTokenSource {
	if url == "" {
		url = DefaultTokenURL
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	return &AppTokenSource{
		appID: strings.TrimSpace(appID), secret: secret, url: url, http: guardRedirects(hc),
		now: time.Now, rand: rand.Float64,
	}
}

// Token returns the cached token or fetches a new one.
func (s *AppTokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.token != "" && s.now().Before(s.renewAt) {
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	f := s.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		s.mu.Unlock()
		f.token, f.err = s.fetch(ctx)
		s.mu.Lock()
		if f.err != nil && ctx.Err() == nil && s.token != "" && s.now().Add(tokenReuseMargin).Before(s.expires) {
			// The renewal failed, but the token in hand is still good.
			f.token, f.err = s.token, nil
		}
		s.flight = nil
		close(f.done)
		s.mu.Unlock()
		return f.token, f.err
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Invalidate drops the cached token.
func (s *AppTokenSource) Invalidate() {
	s.mu.Lock()
	s.token = ""
	s.mu.Unlock()
}

func (s *AppTokenSource) fetch(ctx context.Context) (string, error) {
	body, err := json.Marshal(wire.TokenRequest{AppID: s.appID, ClientSecret: s.secret})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return "", redactErr(fmt.Errorf("fetch access token: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", defaultUserAgent)
	raw, apiErr, err := apiCall(s.http, req, DefaultHTTPTimeout)
	if err != nil {
		return "", fmt.Errorf("fetch access token for app %s: %w", s.appID, err)
	}
	if apiErr != nil {
		return "", &TokenError{AppID: s.appID, APIError: apiErr}
	}
	var tr wire.TokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		return "", fmt.Errorf("fetch access token for app %s: %s: decode answer: %w", s.appID, requestName(req), err)
	}
	if tr.AccessToken == "" {
		return "", &TokenError{AppID: s.appID, APIError: &wire.APIError{
			Status: http.StatusOK, Request: requestName(req), Message: "answer has no access_token",
		}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep(tr.AccessToken, time.Duration(tr.ExpiresIn)*time.Second)
	return tr.AccessToken, nil
}

// keep caches a fetched token with the lifetime the endpoint announced
// and schedules its renewal. s.mu must be held.
func (s *AppTokenSource) keep(token string, ttl time.Duration) {
	if ttl <= 0 {
		ttl = 7200 * time.Second
	}
	now := s.now()
	expires := now.Add(ttl)
	if token == s.last {
		// Handed out again: it expires no later than first announced. If
		// that time has passed, the endpoint still accepts the token (it
		// just returned it) but will replace it soon.
		if s.expires.Before(expires) {
			expires = s.expires
		}
		if !expires.After(now) {
			expires = now.Add(min(ttl, sameTokenGrace))
		}
	}
	// Renew about 30 s before expiry, inside the endpoint's last minute;
	// a short-lived token at half its remaining life, so a token handed
	// out again is asked for again, but never in a tight loop.
	life := expires.Sub(now)
	ahead := tokenRenewAhead + time.Duration((2*s.rand()-1)*float64(tokenRenewJitter))
	ahead = min(ahead, life/2)
	s.token, s.last = token, token
	s.expires = expires
	s.renewAt = expires.Add(-ahead)
}

var _ TokenSource = (*AppTokenSource)(nil)
