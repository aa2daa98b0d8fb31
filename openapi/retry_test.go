package openapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
)

// A 500 before delivery, then success: the fake sees the same msg_seq
// twice, the user sees the reply once.
func TestRetry500SameMsgSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)
	e.srv.FailNextSends(1, gatewaytest.FaultServerError)

	res, err := e.api.ReplyText(testCtx(t), in, "hello")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
	assert.False(t, res.Duplicate)
	assert.Equal(t, 1, res.MsgSeq)

	sent := e.srv.Sent()
	require.Len(t, sent, 2)
	assert.Equal(t, []int{1, 1}, seqs(sent))
	assert.Equal(t, sent[0].Body, sent[1].Body, "a retry sends the same bytes")
	assert.Equal(t, gatewaytest.FaultServerError, sent[0].Fault)
	assert.Equal(t, 500, sent[0].Status)
	got := e.srv.Delivered(target(route))
	require.Len(t, got, 1)
	assert.Equal(t, res.ID, got[0].ID)
	assert.Equal(t, uint64(1), e.api.Stats().Retries)
}

// The first attempt is delivered but its answer is lost (the request hangs
// until the attempt ends, here cut by the test as a timeout would): the
// retry gets 40054005, which the client reports as delivered. The user sees
// the reply once.
func TestRetryLostAnswerCountsAsDelivered(t *testing.T) {
	t.Parallel()
	var cut *cutTransport
	e := newEnv(t, func(c *openapi.Config) { cut = withCutTransport(t, c) })
	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)
	e.srv.FailNextSends(1, gatewaytest.FaultLoseAnswer)

	res := replyCuttingFirst(t, e, cut, in)
	assert.True(t, res.Duplicate, "40054005 on a retry means delivered")
	assert.Equal(t, 2, res.Attempts)
	assert.Equal(t, 1, res.MsgSeq)

	sent := e.srv.Sent()
	require.Len(t, sent, 2)
	assert.Equal(t, []int{1, 1}, seqs(sent))
	assert.True(t, sent[0].Delivered)
	assert.Zero(t, sent[0].Status, "no answer was sent")
	assert.Equal(t, gatewaytest.CodeDuplicateMsgSeq, sent[1].Code)
	assert.Len(t, e.srv.Delivered(target(route)), 1)
	st := e.api.Stats()
	assert.Equal(t, uint64(1), st.Duplicates)
	assert.Equal(t, uint64(1), st.Sent)
}

// replyCuttingFirst replies to in, and cuts the first attempt once the fake
// has it.
func replyCuttingFirst(t *testing.T, e *env, cut *cutTransport, in openapi.Inbound) *openapi.SendResult {
	t.Helper()
	type result struct {
		res *openapi.SendResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := e.api.ReplyText(testCtx(t), in, "hello")
		done <- result{res, err}
	}()
	_, err := e.srv.WaitSent(testCtx(t), 1)
	require.NoError(t, err)
	(<-cut.cancels)() // the first attempt's
	r := <-done
	require.NoError(t, r.err)
	return r.res
}

// A hang with nothing delivered: the attempt ends, the retry delivers.
func TestRetryHangNotDelivered(t *testing.T) {
	t.Parallel()
	var cut *cutTransport
	e := newEnv(t, func(c *openapi.Config) { cut = withCutTransport(t, c) })
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)
	e.srv.FailNextSends(1, gatewaytest.FaultHang)

	res := replyCuttingFirst(t, e, cut, in)
	assert.False(t, res.Duplicate)
	assert.Equal(t, 2, res.Attempts)
	assert.Len(t, e.srv.Delivered(target(route)), 1)
}

// The per-attempt timeout ends a hanging attempt; the send is retried.
func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *openapi.Config) { c.Timeout = 50 * time.Millisecond; c.MaxRetries = 1 })
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	e.srv.FailNextSends(2, gatewaytest.FaultHang)
	_, err := e.api.ReplyText(testCtx(t), in, "hello")
	require.ErrorIs(t, err, openapi.ErrTransient)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// The caller's context ending during a hang ends the send at once with the
// context's error; nothing is retried.
func TestContextEndsDuringHang(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	e.srv.FailNextSends(1, gatewaytest.FaultHang)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := e.api.ReplyText(ctx, in, "hello")
		done <- err
	}()
	_, err := e.srv.WaitSent(testCtx(t), 1)
	require.NoError(t, err)
	cancel()
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, openapi.ClassCanceled, openapi.Classify(err))
	assert.Len(t, e.srv.Sent(), 1)
}

// 11244 once: the client invalidates its token, fetches one new token and
// retries, successfully.
func TestTokenExpiredRefetchOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	_, err := e.api.ReplyText(testCtx(t), in, "first") // the token is cached
	require.NoError(t, err)
	fetches, inv := e.tokens.counts()
	require.Equal(t, 1, fetches)
	require.Equal(t, 0, inv)

	e.srv.FailNextSends(1, gatewaytest.FaultTokenExpired)
	res, err := e.api.ReplyText(testCtx(t), in, "second")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
	fetches, inv = e.tokens.counts()
	assert.Equal(t, 2, fetches, "one refetch")
	assert.Equal(t, 1, inv, "one invalidation")
	sent := e.srv.Sent()
	require.Len(t, sent, 3)
	assert.Equal(t, 401, sent[1].Status)
	assert.Equal(t, gatewaytest.CodeTokenInvalid, sent[1].Code)
	assert.Equal(t, []int{1, 2, 2}, seqs(sent))
	assert.Equal(t, uint64(1), e.api.Stats().TokenRefetches)
}

// The platform revoked every token: the cached one is refused with 401,
// the refetch gets a new one, and the send goes through.
func TestRevokedTokenReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	_, err := e.api.ReplyText(testCtx(t), in, "first")
	require.NoError(t, err)
	e.srv.RevokeTokens()

	_, err = e.api.ReplyText(testCtx(t), in, "second")
	require.NoError(t, err)
	fetches, inv := e.tokens.counts()
	assert.Equal(t, 2, fetches)
	assert.Equal(t, 1, inv)
}

// A token refused twice: one refetch only, then ErrToken.
func TestTokenRefusedTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	e.srv.FailNextSends(2, gatewaytest.FaultTokenExpired)
	_, err := e.api.ReplyText(testCtx(t), in, "hello")
	require.ErrorIs(t, err, openapi.ErrToken)
	var ae *openapi.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 11244, ae.EffectiveCode())
	assert.Equal(t, "token not exist or expire", ae.Message)
	assert.NotEmpty(t, ae.TraceID)
	fetches, inv := e.tokens.counts()
	assert.Equal(t, 2, fetches)
	assert.Equal(t, 1, inv)
	assert.Len(t, e.srv.Sent(), 2)
}

// Transient failures past MaxRetries surface as ErrTransient.
func TestMaxRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *openapi.Config) { c.MaxRetries = 1 })
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	e.srv.FailNextSends(2, gatewaytest.FaultServerError)
	_, err := e.api.ReplyText(testCtx(t), in, "hello")
	require.ErrorIs(t, err, openapi.ErrTransient)
	assert.Len(t, e.srv.Sent(), 2)

	e2 := newEnv(t, func(c *openapi.Config) { c.MaxRetries = -1 })
	in2 := e2.inbound(t, "C2C_MESSAGE_CREATE")
	e2.srv.FailNextSends(1, gatewaytest.FaultServerError)
	_, err = e2.api.ReplyText(testCtx(t), in2, "hello")
	require.ErrorIs(t, err, openapi.ErrTransient)
	assert.Len(t, e2.srv.Sent(), 1, "negative MaxRetries: no retry")
}

// Channel messages have no msg_seq: a failure that leaves delivery unknown
// is not retried (a repeat would show twice), unless RetryAmbiguous; a rate
// limit, which proves nothing was delivered, is.
func TestChannelRetryPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	in := e.inbound(t, "AT_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)

	e.srv.FailNextSends(1, gatewaytest.FaultServerError)
	_, err := e.api.ReplyText(ctx, in, "one")
	require.ErrorIs(t, err, openapi.ErrTransient)
	assert.Len(t, e.srv.Sent(), 1)

	e.srv.FailNextSends(1, gatewaytest.FaultRateLimited)
	res, err := e.api.ReplyText(ctx, in, "two")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
	assert.Len(t, e.srv.Delivered(target(route)), 1)

	e2 := newEnv(t, func(c *openapi.Config) { c.RetryAmbiguous = true })
	in2 := e2.inbound(t, "DIRECT_MESSAGE_CREATE")
	e2.srv.FailNextSends(1, gatewaytest.FaultServerError)
	res, err = e2.api.ReplyText(ctx, in2, "three")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
}

// A send to a port nobody listens on never left: it is retried whatever
// its kind, and fails as transient.
func TestDialFailureRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	api, err := openapi.New(openapi.Config{AppID: gatewaytest.DefaultAppID, Tokens: e.tokens,
		BaseURL: "http://127.0.0.1:1", HTTPClient: e.hc, MaxRetries: 2,
		Backoff: zeroBackoff})
	require.NoError(t, err)
	_, err = api.PostChannelMessage(testCtx(t), "100", openapi.Text("hi"))
	require.ErrorIs(t, err, openapi.ErrTransient)
	assert.Equal(t, openapi.ClassTransient, openapi.Classify(err))
	assert.Equal(t, uint64(2), api.Stats().Retries)
}

// A handler run again (a new reply scope) sends the same msg_seq numbers:
// the replies already delivered come back as Duplicate, a new one goes
// through, and the user sees each reply once.
func TestReplyScopeRerun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)

	handler := func(ctx context.Context, replies int) []*openapi.SendResult {
		ctx = openapi.WithReplyScope(ctx)
		var out []*openapi.SendResult
		for i := range replies {
			res, err := e.api.ReplyText(ctx, in, []string{"one", "two", "three"}[i])
			require.NoError(t, err)
			out = append(out, res)
		}
		return out
	}
	first := handler(testCtx(t), 2) // then "crashes" before its third reply
	assert.Equal(t, 1, first[0].MsgSeq)
	assert.Equal(t, 2, first[1].MsgSeq)

	again := handler(testCtx(t), 3)
	assert.Equal(t, []bool{true, true, false}, []bool{again[0].Duplicate, again[1].Duplicate, again[2].Duplicate})
	assert.Equal(t, 3, again[2].MsgSeq)

	var contents []string
	for _, m := range e.srv.Delivered(target(route)) {
		contents = append(contents, m.Content)
	}
	assert.Equal(t, []string{"one", "two", "three"}, contents)
	assert.Equal(t, []int{1, 2, 1, 2, 3}, seqs(e.srv.Sent()))
}

// Without a scope, the client's own counter numbers replies per inbound
// id, across calls.
func TestClientCounterWithoutScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	a := e.inbound(t, "C2C_MESSAGE_CREATE")
	b := e.inbound(t, "C2C_MESSAGE_CREATE")
	var got []int
	for _, in := range []openapi.Inbound{a, a, b, a, b} {
		res, err := e.api.ReplyText(ctx, in, "x")
		require.NoError(t, err)
		got = append(got, res.MsgSeq)
	}
	assert.Equal(t, []int{1, 2, 1, 3, 2}, got)
	assert.Equal(t, 2, e.api.TrackedInbound())
}

// The per-inbound counter is bounded: the oldest id is forgotten.
func TestClientCounterBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *openapi.Config) { c.SeqCacheSize = 2 })
	ctx := testCtx(t)
	for range 5 {
		_, err := e.api.ReplyText(ctx, e.inbound(t, "C2C_MESSAGE_CREATE"), "x")
		require.NoError(t, err)
	}
	assert.Equal(t, 2, e.api.TrackedInbound())
}

// A msg_seq the caller chose is theirs: a 40054005 for it means delivered.
func TestExplicitMsgSeqDuplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)
	m := &openapi.Message{Content: "x", MsgID: route.MsgID, MsgSeq: 7}
	res, err := e.api.PostC2CMessage(ctx, route.ID, m)
	require.NoError(t, err)
	assert.False(t, res.Duplicate)
	assert.Equal(t, 7, res.MsgSeq)
	res, err = e.api.PostC2CMessage(ctx, route.ID, m)
	require.NoError(t, err)
	assert.True(t, res.Duplicate)
	assert.Len(t, e.srv.Delivered(target(route)), 1)
	assert.Equal(t, 7, m.MsgSeq, "the message is not modified")
}

// Active sends get a fresh random msg_seq above any reply number; the
// fake refuses them unless active sends are allowed.
func TestActiveSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	_, err := e.api.PostGroupMessage(ctx, "G1", openapi.Text("news"))
	require.ErrorIs(t, err, openapi.ErrPermission)
	require.ErrorIs(t, err, openapi.ErrQuota)
	var ae *openapi.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, gatewaytest.CodeActiveDenied, ae.EffectiveCode())
	assert.Len(t, e.srv.Sent(), 1, "not retried")

	e.srv.AllowActiveSends(true)
	res, err := e.api.PostGroupMessage(ctx, "G1", openapi.Text("news"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, res.MsgSeq, openapi.FreshSeqMin)
	sent := e.srv.Sent()
	assert.Equal(t, res.MsgSeq, sent[len(sent)-1].MsgSeq)
	assert.Empty(t, sent[len(sent)-1].MsgID)

	// An active send is not safe to repeat after an ambiguous failure.
	e.srv.FailNextSends(1, gatewaytest.FaultServerError)
	_, err = e.api.PostGroupMessage(ctx, "G1", openapi.Text("news 2"))
	require.ErrorIs(t, err, openapi.ErrTransient)
}

// A 40054005 on the first attempt of a send with a fresh random msg_seq is
// not ours: ErrDuplicate.
func TestFreshSeqDuplicateIsError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.srv.AllowActiveSends(true)
	e.srv.FailNextSendsWith(1, 400, gatewaytest.CodeDuplicateMsgSeq, "消息被去重，请检查请求msgseq")
	_, err := e.api.PostC2CMessage(testCtx(t), "U1", openapi.Text("x"))
	require.ErrorIs(t, err, openapi.ErrDuplicate)
}

// 202: the message is held for audit. Success, with the audit id.
func TestPendingAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)
	e.srv.FailNextSends(1, gatewaytest.FaultPendingAudit)
	res, err := e.api.ReplyText(testCtx(t), in, "needs a look")
	require.NoError(t, err)
	assert.True(t, res.PendingAudit)
	assert.NotEmpty(t, res.AuditID)
	assert.Empty(t, res.ID)
	assert.Equal(t, 1, res.Attempts)
	assert.Empty(t, e.srv.Delivered(target(route)))
	assert.Equal(t, uint64(1), e.api.Stats().PendingAudit)

	// Do reports it as an error matching ErrPendingAudit.
	in2 := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	r2, _ := openapi.RouteOf(in2)
	e.srv.FailNextSends(1, gatewaytest.FaultPendingAudit)
	err = e.api.Do(testCtx(t), "POST", "/v2/groups/"+r2.ID+"/messages",
		map[string]any{"msg_type": 0, "content": "x", "msg_id": r2.MsgID, "msg_seq": 1}, nil)
	require.ErrorIs(t, err, openapi.ErrPendingAudit)
	var ae *openapi.APIError
	require.True(t, errors.As(err, &ae))
	assert.NotEmpty(t, ae.AuditID)
}
