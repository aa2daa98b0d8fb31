package handler_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/handler"
)

// request is what a test server saw.
type request struct {
	method string
	path   string
	header http.Header
	body   string
}

// server answers with the statuses of answer in turn (200 once they run
// out) and records every request.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	answer   []int
	body     string
	requests []request
}

func newServer(t *testing.T, answer ...int) *server {
	t.Helper()
	s := &server{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, request{r.Method, r.URL.Path, r.Header.Clone(), string(b)})
		code := http.StatusOK
		if len(s.answer) > 0 {
			code, s.answer = s.answer[0], s.answer[1:]
		}
		body := s.body
		s.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) seen() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests...)
}

func TestHTTPBodyHeadersAndOrder(t *testing.T) {
	srv := newServer(t)
	var rec recorder
	h, err := handler.New(handler.Spec{
		Type:    "http",
		URL:     srv.URL + "/events?k=v",
		Headers: map[string]string{"Authorization": "Bearer s3cret"},
	}, rec.options())
	require.NoError(t, err)

	for s := uint64(1); s <= 5; s++ {
		require.NoError(t, h.HandleEvent(t.Context(), testEvent(s)))
		assert.Equal(t, result{seq: s, attempts: 1}, rec.last(t))
	}
	reqs := srv.seen()
	require.Len(t, reqs, 5)
	for i, r := range reqs {
		ev := testEvent(uint64(i + 1))
		assert.Equal(t, http.MethodPost, r.method)
		assert.Equal(t, "/events", r.path)
		assert.Equal(t, mustLine(t, ev), r.body, "in order, the line as the body")
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		assert.Equal(t, "qqgate", r.header.Get("User-Agent"))
		assert.Equal(t, "Bearer s3cret", r.header.Get("Authorization"))
		assert.Equal(t, "shop-bot", r.header.Get("X-QQGate-Account"))
		assert.Equal(t, "C2C_MESSAGE_CREATE", r.header.Get("X-QQGate-Type"))
		assert.Equal(t, ev.ID, r.header.Get("X-QQGate-Id"))
		assert.Equal(t, []string{string(rune('0' + i + 1))}, r.header.Values("X-QQGate-Seq"))
	}
}

func TestHTTPRetriedUntilSuccess(t *testing.T) {
	srv := newServer(t, http.StatusInternalServerError)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "http", URL: srv.URL}, rec.options())
	require.NoError(t, err)

	require.NoError(t, h.HandleEvent(t.Context(), testEvent(3)))
	assert.Equal(t, result{seq: 3, attempts: 2}, rec.last(t))
	assert.Equal(t, []time.Duration{handler.DefaultBackoffInitial}, rec.waits)
	reqs := srv.seen()
	require.Len(t, reqs, 2)
	assert.Equal(t, reqs[0].body, reqs[1].body, "the same event again")
}

func TestHTTPPermanentFailure(t *testing.T) {
	srv := newServer(t, 503, 503, 503)
	srv.body = "overloaded " + strings.Repeat("x", 10000)
	var rec recorder
	h, err := handler.New(handler.Spec{
		Type:    "http",
		URL:     srv.URL + "/hook?token=tok456",
		Retries: 1,
		Headers: map[string]string{"Authorization": "Bearer s3cret"},
	}, rec.options())
	require.NoError(t, err)

	err = h.HandleEvent(t.Context(), testEvent(8))
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "503 Service Unavailable")
	assert.Contains(t, msg, "overloaded xxx")
	assert.Contains(t, msg, srv.URL+"/hook")
	assert.Less(t, len(msg), handler.BodySnippet+512, "body snippet is bounded")
	assert.NotContains(t, msg, "tok456")
	assert.NotContains(t, msg, "s3cret")
	assert.Equal(t, 2, rec.last(t).attempts)
	assert.Len(t, srv.seen(), 2)
}

func TestHTTPRedirectIsAFailure(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("https://elsewhere.example/", http.StatusFound))
	defer srv.Close()
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "http", URL: srv.URL, Retries: -1}, rec.options())
	require.NoError(t, err)
	err = h.HandleEvent(t.Context(), testEvent(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "302 Found")
}

func TestHTTPTimeoutAndTransportError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
		<-r.Context().Done()               // hangs until the client gives up
	}))
	defer srv.Close()
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "http", URL: srv.URL, Timeout: 100 * time.Millisecond, Retries: 1}, rec.options())
	require.NoError(t, err)
	err = h.HandleEvent(t.Context(), testEvent(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timed out after 100ms")
	assert.Equal(t, 2, rec.last(t).attempts)

	// Nobody listening.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + "/x?token=tok456"
	dead.Close()
	h, err = handler.New(handler.Spec{Type: "http", URL: url, Retries: -1}, rec.options())
	require.NoError(t, err)
	err = h.HandleEvent(t.Context(), testEvent(2))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused")
	assert.NotContains(t, err.Error(), "tok456")
}

func TestHTTPShutdownAbortsTheRequest(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(started)
		<-r.Context().Done()
	}))
	defer srv.Close()
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "http", URL: srv.URL, Timeout: time.Minute}, rec.options())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	err = h.HandleEvent(ctx, testEvent(1))
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, rec.last(t).attempts)
	assert.Empty(t, rec.waits)
}

// TestHTTPOddTypeAndID: an event whose type or id cannot be a header value
// as it is (CR/LF, NUL) is still delivered, with those headers quoted
// (MetaValue) and the exact values in the body.
func TestHTTPOddTypeAndID(t *testing.T) {
	srv := newServer(t)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "http", URL: srv.URL, Retries: -1}, rec.options())
	require.NoError(t, err)
	ev := testEvent(1)
	ev.Type, ev.ID = "C2C_MESSAGE_CREATE\r\nX-Evil: 1", "C2C:abc\x00def"
	require.NoError(t, h.HandleEvent(t.Context(), ev))
	assert.Equal(t, result{seq: 1, attempts: 1}, rec.last(t))
	reqs := srv.seen()
	require.Len(t, reqs, 1)
	assert.Equal(t, mustLine(t, ev), reqs[0].body)
	assert.Equal(t, `"C2C_MESSAGE_CREATE\r\nX-Evil: 1"`, reqs[0].header.Get("X-QQGate-Type"))
	assert.Equal(t, `"C2C:abc\x00def"`, reqs[0].header.Get("X-QQGate-Id"))
	assert.Empty(t, reqs[0].header.Get("X-Evil"))
}
