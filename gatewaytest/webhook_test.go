package gatewaytest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/webhook"
)

// A push not answered within the ACK timeout is sent again with the same
// envelope id, newly signed, until a 200 comes (at most Retries more).
func TestWebhookPlatformRetriesWithoutTimelyACK(t *testing.T) {
	key, err := webhook.KeyFromSecret("s3cret")
	require.NoError(t, err)
	var mu sync.Mutex
	var ids []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify(key.Public().(ed25519.PublicKey), r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var env struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &env)
		mu.Lock()
		ids = append(ids, env.ID)
		n := len(ids)
		mu.Unlock()
		if n <= 2 { // the first two are answered too late
			<-r.Context().Done()
			return
		}
		_, _ = w.Write([]byte(`{"op":12,"d":0}`))
	}))
	defer hs.Close()
	p, err := NewWebhookPlatform(WebhookOptions{URL: hs.URL, AppID: "1", Secret: "s3cret", AckTimeout: 50 * time.Millisecond, Client: hs.Client()})
	require.NoError(t, err)
	res := p.Push(context.Background(), "C2C_MESSAGE_CREATE", json.RawMessage(`{"content":"x"}`), PushFault{})
	assert.True(t, res.Acked)
	require.Len(t, res.Attempts, 3)
	for i, a := range res.Attempts {
		assert.Equal(t, i+1, a.Try)
		assert.Equal(t, res.ID, a.ID)
	}
	assert.Error(t, res.Attempts[0].Err)
	assert.Equal(t, http.StatusOK, res.Attempts[2].Status)
	assert.Equal(t, []string{res.ID, res.ID, res.ID}, ids)
	assert.Len(t, p.Attempts(), 3)
}

// Without any 200 the push is sent 1 + Retries times, then given up.
func TestWebhookPlatformGivesUpAfterRetries(t *testing.T) {
	var mu sync.Mutex
	n := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer hs.Close()
	p, err := NewWebhookPlatform(WebhookOptions{URL: hs.URL, AppID: "1", Secret: "s", Client: hs.Client()})
	require.NoError(t, err)
	res := p.Push(context.Background(), "T", json.RawMessage(`{}`), PushFault{})
	assert.False(t, res.Acked)
	assert.Len(t, res.Attempts, 4)
	mu.Lock()
	assert.Equal(t, 4, n)
	mu.Unlock()
	_, err = NewWebhookPlatform(WebhookOptions{URL: hs.URL, AppID: "1"})
	assert.ErrorIs(t, err, webhook.ErrEmptySecret)
}
