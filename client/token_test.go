package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

func TestTokenSourceCachesAndSharesOneFetch(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	ts := client.NewAppTokenSource(" "+gatewaytest.DefaultAppID+" ", gatewaytest.DefaultSecret, srv.TokenURL(), nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token(ctx)
			assert.NoError(t, err)
			tokens[i] = tok
		}()
	}
	wg.Wait()
	for _, tok := range tokens {
		assert.Equal(t, srv.Token(gatewaytest.DefaultAppID), tok)
	}
	assert.Equal(t, 1, srv.TokenFetches(), "concurrent callers share one fetch, later ones use the cache")

	ts.Invalidate()
	_, err := ts.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, srv.TokenFetches(), "Invalidate forces a refetch")
}

func TestTokenSourceRefreshesAheadOfExpiry(t *testing.T) {
	var fetches atomic.Int32
	// A numeric expires_in of 90 s: renewed once 60 s (two thirds) have gone.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok-` + string(rune('0'+n)) + `","expires_in":90}`))
	})
	hs := httptest.NewServer(h)
	defer hs.Close()
	ts := client.NewAppTokenSource("1", "s", hs.URL, hs.Client())
	now := time.Unix(1_800_000_000, 0)
	client.SetTokenClock(ts, func() time.Time { return now })
	ctx := context.Background()
	tok, err := ts.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, "tok-1", tok)
	now = now.Add(59 * time.Second)
	tok, _ = ts.Token(ctx)
	assert.Equal(t, "tok-1", tok, "still cached")
	now = now.Add(2 * time.Second)
	tok, _ = ts.Token(ctx)
	assert.Equal(t, "tok-2", tok, "refreshed before it expires")
}

func TestTokenErrorsNameCodeNotSecret(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextTokens(1, gatewaytest.CodeTooManyRequests, "Too many requests")
	ts := client.NewAppTokenSource(gatewaytest.DefaultAppID, "s3cr3t-value", srv.TokenURL(), nil)
	_, err := ts.Token(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, client.ErrRateLimited)
	assert.Contains(t, err.Error(), "100001")
	assert.Contains(t, err.Error(), "Too many requests")
	_, err = ts.Token(context.Background())
	assert.ErrorIs(t, err, client.ErrBadCredentials)
	assert.NotContains(t, err.Error(), "s3cr3t-value")
}

func TestRateLimitedTokenWaitsAMinute(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextTokens(1, gatewaytest.CodeTooManyRequests, "Too many requests")
	h := newHarness(t, srv, nil).start()
	h.session()
	waits := h.recordedWaits()
	require.NotEmpty(t, waits)
	assert.GreaterOrEqual(t, waits[0], 60*time.Second)
	assert.Equal(t, 2, srv.TokenFetches())
}

func TestIdentifyLimiterObeysSessionStartLimit(t *testing.T) {
	l := client.NewIdentifyLimiter()
	now := time.Unix(1_800_000_000, 0)
	client.SetLimiterClock(l, func() time.Time { return now })
	// max_concurrency 2: two at once, the third waits for the 5 s window.
	assert.Zero(t, l.Reserve("app", 2))
	assert.Zero(t, l.Reserve("app", 2))
	assert.Equal(t, client.IdentifyWindow, l.Reserve("app", 2))
	assert.Zero(t, l.Reserve("other-app", 2), "apps have their own budget")
	now = now.Add(client.IdentifyWindow)
	assert.Zero(t, l.Reserve("app", 2), "the first two left the window; one slot is free")
	assert.Equal(t, client.IdentifyWindow, l.Reserve("app", 2), "two are already reserved at this instant")

	// remaining 0: nothing until reset_after.
	l.Update("app3", &wire.SessionStartLimit{Total: 1000, Remaining: 0, ResetAfter: 30_000, MaxConcurrency: 1})
	assert.Equal(t, 30*time.Second, l.Reserve("app3", 1))
}

func TestClientsSharingALimiterSpaceTheirIdentifies(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	l := client.NewIdentifyLimiter()
	share := func(c *client.Config) { c.IdentifyLimiter = l }
	a := newHarness(t, srv, share).start()
	a.session()
	b := newHarness(t, srv, func(c *client.Config) { share(c); c.AccountID = "second" }).start()
	b.session()
	assert.Empty(t, a.recordedWaits())
	require.NotEmpty(t, b.recordedWaits(), "the second IDENTIFY within 5 s waits")
	assert.Greater(t, b.recordedWaits()[0], 4*time.Second)
}
