package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
)

// testTimeout bounds every wait of a test; nothing sleeps.
const testTimeout = 10 * time.Second

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	tb.Cleanup(cancel)
	return ctx
}

// testTokens fetches access tokens from the fake's token endpoint over
// HTTP, caches one, and counts fetches and invalidations.
type testTokens struct {
	url, appID, secret string
	hc                 *http.Client

	mu            sync.Mutex
	token         string
	fetches       int
	invalidations int
}

func (s *testTokens) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" {
		return s.token, nil
	}
	body, _ := json.Marshal(map[string]string{"appId": s.appID, "clientSecret": s.secret})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	s.fetches++
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		Code        int    `json:"code"`
		Message     string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return "", err
	}
	if tr.AccessToken == "" {
		return "", fmt.Errorf("token refused: %d %s", tr.Code, tr.Message)
	}
	s.token = tr.AccessToken
	return s.token, nil
}

func (s *testTokens) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidations++
	s.token = ""
}

func (s *testTokens) counts() (fetches, invalidations int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches, s.invalidations
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a fake platform and a client of it.
type env struct {
	srv    *gatewaytest.Server
	api    *openapi.Client
	tokens *testTokens
	hc     *http.Client
}

// newEnv starts a fake and a client with zero-delay retries. mutate may
// change the client's config.
func newEnv(tb testing.TB, mutate func(*openapi.Config)) *env {
	tb.Helper()
	srv := gatewaytest.NewTestServer(tb, gatewaytest.Options{})
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	tokens := &testTokens{url: srv.TokenURL(), appID: gatewaytest.DefaultAppID, secret: gatewaytest.DefaultSecret, hc: hc}
	cfg := openapi.Config{
		AppID:      gatewaytest.DefaultAppID,
		Tokens:     tokens,
		BaseURL:    srv.URL(),
		HTTPClient: hc,
		Backoff:    func() backoff.BackOff { return &backoff.ZeroBackOff{} },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	api, err := openapi.New(cfg)
	require.NoError(tb, err)
	return &env{srv: srv, api: api, tokens: tokens, hc: hc}
}

// inbound makes an event in the fake and returns it as an openapi.Inbound.
func (e *env) inbound(tb testing.TB, eventType string) openapi.Inbound {
	tb.Helper()
	ev, err := e.srv.NewInbound(eventType)
	require.NoError(tb, err)
	return openapi.Inbound{Type: ev.Type, ID: ev.ID, Data: ev.Data}
}

// inboundWith registers a custom event in the fake.
func (e *env) inboundWith(tb testing.TB, eventType, id string, d any) openapi.Inbound {
	tb.Helper()
	ev, err := e.srv.NewInboundWith(eventType, id, d)
	require.NoError(tb, err)
	return openapi.Inbound{Type: ev.Type, ID: ev.ID, Data: ev.Data}
}

// target converts a route to the fake's target.
func target(t openapi.Target) gatewaytest.SendTarget {
	return gatewaytest.SendTarget{Scene: gatewaytest.Scene(t.Kind), ID: t.ID}
}

// seqs returns the msg_seq of each sent request.
func seqs(sent []gatewaytest.SentMessage) []int {
	out := make([]int, len(sent))
	for i, s := range sent {
		out[i] = s.MsgSeq
	}
	return out
}

func zeroBackoff() backoff.BackOff { return &backoff.ZeroBackOff{} }

// noFakeLimits turns the fake's reply rules off.
func noFakeLimits() gatewaytest.ReplyLimits {
	off := gatewaytest.ReplyLimit{Window: -1, Replies: -1}
	return gatewaytest.ReplyLimits{C2C: off, Group: off, Channel: off, DM: off}
}

// cutTransport lets a test end a request in flight: every request's cancel
// function is queued on cancels, in order. The test cancels a hanging
// attempt itself, instead of waiting for a timeout.
type cutTransport struct {
	base    http.RoundTripper
	cancels chan context.CancelFunc
}

func (c *cutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	c.cancels <- cancel
	return c.base.RoundTrip(req.WithContext(ctx))
}

// withCutTransport makes the client's requests cancellable by the test.
func withCutTransport(tb testing.TB, c *openapi.Config) *cutTransport {
	base := &http.Transport{}
	ct := &cutTransport{base: base, cancels: make(chan context.CancelFunc, 100)}
	tb.Cleanup(func() {
		for {
			select {
			case cancel := <-ct.cancels:
				cancel()
			default:
				base.CloseIdleConnections()
				return
			}
		}
	})
	c.HTTPClient = &http.Client{Transport: ct}
	return ct
}
