package client_test

import (
	"context"
	"fmt"
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
	"github.com/qqgate/qqgate/internal/testutil"
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
	// A numeric expires_in of 90 s: renewed 30 s (give or take 10 s)
	// before it expires.
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
	now = now.Add(49 * time.Second)
	tok, _ = ts.Token(ctx)
	assert.Equal(t, "tok-1", tok, "still cached")
	now = now.Add(22 * time.Second)
	tok, _ = ts.Token(ctx)
	assert.Equal(t, "tok-2", tok, "refreshed before it expires")
}

// The token endpoint returns the same token until the last minute of its
// life, so the source does not ask before that minute, and renews inside
// it (about 30 s before expiry), getting the new token.
func TestTokenSourceRenewsInTheLastMinute(t *testing.T) {
	clock := testutil.NewClock()
	t0 := clock.Now()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Now: clock.Now})
	ts := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.TokenURL(), nil)
	client.SetTokenClock(ts, clock.Now)
	ctx := context.Background()
	a, err := ts.Token(ctx)
	require.NoError(t, err)
	expiry := t0.Add(gatewaytest.DefaultTokenTTL)

	for _, at := range []time.Duration{10 * time.Minute, 5 * time.Minute, 61 * time.Second, 41 * time.Second} {
		clock.Set(expiry.Add(-at))
		tok, err := ts.Token(ctx)
		require.NoError(t, err)
		assert.Equal(t, a, tok, "%v before expiry", at)
		assert.Equal(t, 1, srv.TokenFetches(), "no fetch %v before expiry: it would return the same token", at)
	}
	clock.Set(expiry.Add(-19 * time.Second))
	b, err := ts.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, a, b, "renewed inside the last minute")
	assert.Equal(t, 2, srv.TokenFetches())
	assert.Equal(t, srv.Token(gatewaytest.DefaultAppID), b)

	// The new token lives a full TTL from now.
	clock.Set(expiry.Add(time.Hour))
	tok, err := ts.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, b, tok)
	assert.Equal(t, 2, srv.TokenFetches())
}

// A token handed out again keeps the expiry first announced, even when the
// endpoint states a full lifetime again: the source renews before the
// token really expires instead of believing it good for two more hours.
func TestTokenHandedOutAgainKeepsTheEarlierExpiry(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("TokenExpiresInFull=%v", full), func(t *testing.T) {
			clock := testutil.NewClock()
			t0 := clock.Now()
			srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Now: clock.Now, TokenExpiresInFull: full})
			ts := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.TokenURL(), nil)
			client.SetTokenClock(ts, clock.Now)
			ctx := context.Background()
			a, err := ts.Token(ctx)
			require.NoError(t, err)
			expiry := t0.Add(gatewaytest.DefaultTokenTTL)

			// A 4004 an hour in: the refetch returns the same token.
			clock.Set(t0.Add(time.Hour))
			ts.Invalidate()
			again, err := ts.Token(ctx)
			require.NoError(t, err)
			require.Equal(t, a, again)
			require.Equal(t, 2, srv.TokenFetches())

			clock.Set(expiry.Add(-19 * time.Second))
			b, err := ts.Token(ctx)
			require.NoError(t, err)
			assert.NotEqual(t, a, b, "renewed before the first expiry")
			assert.Equal(t, 3, srv.TokenFetches())
		})
	}
}

// A failed renewal does not stop a client whose token is still valid; an
// expired token is never handed out.
func TestTokenRenewalFailureKeepsAValidToken(t *testing.T) {
	clock := testutil.NewClock()
	t0 := clock.Now()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Now: clock.Now})
	ts := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.TokenURL(), nil)
	client.SetTokenClock(ts, clock.Now)
	ctx := context.Background()
	a, err := ts.Token(ctx)
	require.NoError(t, err)
	expiry := t0.Add(gatewaytest.DefaultTokenTTL)

	srv.FailNextTokens(2, gatewaytest.Failure{Status: http.StatusBadGateway, Message: "bad gateway"})
	clock.Set(expiry.Add(-15 * time.Second))
	tok, err := ts.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, a, tok, "the token in hand, still valid")

	clock.Set(expiry.Add(-time.Second))
	_, err = ts.Token(ctx)
	require.Error(t, err, "too close to expiry to hand out")
	var te *client.TokenError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Temporary())
	assert.Equal(t, 3, srv.TokenFetches())
}

func TestTokenErrorsNameCodeNotSecret(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextTokens(1, gatewaytest.Failure{Code: gatewaytest.CodeTooManyRequests, Message: "Too many requests"})
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
	srv.FailNextTokens(1, gatewaytest.Failure{Code: gatewaytest.CodeTooManyRequests, Message: "Too many requests"})
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
	assert.Zero(t, client.LimiterReserve(l, "app", 2))
	assert.Zero(t, client.LimiterReserve(l, "app", 2))
	assert.Equal(t, client.IdentifyWindow, client.LimiterReserve(l, "app", 2))
	assert.Zero(t, client.LimiterReserve(l, "other-app", 2), "apps have their own budget")
	now = now.Add(client.IdentifyWindow)
	assert.Zero(t, client.LimiterReserve(l, "app", 2), "the first two left the window; one slot is free")
	assert.Equal(t, client.IdentifyWindow, client.LimiterReserve(l, "app", 2), "two are already reserved at this instant")

	// remaining 0: nothing until reset_after.
	client.LimiterUpdate(l, "app3", &wire.SessionStartLimit{Total: 1000, Remaining: 0, ResetAfter: 30_000, MaxConcurrency: 1})
	assert.Equal(t, 30*time.Second, client.LimiterReserve(l, "app3", 1))
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
