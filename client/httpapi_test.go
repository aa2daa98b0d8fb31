package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// Only a refused credential ends Run. A timeout, an HTML error page, a 5xx
// or a code the client does not know is retried with backoff.
func TestTransientTokenAnswersAreRetried(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*gatewaytest.Server){
		"HTTP 408": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusRequestTimeout, Message: "request timeout"})
		},
		"HTTP 404 HTML": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusNotFound, ContentType: "text/html", Body: "<html>not found</html>"})
		},
		"unknown code": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Code: 11298, Message: "system busy, retry later"})
		},
		"HTTP 502": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusBadGateway, Code: 502, Message: "bad gateway"})
		},
		"HTTP 503 plain": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusServiceUnavailable, ContentType: "text/plain"})
		},
	}
	for name, fail := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
			fail(srv)
			h := newHarness(t, srv, nil).start()
			h.session()
			assert.Equal(t, 2, srv.TokenFetches())
			waits := h.recordedWaits()
			require.NotEmpty(t, waits)
			assert.Less(t, waits[0], 60*time.Second, "a backoff, not a rate-limit wait")
		})
	}
}

// A refused credential is final: HTTP 401, codes 100007, 100016, 10004.
func TestRefusedCredentialsAreFatal(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*gatewaytest.Server){
		"HTTP 401": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusUnauthorized, Message: "unauthorized"})
		},
		"code 100007": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Code: 100007, Message: "appid invalid"})
		},
		"code 100016": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Code: 100016, Message: "invalid appid or secret"})
		},
		"code 10004": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Code: 10004, Message: "bot not exist"})
		},
		"err_code only": func(s *gatewaytest.Server) {
			s.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusOK, ContentType: "application/json", Body: `{"message":"invalid appid or secret","err_code":100016}`})
		},
	}
	for name, fail := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
			fail(srv)
			h := newHarness(t, srv, nil).start()
			err := h.runErr()
			require.ErrorIs(t, err, client.ErrBadCredentials)
			assert.Contains(t, err.Error(), "refused")
			assert.Equal(t, 1, srv.TokenFetches(), "no retry")
		})
	}
}

// HTTP 429 on the token endpoint waits at least a minute, as code 100001
// does.
func TestTokenHTTP429WaitsAMinute(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusTooManyRequests, Message: "slow down"})
	h := newHarness(t, srv, nil).start()
	h.session()
	waits := h.recordedWaits()
	require.NotEmpty(t, waits)
	assert.GreaterOrEqual(t, waits[0], 60*time.Second)
}

// The token endpoint's error keeps status, code, message and trace id, and
// prints the trace id.
func TestTokenErrorCarriesTheAnswer(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextTokens(1, gatewaytest.Failure{Code: 100016, Message: "invalid appid or secret"})
	ts := client.NewAppTokenSource(gatewaytest.DefaultAppID, "s3cr3t", srv.TokenURL(), nil)
	_, err := ts.Token(context.Background())
	var ae *wire.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusOK, ae.Status)
	assert.Equal(t, 100016, ae.Code)
	assert.Equal(t, 100016, ae.ErrCode)
	assert.Equal(t, "invalid appid or secret", ae.Message)
	assert.Equal(t, srv.LastTraceID(), ae.TraceID)
	assert.Equal(t, "POST "+srv.TokenURL(), ae.Request)
	assert.Contains(t, err.Error(), srv.LastTraceID(), "an operator can quote the trace id")
	assert.Contains(t, err.Error(), gatewaytest.DefaultAppID)
	assert.NotContains(t, err.Error(), "s3cr3t")
	var te *client.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 100016, te.Code)
	assert.False(t, te.Temporary())
}

// A discovery failure is a *wire.APIError with the trace id, shown in the
// status.
func TestDiscoveryErrorCarriesTraceID(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextGateways(2, gatewaytest.Failure{Status: http.StatusInternalServerError, Code: 12345, Message: "internal error"})
	h := newHarness(t, srv, nil)
	release := h.holdWaits()
	h.start()
	h.eventually(func() bool { return len(h.recordedWaits()) == 1 }, "a wait after the failed discovery")
	last := h.c.Status().LastError
	assert.Contains(t, last, "gateway discovery")
	assert.Contains(t, last, "GET "+srv.URL()+"/gateway: HTTP 500, code 12345: internal error")
	assert.Contains(t, last, "(trace id "+srv.LastTraceID()+")")
	release()
	h.session()

	var ge *client.GatewayError
	_, err := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL()+"/nope", nil).Token(context.Background())
	require.ErrorAs(t, err, &ge, "one error type for every HTTP answer")
	assert.Equal(t, http.StatusNotFound, ge.Status)
}

// The error Run gives up with keeps the last attempt's cause in its chain:
// the discovery answer is found with errors.As, not only as text.
func TestGaveUpKeepsTheCause(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextGateways(4, gatewaytest.Failure{Status: http.StatusInternalServerError, Code: 12345, Message: "internal error"})
	h := newHarness(t, srv, func(c *client.Config) { c.Backoff.MaxAttempts = 2 }).start()
	err := h.runErr()
	require.ErrorIs(t, err, client.ErrGaveUp)
	var ce *client.ConnectError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 2, ce.Attempt)
	var ge *client.GatewayError
	require.ErrorAs(t, err, &ge, "the discovery failure is still in the chain")
	assert.Equal(t, http.StatusInternalServerError, ge.Status)
	assert.Equal(t, 12345, ge.Code)
}

// An OpenAPI answer that refuses the token (codes 11241-11245, whatever the
// HTTP status) drops the cached token: the next attempt fetches a new one.
func TestDiscoveryTokenCodesInvalidateTheToken(t *testing.T) {
	t.Parallel()
	for _, code := range []int{11241, 11242, 11243, 11244, 11245} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
			srv.FailNextGateways(1, gatewaytest.Failure{Status: http.StatusBadRequest, Code: code, Message: "token refused"})
			h := newHarness(t, srv, nil).start()
			h.session()
			assert.Equal(t, 2, srv.TokenFetches(), "the token was fetched again")
			assert.Equal(t, 2, srv.GatewayFetches(), "no fallback to /gateway with a refused token")
		})
	}
}

// sink records every request it gets: the place a redirect must never
// lead to.
type sink struct {
	*httptest.Server
	mu  sync.Mutex
	got []string
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, fmt.Sprintf("%s %s auth=%q body=%s", r.Method, r.URL, r.Header.Get("Authorization"), b))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"SINK-TOKEN","expires_in":"7200","url":"ws://127.0.0.1:1/ws"}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *sink) port(t *testing.T) string {
	_, p, err := net.SplitHostPort(s.Listener.Addr().String())
	require.NoError(t, err)
	return p
}

// redirector answers every request with a redirect to target(path).
func redirector(t *testing.T, status int, target func(r *http.Request) string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target(r), status)
	}))
	t.Cleanup(s.Close)
	return s
}

// The token request follows no redirect to another origin: the secret
// never reaches it, and the error says what was refused.
func TestTokenRequestRefusesRedirectsToAnotherOrigin(t *testing.T) {
	t.Parallel()
	sk := newSink(t)
	targets := map[string]func(r *http.Request) string{
		"another port":       func(*http.Request) string { return "http://127.0.0.1:" + sk.port(t) + "/token" },
		"another host":       func(*http.Request) string { return "http://localhost:" + sk.port(t) + "/token" },
		"plain off loopback": func(*http.Request) string { return "http://bots.evil.example/steal?k=v" },
		"another scheme":     func(r *http.Request) string { return "https://" + r.Host + "/token" },
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
				rd := redirector(t, status, target)
				ts := client.NewAppTokenSource("1020304", "TOP-SECRET-xyz", rd.URL+"/app/getAppAccessToken", nil)
				_, err := ts.Token(context.Background())
				require.ErrorIs(t, err, client.ErrRedirectRefused, "status %d", status)
				assert.Contains(t, err.Error(), rd.URL+"/app/getAppAccessToken")
				assert.NotContains(t, err.Error(), "k=v", "query strings are redacted")
				assert.NotContains(t, err.Error(), "TOP-SECRET-xyz")
				var te *client.TokenError
				assert.False(t, errors.As(err, &te), "not an answer of the endpoint")
			}
		})
	}
	assert.Empty(t, sk.requests(), "nothing reached the redirect targets")
}

// A redirect within the same origin is still followed.
func TestTokenRequestFollowsSameOriginRedirects(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	var hs *httptest.Server
	hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusPermanentRedirect)
			return
		}
		// Relay to the fake, as the endpoint's new path would answer.
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, srv.TokenURL(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer hs.Close()
	ts := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, hs.URL+"/old", nil)
	tok, err := ts.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, srv.Token(gatewaytest.DefaultAppID), tok)
}

// Discovery follows no redirect to another origin: the access token never
// reaches it.
func TestDiscoveryRefusesRedirectsToAnotherOrigin(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	sk := newSink(t)
	rd := redirector(t, http.StatusTemporaryRedirect, func(r *http.Request) string {
		return "http://127.0.0.1:" + sk.port(t) + r.URL.Path
	})
	h := newHarness(t, srv, func(c *client.Config) {
		c.APIBase = rd.URL
		c.Backoff.MaxAttempts = 1
	}).start()
	err := h.runErr()
	require.ErrorIs(t, err, client.ErrGaveUp)
	assert.Contains(t, err.Error(), "redirect refused")
	assert.Contains(t, err.Error(), rd.URL+"/gateway/bot")
	assert.Empty(t, sk.requests(), "the access token never left for the redirect target")
}

// The WebSocket upgrade follows no redirect to another origin: the
// IDENTIFY with the access token is never sent there.
func TestUpgradeRefusesRedirectsToAnotherOrigin(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	other := gatewaytest.NewTestServer(t, gatewaytest.Options{}) // a real gateway on another port
	rd := redirector(t, http.StatusFound, func(*http.Request) string { return other.WebSocketURL() })
	h := newHarness(t, srv, func(c *client.Config) {
		c.GatewayURL = "ws" + strings.TrimPrefix(rd.URL, "http") + "/websocket"
		c.Backoff.MaxAttempts = 1
	}).start()
	err := h.runErr()
	require.ErrorIs(t, err, client.ErrGaveUp)
	assert.Contains(t, err.Error(), "redirect refused")
	assert.Equal(t, 0, other.Connections(), "no upgrade reached the redirect target")
	assert.Empty(t, other.Identifies())
}

// A caller's own CheckRedirect still runs after the origin check, and the
// caller's client is not changed.
func TestCallerHTTPClientIsKept(t *testing.T) {
	t.Parallel()
	var calls int
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		calls++
		return http.ErrUseLastResponse
	}}
	rd := redirector(t, http.StatusTemporaryRedirect, func(*http.Request) string { return "/elsewhere" })
	_, err := client.NewAppTokenSource("1", "s", rd.URL+"/t", hc).Token(context.Background())
	require.Error(t, err, "the 307 itself is the answer: an HTTP error")
	assert.Equal(t, 1, calls)
	require.NotNil(t, hc.CheckRedirect)
	assert.ErrorIs(t, hc.CheckRedirect(nil, nil), http.ErrUseLastResponse, "the caller's client is not changed")
}

// Errors name endpoints without their query strings.
func TestErrorsRedactQueryStrings(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	_, err = client.NewAppTokenSource("1", "s", closed+"/token?key=SECRET-QUERY", nil).Token(context.Background())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "SECRET-QUERY")
	assert.Contains(t, err.Error(), closed+"/token?redacted")

	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, func(c *client.Config) {
		c.GatewayURL = "ws" + strings.TrimPrefix(closed, "http") + "/websocket?token=SECRET-QUERY"
		c.Backoff.MaxAttempts = 1
	}).start()
	err = h.runErr()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "SECRET-QUERY")
	assert.Contains(t, err.Error(), "?redacted")
	assert.NotContains(t, h.c.Status().LastError, "SECRET-QUERY")

	_, err = client.New(client.Config{AppID: "1", ClientSecret: "s", APIBase: "http://example.com/api?key=SECRET-QUERY"})
	require.ErrorIs(t, err, client.ErrConfig)
	assert.NotContains(t, err.Error(), "SECRET-QUERY")
}
