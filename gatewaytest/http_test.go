package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/wire"
)

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{Apps: map[string]string{"111": "s1", "222": "s2"}})

	status, m := postToken(t, srv, "application/json", tokenBody("111", "s1"))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "7200", m["expires_in"], "expires_in is a string")
	tok, ok := m["access_token"].(string)
	require.True(t, ok)
	require.NotEmpty(t, tok)

	_, again := postToken(t, srv, "application/json; charset=utf-8", tokenBody("111", "s1"))
	assert.Equal(t, tok, again["access_token"], "same token while valid")
	assert.Equal(t, srv.Token("111"), tok)

	_, other := postToken(t, srv, "application/json", tokenBody("222", "s2"))
	assert.NotEqual(t, tok, other["access_token"], "apps have their own tokens")

	cases := []struct {
		name        string
		contentType string
		body        []byte
		code        float64
		message     string
	}{
		{"wrong secret", "application/json", tokenBody("111", "s2"), CodeInvalidSecret, "invalid appid or secret"},
		{"unknown app", "application/json", tokenBody("333", "s1"), CodeInvalidSecret, "invalid appid or secret"},
		{"form content type", "application/x-www-form-urlencoded", tokenBody("111", "s1"), CodeAppIDInvalid, "appid invalid"},
		{"no content type", "", tokenBody("111", "s1"), CodeAppIDInvalid, "appid invalid"},
		{"bad json", "application/json", []byte("{"), CodeAppIDInvalid, "appid invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, m := postToken(t, srv, tc.contentType, tc.body)
			assert.Equal(t, http.StatusOK, status)
			assert.Equal(t, tc.code, m["code"])
			assert.Equal(t, tc.message, m["message"])
			assert.NotContains(t, m, "access_token")
		})
	}
	assert.Equal(t, 3+len(cases), srv.TokenFetches())
}

func TestTokenScriptedFailures(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	srv.FailNextTokens(2, Failure{Code: CodeTooManyRequests, Message: "Too many requests"})
	srv.FailNextTokens(1, Failure{Status: http.StatusBadGateway, Code: 502, Message: "bad gateway"})
	for range 2 {
		status, m := postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, float64(CodeTooManyRequests), m["code"])
		assert.Equal(t, "Too many requests", m["message"])
	}
	status, _ := postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
	assert.Equal(t, http.StatusBadGateway, status)
	status, m := postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
	assert.Equal(t, http.StatusOK, status)
	assert.NotEmpty(t, m["access_token"])
	assert.Equal(t, 4, srv.TokenFetches())
}

func TestTokenTTLAndRefreshWindow(t *testing.T) {
	t.Parallel()
	// A TTL of one hour: the refresh window is the last minute.
	srv := NewTestServer(t, Options{TokenTTL: time.Hour})
	_, m := postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
	assert.Equal(t, "3600", m["expires_in"])

	// Push the token into its refresh window: a new one is issued and the
	// old one keeps working.
	old := m["access_token"].(string)
	srv.mu.Lock()
	srv.tokens[old].expires = time.Now().Add(30 * time.Second)
	srv.mu.Unlock()
	_, m = postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
	assert.NotEqual(t, old, m["access_token"])
	status, _ := getGateway(t, srv, "/gateway", wire.TokenPrefix+old)
	assert.Equal(t, http.StatusOK, status)

	// An expired token is refused.
	srv.mu.Lock()
	srv.tokens[old].expires = time.Now().Add(-time.Second)
	srv.mu.Unlock()
	status, _ = getGateway(t, srv, "/gateway", wire.TokenPrefix+old)
	assert.Equal(t, http.StatusUnauthorized, status)
}

func TestTokenMethod(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	status, _ := getGateway(t, srv, "/app/getAppAccessToken", "")
	assert.Equal(t, http.StatusMethodNotAllowed, status)
	status, _ = getGateway(t, srv, "/nope", "")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestGatewayEndpoints(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{Shards: 2})
	tok := srv.Token(DefaultAppID)

	for _, path := range []string{"/gateway", "/gateway/bot"} {
		t.Run(path, func(t *testing.T) {
			for _, auth := range []string{"", "QQBot nope", tok, "Bot " + tok} {
				status, m := getGateway(t, srv, path, auth)
				assert.Equal(t, http.StatusUnauthorized, status, "auth %q", auth)
				assert.Equal(t, float64(CodeTokenInvalid), m["code"])
				assert.Equal(t, "token not exist or expire", m["message"])
			}
			status, m := getGateway(t, srv, path, wire.TokenPrefix+tok)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, srv.WebSocketURL(), m["url"])
			if path == "/gateway" {
				assert.NotContains(t, m, "shards")
				return
			}
			assert.Equal(t, float64(2), m["shards"])
			assert.Equal(t, map[string]any{"total": 1000.0, "remaining": 1000.0, "reset_after": 86400000.0, "max_concurrency": 1.0}, m["session_start_limit"])
		})
	}

	// Each IDENTIFY uses one session start.
	ready(t, srv)
	_, m := getGateway(t, srv, "/gateway/bot", wire.TokenPrefix+tok)
	assert.Equal(t, 999.0, m["session_start_limit"].(map[string]any)["remaining"])
	assert.Equal(t, 999, srv.SessionStartLimit().Remaining)

	srv.SetSessionStartLimit(wire.SessionStartLimit{Total: 5, Remaining: 0, ResetAfter: 10, MaxConcurrency: 1})
	_, m = getGateway(t, srv, "/gateway/bot", wire.TokenPrefix+tok)
	assert.Equal(t, 0.0, m["session_start_limit"].(map[string]any)["remaining"])

	srv.FailNextGateways(1, Failure{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, Message: "Too many requests"})
	status, m := getGateway(t, srv, "/gateway", wire.TokenPrefix+tok)
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "Too many requests", m["message"])

	srv.RevokeTokens()
	status, _ = getGateway(t, srv, "/gateway", wire.TokenPrefix+tok)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.NotEqual(t, tok, srv.Token(DefaultAppID), "a new token after revocation")
	assert.Equal(t, 14, srv.GatewayFetches())
}

// The token endpoint behaves like the real one: the same token until the
// last 60 s of its life, then a new one, the old one still valid until it
// expires (those 60 s at most), then refused.
func TestTokenRenewalEdge(t *testing.T) {
	t.Parallel()
	clock := testutil.NewClock()
	t0 := clock.Now()
	srv := NewTestServer(t, Options{Now: clock.Now})
	fetch := func() (string, string) {
		t.Helper()
		status, m := postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
		require.Equal(t, http.StatusOK, status)
		return m["access_token"].(string), m["expires_in"].(string)
	}
	valid := func(tok string) bool {
		t.Helper()
		status, _ := getGateway(t, srv, "/gateway", wire.TokenPrefix+tok)
		return status == http.StatusOK
	}
	a, in := fetch()
	assert.Equal(t, "7200", in)
	expiry := t0.Add(DefaultTokenTTL)

	clock.Set(expiry.Add(-TokenRenewWindow - time.Second))
	again, in := fetch()
	assert.Equal(t, a, again, "the same token until its last minute")
	assert.Equal(t, "61", in, "expires_in is the remaining life")

	clock.Set(expiry.Add(-TokenRenewWindow))
	b, in := fetch()
	assert.NotEqual(t, a, b, "a new token in the last minute")
	assert.Equal(t, "7200", in)
	assert.True(t, valid(a), "the old token still works")
	assert.True(t, valid(b))
	assert.Equal(t, b, srv.Token(DefaultAppID))

	clock.Set(expiry.Add(-time.Second))
	again, _ = fetch()
	assert.Equal(t, b, again, "the new token from now on")
	assert.True(t, valid(a), "the old token works until it expires")

	clock.Set(expiry)
	assert.False(t, valid(a), "the old token expired")
	assert.True(t, valid(b))
	c := dial(t, srv)
	c.readOp(wire.OpHello)
	c.identify(wire.TokenPrefix+a, 1<<30, [2]int{0, 1})
	c.expectClose(int(wire.CloseAuthenticationFailed), "") // IDENTIFY with the expired token
}

// With TokenExpiresInFull, a token handed out again states the full TTL.
func TestTokenExpiresInFull(t *testing.T) {
	t.Parallel()
	clock := testutil.NewClock()
	srv := NewTestServer(t, Options{Now: clock.Now, TokenExpiresInFull: true})
	_, m := postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
	clock.Set(clock.Now().Add(time.Hour))
	_, again := postToken(t, srv, "application/json", tokenBody(DefaultAppID, DefaultSecret))
	assert.Equal(t, m["access_token"], again["access_token"])
	assert.Equal(t, "7200", again["expires_in"])
}

// Error answers have the platform's shape, with the trace id in the body
// and in the X-Tps-trace-ID header.
func TestErrorBodiesCarryTraceID(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, srv.URL()+"/gateway/bot", nil)
	require.NoError(t, err)
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, map[string]any{
		"message": "token not exist or expire", "code": 11244.0, "err_code": 11244.0, "trace_id": srv.LastTraceID(),
	}, m)
	assert.Len(t, srv.LastTraceID(), 32)
	assert.Equal(t, srv.LastTraceID(), resp.Header.Get("X-Tps-trace-ID"))

	srv.FailNextTokens(1, Failure{Status: http.StatusNotFound, ContentType: "text/html", Body: "<html>404</html>"})
	req, err = http.NewRequestWithContext(testCtx(t), http.MethodPost, srv.TokenURL(), strings.NewReader("{}"))
	require.NoError(t, err)
	resp2, err := httpClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp2.Body.Close() }()
	body, err := io.ReadAll(resp2.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, resp2.StatusCode)
	assert.Equal(t, "text/html", resp2.Header.Get("Content-Type"))
	assert.Equal(t, "<html>404</html>", string(body))
	assert.Equal(t, 1, srv.TokenFetches())
}
