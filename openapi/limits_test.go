package openapi_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
)

// envWithClock is newEnv with one settable clock for the client and the
// fake's send side.
func envWithClock(t *testing.T, mutate func(*openapi.Config)) (*env, *testClock) {
	clock := newTestClock()
	e := newEnv(t, func(c *openapi.Config) {
		c.Clock = clock.Now
		if mutate != nil {
			mutate(c)
		}
	})
	e.srv.SetSendClock(clock.Now)
	return e, clock
}

// Past the window, a reply fails at once with ErrReplyWindow: no request.
func TestWindowFailsFast(t *testing.T) {
	t.Parallel()
	e, clock := envWithClock(t, nil)
	ctx := testCtx(t)

	group := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	c2c := e.inbound(t, "C2C_MESSAGE_CREATE")
	clock.Add(4*time.Minute + 59*time.Second)
	_, err := e.api.ReplyText(ctx, group, "in time")
	require.NoError(t, err)

	clock.Add(2 * time.Second) // 5 min 1 s
	_, err = e.api.ReplyText(ctx, group, "too late")
	require.ErrorIs(t, err, openapi.ErrReplyWindow)
	var ae *openapi.APIError
	assert.NotErrorAs(t, err, &ae, "refused locally")
	assert.Contains(t, err.Error(), "group window is 5m0s")
	assert.Len(t, e.srv.Sent(), 1, "no round trip")

	// c2c has an hour.
	_, err = e.api.ReplyText(ctx, c2c, "still fine")
	require.NoError(t, err)
	clock.Add(55 * time.Minute)
	_, err = e.api.ReplyText(ctx, c2c, "too late")
	require.ErrorIs(t, err, openapi.ErrReplyWindow)
	assert.Len(t, e.srv.Sent(), 2)
	assert.Equal(t, uint64(2), e.api.Stats().Failures[openapi.ClassReplyWindow])
}

// The sixth reply to one group message fails at once with ErrQuota.
func TestReplyCountFailsFast(t *testing.T) {
	t.Parallel()
	e, _ := envWithClock(t, nil)
	ctx := openapi.WithReplyScope(testCtx(t))
	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	for i := range 5 {
		res, err := e.api.ReplyText(ctx, in, "reply")
		require.NoError(t, err)
		assert.Equal(t, i+1, res.MsgSeq)
	}
	_, err := e.api.ReplyText(ctx, in, "sixth")
	require.ErrorIs(t, err, openapi.ErrQuota)
	assert.Len(t, e.srv.Sent(), 5, "no round trip")

	// Channel replies have no count.
	ch := e.inbound(t, "AT_MESSAGE_CREATE")
	for range 7 {
		_, err := e.api.ReplyText(ctx, ch, "reply")
		require.NoError(t, err)
	}
}

// The limits are configurable; negative turns a check off.
func TestLimitsConfigurable(t *testing.T) {
	t.Parallel()
	e, clock := envWithClock(t, func(c *openapi.Config) {
		c.Limits = openapi.Limits{Group: openapi.Limit{Window: time.Minute, Replies: 2}}
	})
	ctx := testCtx(t)
	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	for range 2 {
		_, err := e.api.ReplyText(ctx, in, "x")
		require.NoError(t, err)
	}
	_, err := e.api.ReplyText(ctx, in, "x")
	require.ErrorIs(t, err, openapi.ErrQuota)
	in2 := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	clock.Add(61 * time.Second)
	_, err = e.api.ReplyText(ctx, in2, "x")
	require.ErrorIs(t, err, openapi.ErrReplyWindow)

	off, _ := envWithClock(t, func(c *openapi.Config) { c.Limits = openapi.NoLimits() })
	in3 := off.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	for range 6 {
		_, _ = off.api.ReplyText(ctx, in3, "x")
	}
	assert.Len(t, off.srv.Sent(), 6, "no local count: the sixth reaches the platform")
	assert.Equal(t, gatewaytest.CodeMsgLimit, off.srv.Sent()[5].Code)
}

// With no timestamp known, the window counts from the client's first sight
// of the inbound id.
func TestWindowFromFirstSight(t *testing.T) {
	t.Parallel()
	e, clock := envWithClock(t, nil)
	ctx := testCtx(t)
	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	route, err := openapi.RouteOf(in)
	require.NoError(t, err)
	clock.Add(time.Minute)
	m := &openapi.Message{Content: "first", MsgID: route.MsgID}
	_, err = e.api.PostGroupMessage(ctx, route.ID, m)
	require.NoError(t, err)
	clock.Add(5*time.Minute + time.Second) // after the first sight
	_, err = e.api.PostGroupMessage(ctx, route.ID, &openapi.Message{Content: "late", MsgID: route.MsgID})
	require.ErrorIs(t, err, openapi.ErrReplyWindow)
	assert.Len(t, e.srv.Sent(), 1)
}

// The fake enforces the platform's rules itself; the client maps its
// answers to the same sentinels.
func TestFakeEnforcesLimits(t *testing.T) {
	t.Parallel()
	e, clock := envWithClock(t, func(c *openapi.Config) { c.Limits = openapi.NoLimits() })
	e.srv.SetReplyLimits(gatewaytest.ReplyLimits{Group: gatewaytest.ReplyLimit{Window: 30 * time.Second, Replies: 2}})
	ctx := testCtx(t)

	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	for range 2 {
		_, err := e.api.ReplyText(ctx, in, "x")
		require.NoError(t, err)
	}
	_, err := e.api.ReplyText(ctx, in, "x")
	require.ErrorIs(t, err, openapi.ErrQuota)
	var ae *openapi.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, gatewaytest.CodeMsgLimit, ae.EffectiveCode())

	late := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	clock.Add(31 * time.Second)
	_, err = e.api.ReplyText(ctx, late, "x")
	require.ErrorIs(t, err, openapi.ErrReplyWindow)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, gatewaytest.CodeMsgExpired, ae.EffectiveCode())
}
