package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// fetches a fresh one (after close 4004 or op 9 false).
	Invalidate()
}

// TokenError is the token endpoint's refusal: a body with a non-zero code,
// or an HTTP error status. It never carries the secret or a token.
type TokenError struct {
	AppID   string
	Status  int // HTTP status
	Code    int // the body's code, 0 if none
	Message string
}

func (e *TokenError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("access token for app %s refused: code %d: %s", e.AppID, e.Code, e.Message)
	}
	return fmt.Sprintf("access token for app %s refused: HTTP %d: %s", e.AppID, e.Status, e.Message)
}

// Is reports ErrRateLimited for code 100001 / "Too many requests" and
// ErrBadCredentials for the codes that mean a wrong app id or secret.
func (e *TokenError) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.Code == 100001 || e.Status == http.StatusTooManyRequests ||
			strings.Contains(strings.ToLower(e.Message), "too many requests")
	case ErrBadCredentials:
		return e.Code == 100007 || e.Code == 100016 || e.Code == 10004 ||
			e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// Temporary reports whether retrying may help: rate limits and server
// errors are temporary; a refused secret is not.
func (e *TokenError) Temporary() bool {
	return errors.Is(e, ErrRateLimited) || e.Status >= 500
}

// AppTokenSource fetches access tokens from the token endpoint with an app
// id and client secret. It caches the token, reuses it until shortly
// before it expires (the smaller of 5 minutes and a third of its lifetime),
// and lets concurrent callers share one fetch. Use NewAppTokenSource.
type AppTokenSource struct {
	appID  string
	secret string
	url    string
	http   *http.Client
	now    func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
	renewAt time.Time
	flight  *tokenFlight
	fetches int
}

type tokenFlight struct {
	done  chan struct{}
	token string
	err   error
}

// NewAppTokenSource returns a source for one app. url zero means
// DefaultTokenURL; hc nil means a client with DefaultHTTPTimeout.
func NewAppTokenSource(appID, secret, url string, hc *http.Client) *AppTokenSource {
	if url == "" {
		url = DefaultTokenURL
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	return &AppTokenSource{appID: strings.TrimSpace(appID), secret: secret, url: url, http: hc, now: time.Now}
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
		s.fetches++
		s.mu.Unlock()
		f.token, f.err = s.fetch(ctx)
		s.mu.Lock()
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

// Fetches reports how many fetches the source has started.
func (s *AppTokenSource) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func (s *AppTokenSource) fetch(ctx context.Context) (string, error) {
	body, err := json.Marshal(wire.TokenRequest{AppID: s.appID, ClientSecret: s.secret})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("fetch access token: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", defaultUserAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch access token: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("fetch access token: read body: %w", err)
	}
	var tr wire.TokenResponse
	decErr := json.Unmarshal(raw, &tr)
	if resp.StatusCode != http.StatusOK || tr.Code != 0 {
		msg := tr.Message
		if decErr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return "", &TokenError{AppID: s.appID, Status: resp.StatusCode, Code: tr.Code, Message: msg}
	}
	if decErr != nil {
		return "", fmt.Errorf("fetch access token: decode answer: %w", decErr)
	}
	if tr.AccessToken == "" {
		return "", &TokenError{AppID: s.appID, Status: resp.StatusCode, Message: "answer has no access_token"}
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = 7200 * time.Second
	}
	ahead := min(5*time.Minute, ttl/3)
	now := s.now()
	s.mu.Lock()
	s.token = tr.AccessToken
	s.expires = now.Add(ttl)
	s.renewAt = now.Add(ttl - ahead)
	s.mu.Unlock()
	return tr.AccessToken, nil
}

var _ TokenSource = (*AppTokenSource)(nil)
