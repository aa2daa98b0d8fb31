package openapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/wire"
)

func TestClassOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status, code int
		want         openapi.Class
	}{
		{401, 11241, openapi.ClassToken}, {401, 11242, openapi.ClassToken}, {401, 11243, openapi.ClassToken},
		{401, 11244, openapi.ClassToken}, {401, 11245, openapi.ClassToken}, {401, 0, openapi.ClassToken},
		{429, 0, openapi.ClassRateLimited}, {400, 20028, openapi.ClassRateLimited},
		{500, 0, openapi.ClassTransient}, {502, 0, openapi.ClassTransient}, {504, 0, openapi.ClassTransient},
		{400, 304082, openapi.ClassTransient}, {400, 304083, openapi.ClassTransient}, {400, 306005, openapi.ClassTransient},
		{400, 22009, openapi.ClassQuota}, {400, 40034100, openapi.ClassQuota}, {400, 40034105, openapi.ClassQuota},
		{400, 304045, openapi.ClassQuota}, {400, 304050, openapi.ClassQuota}, {400, 40093002, openapi.ClassQuota},
		{400, 40054005, openapi.ClassDuplicate},
		{400, 304026, openapi.ClassReplyWindow}, {400, 304027, openapi.ClassReplyWindow}, {400, 304028, openapi.ClassReplyWindow},
		{400, 304103, openapi.ClassReplyWindow}, {400, 40034005, openapi.ClassReplyWindow}, {400, 40034128, openapi.ClassReplyWindow},
		{400, 50006, openapi.ClassContent}, {400, 304003, openapi.ClassContent}, {400, 304025, openapi.ClassContent},
		{400, 1100101, openapi.ClassContent}, {400, 50037, openapi.ClassContent}, {400, 50057, openapi.ClassContent},
		{400, 40054010, openapi.ClassContent}, {400, 40054007, openapi.ClassContent}, {400, 40034090, openapi.ClassContent},
		{403, 11251, openapi.ClassPermission}, {403, 11265, openapi.ClassPermission}, {400, 11273, openapi.ClassPermission},
		{400, 304004, openapi.ClassPermission}, {400, 304036, openapi.ClassPermission}, {400, 304037, openapi.ClassPermission},
		{400, 40034102, openapi.ClassPermission}, {403, 0, openapi.ClassPermission},
		{400, 40054002, openapi.ClassTarget}, {400, 40054004, openapi.ClassTarget}, {400, 40034101, openapi.ClassTarget},
		{202, 304023, openapi.ClassPendingAudit}, {200, 304024, openapi.ClassPendingAudit}, {202, 0, openapi.ClassPendingAudit},
		{404, 0, openapi.ClassOther}, {400, 12345, openapi.ClassOther},
		// a known code wins over the status
		{500, 40054005, openapi.ClassDuplicate},
		// an unknown code falls back to the status
		{503, 777, openapi.ClassTransient},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, openapi.ClassOf(tc.status, tc.code), "status %d code %d", tc.status, tc.code)
	}
}

func TestAPIError(t *testing.T) {
	t.Parallel()
	e := &openapi.APIError{Status: 400, Code: 0, ErrCode: 40054005, Message: "消息被去重，请检查请求msgseq",
		TraceID: "abc123", Request: "POST https://api.sgroup.qq.com/v2/groups/G/messages"}
	assert.Equal(t, 40054005, e.EffectiveCode(), "err_code when code is 0")
	assert.Equal(t, "POST https://api.sgroup.qq.com/v2/groups/G/messages: HTTP 400, code 40054005: 消息被去重，请检查请求msgseq (trace id abc123)", e.Error())
	assert.ErrorIs(t, e, openapi.ErrDuplicate)
	assert.ErrorIs(t, e, wire.ErrDuplicate, "one sentinel, named by both packages")
	var we *wire.APIError
	assert.ErrorAs(t, e, &we, "one type, named by both packages")
	assert.NotErrorIs(t, e, openapi.ErrQuota)
	assert.False(t, e.Temporary())

	both := &openapi.APIError{Status: 400, Code: 40034102, ErrCode: 1}
	assert.Equal(t, 40034102, both.EffectiveCode(), "code wins when set")
	assert.ErrorIs(t, both, openapi.ErrPermission)
	assert.ErrorIs(t, both, openapi.ErrQuota, "active message refused: a quota too")

	wrapped := fmt.Errorf("reply: %w", &openapi.APIError{Status: 503})
	assert.ErrorIs(t, wrapped, openapi.ErrTransient)
	assert.Equal(t, openapi.ClassTransient, openapi.Classify(wrapped))
	var ae *openapi.APIError
	require.ErrorAs(t, wrapped, &ae)
	assert.True(t, ae.Temporary())
	assert.Equal(t, "HTTP 503", ae.Error())
}

// Every class of platform error, answered by the fake: the client's error
// matches the class's sentinel, carries the code and trace id, and is
// retried or not as its class says.
func TestErrorClassesThroughFake(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		status   int
		code     int
		sentinel error
		class    openapi.Class
		retried  bool // the fake's second (successful) answer is reached
	}{
		{"rate limited 429", http.StatusTooManyRequests, 0, openapi.ErrRateLimited, openapi.ClassRateLimited, true},
		{"channel rate 20028", http.StatusBadRequest, 20028, openapi.ErrRateLimited, openapi.ClassRateLimited, true},
		{"server error 500", http.StatusInternalServerError, 0, openapi.ErrTransient, openapi.ClassTransient, true},
		{"gateway timeout 504", http.StatusGatewayTimeout, 0, openapi.ErrTransient, openapi.ClassTransient, true},
		{"media info 304082", http.StatusBadRequest, 304082, openapi.ErrTransient, openapi.ClassTransient, true},
		{"msg limit 22009", http.StatusBadRequest, 22009, openapi.ErrQuota, openapi.ClassQuota, false},
		{"active rate 40034100", http.StatusBadRequest, 40034100, openapi.ErrQuota, openapi.ClassQuota, false},
		{"active denied 40034102", http.StatusBadRequest, 40034102, openapi.ErrPermission, openapi.ClassPermission, false},
		{"expired 304027", http.StatusBadRequest, 304027, openapi.ErrReplyWindow, openapi.ClassReplyWindow, false},
		{"expired 304103", http.StatusBadRequest, 304103, openapi.ErrReplyWindow, openapi.ClassReplyWindow, false},
		{"expired 40034005", http.StatusBadRequest, 40034005, openapi.ErrReplyWindow, openapi.ClassReplyWindow, false},
		{"url 304003", http.StatusBadRequest, 304003, openapi.ErrContent, openapi.ClassContent, false},
		{"blocked 304025", http.StatusBadRequest, 304025, openapi.ErrContent, openapi.ClassContent, false},
		{"empty 50006", http.StatusBadRequest, 50006, openapi.ErrContent, openapi.ClassContent, false},
		{"permission 11251", http.StatusForbidden, 11251, openapi.ErrPermission, openapi.ClassPermission, false},
		{"md template 304036", http.StatusBadRequest, 304036, openapi.ErrPermission, openapi.ClassPermission, false},
		{"not friend 40054004", http.StatusBadRequest, 40054004, openapi.ErrTarget, openapi.ClassTarget, false},
		{"unknown 404", http.StatusNotFound, 0, nil, openapi.ClassOther, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			ctx := testCtx(t)
			in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
			route, err := openapi.RouteOf(in)
			require.NoError(t, err)

			// Every attempt fails: the error surfaces after the retries
			// the class allows.
			attempts := 1
			if tc.retried {
				attempts += openapi.DefaultMaxRetries
			}
			e.srv.FailNextSendsWith(attempts, tc.status, tc.code, "scripted "+tc.name)
			_, err = e.api.ReplyText(ctx, in, "hi")
			require.Error(t, err)
			if tc.sentinel != nil {
				assert.ErrorIs(t, err, tc.sentinel)
			}
			assert.Equal(t, tc.class, openapi.Classify(err))
			var ae *openapi.APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.Status)
			assert.Equal(t, tc.code, ae.EffectiveCode())
			assert.Equal(t, "scripted "+tc.name, ae.Message)
			assert.NotEmpty(t, ae.TraceID)
			assert.Regexp(t, `^POST `+regexp.QuoteMeta(e.srv.URL())+`/v2/groups/[^/?]+/messages$`, ae.Request,
				"the method and URL, no query string")
			assert.True(t, strings.HasPrefix(ae.Error(), ae.Request+": HTTP "), ae.Error())
			sent := e.srv.Sent()
			assert.Equal(t, ae.TraceID, sent[len(sent)-1].TraceID, "the trace id is the last answer's")
			assert.Len(t, sent, attempts, "retried up to MaxRetries, or not at all")
			assert.Equal(t, uint64(1), e.api.Stats().Failures[tc.class])
			assert.Empty(t, e.srv.Delivered(target(route)))

			if tc.retried {
				// One failure, then the fake answers: the retry succeeds
				// with the same msg_seq.
				in2 := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
				route2, err := openapi.RouteOf(in2)
				require.NoError(t, err)
				before := len(e.srv.Sent())
				e.srv.FailNextSendsWith(1, tc.status, tc.code, "once")
				res, err := e.api.ReplyText(ctx, in2, "hi")
				require.NoError(t, err)
				assert.Equal(t, 2, res.Attempts)
				sent := e.srv.Sent()[before:]
				require.Len(t, sent, 2)
				assert.Equal(t, []int{1, 1}, seqs(sent), "the retry keeps its msg_seq")
				assert.Len(t, e.srv.Delivered(target(route2)), 1)
			}
		})
	}
}

// One error type and one set of sentinels serve the token endpoint (and
// gateway discovery, which shares its decoding) and sending alike: a rate
// limit of either matches wire.ErrRateLimited and openapi.ErrRateLimited,
// and errors.As finds the answer as *wire.APIError and *openapi.APIError.
func TestOneAPIErrorForTokenAndSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *openapi.Config) { c.MaxRetries = -1 })
	ctx := testCtx(t)

	e.srv.FailNextTokens(1, gatewaytest.Failure{Status: http.StatusTooManyRequests, Message: "slow down"})
	_, tokenErr := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, e.srv.TokenURL(), e.hc).Token(ctx)
	require.Error(t, tokenErr)

	e.srv.FailNextSendsWith(1, http.StatusTooManyRequests, 0, "slow down")
	_, sendErr := e.api.ReplyText(ctx, e.inbound(t, "GROUP_AT_MESSAGE_CREATE"), "hi")
	require.Error(t, sendErr)

	for name, err := range map[string]error{"token": tokenErr, "send": sendErr} {
		assert.ErrorIs(t, err, wire.ErrRateLimited, name)
		assert.ErrorIs(t, err, openapi.ErrRateLimited, name)
		assert.ErrorIs(t, err, client.ErrRateLimited, name)
		assert.NotErrorIs(t, err, wire.ErrQuota, name)
		assert.Equal(t, openapi.ClassRateLimited, openapi.Classify(err), name)
		assert.Equal(t, wire.ClassRateLimited, wire.Classify(err), name)
		var we *wire.APIError
		require.ErrorAs(t, err, &we, name)
		var oe *openapi.APIError
		require.ErrorAs(t, err, &oe, name)
		assert.Same(t, we, oe, name)
		assert.Equal(t, http.StatusTooManyRequests, oe.Status, name)
		assert.True(t, oe.Temporary(), name)
		assert.Contains(t, err.Error(), "(trace id "+oe.TraceID+")", name)
	}
}

// An error names the request by method and URL, without the query string.
func TestAPIErrorRequestHasNoQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	err := e.api.Do(testCtx(t), "GET", "/nope?k=hidden", nil, nil)
	var ae *openapi.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusNotFound, ae.Status)
	assert.Equal(t, "GET "+e.srv.URL()+"/nope", ae.Request)
	assert.NotContains(t, err.Error(), "hidden")
	assert.Equal(t, openapi.ClassOther, openapi.Classify(err))
}

func TestClassifyLocalErrors(t *testing.T) {
	t.Parallel()
	assert.Equal(t, openapi.Class(""), openapi.Classify(nil))
	assert.Equal(t, openapi.ClassQuota, openapi.Classify(fmt.Errorf("x: %w", openapi.ErrQuota)))
	assert.Equal(t, openapi.ClassInvalid, openapi.Classify(openapi.ErrInvalidMessage))
	assert.Equal(t, openapi.ClassOther, openapi.Classify(errors.New("boom")))
}
