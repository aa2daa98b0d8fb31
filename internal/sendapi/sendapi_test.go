package sendapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/qqgate/qqgate/internal/reply"
	"github.com/qqgate/qqgate/openapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	tg, out, err := parse(strings.NewReader(`{"target":{"type":"group","id":"G1"},"event_id":"GROUP_ADD_ROBOT:1","message":{"content":"hi"}}`))
	require.NoError(t, err)
	assert.Equal(t, openapi.Target{Kind: openapi.KindGroup, ID: "G1", EventID: "GROUP_ADD_ROBOT:1"}, tg)
	assert.GreaterOrEqual(t, out.Msg.MsgSeq, openapi.FreshSeqMin, "a passive send gets a fresh msg_seq")

	_, out, err = parse(strings.NewReader(`{"target":{"type":"c2c","id":"U1"},"reply_to":"m1","msg_seq":3,"message":{"content":"hi"}}`))
	require.NoError(t, err)
	assert.Equal(t, 3, out.Msg.MsgSeq)

	_, out, err = parse(strings.NewReader(`{"target":{"type":"c2c","id":"U1"},"message":{"content":"hi"}}`))
	require.NoError(t, err)
	assert.Zero(t, out.Msg.MsgSeq, "an active send: the client picks a fresh one")

	for body, want := range map[string]string{
		``:                            "not a request object",
		`[]`:                          "not a request object",
		`{"message":{"content":"x"}}`: "target is required",
		`{"target":{"type":"c2c"},"message":{"content":"x"}}`:                                        "target.id is required",
		`{"target":{"type":"c2c","id":"u"}}`:                                                         "message is required",
		`{"target":{"type":"c2c","id":"u"},"message":{}}`:                                            "nothing to show",
		`{"target":{"type":"c2c","id":"u"},"reply_to":"a","event_id":"b","message":{"content":"x"}}`: "do not mix",
		`{"target":{"type":"channel","id":"c"},"msg_seq":2,"message":{"content":"x"}}`:               "msg_seq is for c2c and group",
		`{"target":{"type":"c2c","id":"u"},"msg_seq":0,"message":{"content":"x"}}`:                   "not in 1..",
		`{"target":{"type":"c2c","id":"u"},"message":{"content":"x"},"extra":1}`:                     `unknown field "extra"`,
		`{"target":{"type":"c2c","id":"u"},"message":{"content":"x"}} {}`:                            "more than one JSON value",
	} {
		_, _, err := parse(strings.NewReader(body))
		if assert.Error(t, err, body) {
			assert.Contains(t, err.Error(), want, body)
		}
	}
}

func TestAuthorized(t *testing.T) {
	assert.True(t, authorized("Bearer tok", "tok"))
	for _, h := range []string{"", "tok", "bearer tok", "Bearer tok2", "Bearer to", "Basic dG9r", "Bearer  tok"} {
		assert.False(t, authorized(h, "tok"), h)
	}
}

// The checks run in order: off, token, account; the body is read only then.
func TestHandlerOrder(t *testing.T) {
	h := Handler(Config{Token: func() string { return "tok" }, Sender: func(string) *reply.Sender { return nil }})
	mux := http.NewServeMux()
	mux.Handle(Pattern, h)
	do := func(auth string) int {
		req := httptest.NewRequest(http.MethodPost, "/v1/accounts/a/messages", strings.NewReader("not json"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	assert.Equal(t, http.StatusUnauthorized, do(""))
	assert.Equal(t, http.StatusNotFound, do("Bearer tok"), "unknown account before the body")
	req := httptest.NewRequest(http.MethodGet, "/v1/accounts/a/messages", nil)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
}
