package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/intents"
	"github.com/qqgate/qqgate/wire"
)

func TestIdentifyReadyEventsInOrder(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, nil).start()
	sess := h.session()

	types := []string{wire.EventC2CMessageCreate, wire.EventGroupAtMessageCreate, wire.EventAtMessageCreate,
		wire.EventDirectMessageCreate, wire.EventInteractionCreate, wire.EventGroupAddRobot, wire.EventFriendAdd}
	for _, typ := range types {
		_, err := sess.EmitMessage(typ)
		require.NoError(t, err)
	}
	h.eventually(func() bool { return len(h.rec.all()) == 1+len(types) }, "all events handled")

	assert.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8}, h.rec.seqs())
	assert.Equal(t, append([]string{wire.EventReady}, types...), h.rec.types())

	ids := srv.Identifies()
	require.Len(t, ids, 1)
	assert.Equal(t, "QQBot "+srv.Token(gatewaytest.DefaultAppID), ids[0].Token)
	assert.Equal(t, [2]int{0, 1}, ids[0].Shard)
	assert.EqualValues(t, 1<<30|1<<12|1<<25|1<<26, ids[0].Intents, "by default IDENTIFY asks for interactions (button clicks)")
	assert.Empty(t, srv.Resumes())

	evs := h.rec.all()
	ready, err := evs[0].Ready()
	require.NoError(t, err)
	assert.Equal(t, sess.ID(), ready.SessionID)
	msg, err := evs[1].Message()
	require.NoError(t, err)
	assert.NotEmpty(t, msg.Author.UserOpenID)
	assert.NotEmpty(t, msg.Content)
	assert.True(t, strings.HasPrefix(evs[1].ID, wire.EventC2CMessageCreate+":"), evs[1].ID)
	_, err = evs[5].Interaction()
	require.NoError(t, err)
	gr, err := evs[6].GroupRobot()
	require.NoError(t, err)
	assert.NotEmpty(t, gr.GroupOpenID)
	_, err = evs[1].Interaction()
	assert.Error(t, err, "a message is not an interaction")

	h.eventually(func() bool { return h.c.Status().State == client.StateConnected }, "connected")
	st := h.c.Status()
	assert.Equal(t, sess.ID(), st.SessionID)
	assert.EqualValues(t, 8, st.LastSeqReceived)
	h.eventually(func() bool { return h.c.Status().LastSeqHandled == 8 }, "committed seq reaches 8")
	assert.EqualValues(t, 1, st.Identifies)
	assert.EqualValues(t, 8, st.Events)
}

// Heartbeats carry the highest seq received. The null before any seq is
// checked where a beat can go out before READY (a READY later than one
// interval): TestHeartbeatOneIntervalAfterHelloWhenReadyIsLate.
func TestHeartbeatsCarryLastSeq(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{HeartbeatInterval: 25 * time.Millisecond})
	h := newHarness(t, srv, nil).start()
	sess := h.session()
	h.serverWait(func() bool { return len(srv.Heartbeats()) >= 2 }, "two heartbeats")
	for i := 0; i < 3; i++ {
		_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
		require.NoError(t, err)
	}
	h.serverWait(func() bool {
		for _, b := range srv.Heartbeats() {
			if b.HasSeq && b.Seq == 4 {
				return true
			}
		}
		return false
	}, "a heartbeat with seq 4")

	hb := srv.Heartbeats()
	assert.Equal(t, "1", string(hb[0].D), "the first heartbeat goes out at READY, with READY's seq")
	var last uint64
	for _, b := range hb {
		require.True(t, b.HasSeq, "after READY every heartbeat carries a seq, got %s", b.D)
		assert.GreaterOrEqual(t, b.Seq, last, "heartbeat seqs never go down")
		last = b.Seq
	}
	h.eventually(func() bool { return h.c.Status().HeartbeatRTT > 0 }, "an RTT measured from an ACK")
}

func TestWithheldACKsReconnectAndResume(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{HeartbeatInterval: 25 * time.Millisecond})
	h := newHarness(t, srv, nil).start()
	sess := h.session()
	_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	h.eventually(func() bool { return h.c.Status().LastSeqHandled == 2 }, "event handled")

	srv.WithholdACKs(true)
	h.serverWait(func() bool { return len(srv.Resumes()) >= 1 }, "a RESUME after the zombie close")
	srv.WithholdACKs(false)
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

	r := srv.Resumes()[0]
	assert.Equal(t, sess.ID(), r.SessionID)
	assert.EqualValues(t, 2, r.Seq)
	assert.Len(t, srv.Identifies(), 1, "a zombie close resumes, never re-identifies")
	st := h.c.Status()
	assert.EqualValues(t, 1, st.Resumes)
	assert.GreaterOrEqual(t, st.Reconnects, uint64(1))
}

func TestDroppedConnectionResumesAndReplaysOnce(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, nil).start()
	sess := h.session()
	for i := 0; i < 3; i++ {
		_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
		require.NoError(t, err)
	}
	h.eventually(func() bool { return len(h.rec.all()) == 4 }, "first events")

	release := h.holdReconnects()
	sess.Drop()
	// Emitted while no connection carries the session: replayed on RESUME.
	for i := 0; i < 3; i++ {
		_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
		require.NoError(t, err)
	}
	release()
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED")
	_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	h.eventually(func() bool { return h.rec.has(wire.EventC2CMessageCreate) }, "a live event after the resume")

	assert.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, h.rec.seqs(), "every seq once, in order")
	require.Len(t, srv.Resumes(), 1)
	assert.Equal(t, sess.ID(), srv.Resumes()[0].SessionID)
	assert.EqualValues(t, 4, srv.Resumes()[0].Seq)
	assert.Equal(t, "QQBot "+srv.Token(gatewaytest.DefaultAppID), srv.Resumes()[0].Token)
	st := h.c.Status()
	assert.EqualValues(t, 3, st.Replayed)
	assert.Equal(t, wire.CloseAbnormal, st.LastCloseCode)
}

func TestDuplicateDeliveryDropped(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, nil).start()
	sess := h.session()
	seq, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	_, err = sess.EmitDuplicate(seq)
	require.NoError(t, err)
	last, err := sess.EmitMessage(wire.EventFriendAdd)
	require.NoError(t, err)
	h.eventually(func() bool { return h.rec.has(wire.EventFriendAdd) }, "the event after the duplicate")
	assert.Equal(t, 1, h.rec.count(wire.EventC2CMessageCreate))
	assert.EqualValues(t, 1, h.c.Status().DuplicatesDropped)
	h.eventually(func() bool { return h.c.Status().LastSeqHandled == last }, "committed past the duplicate")
}

func TestWrongSecretIsAClearFatalError(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	const secret = "not-the-secret-42"
	h := newHarness(t, srv, func(c *client.Config) { c.ClientSecret = secret }).start()
	err := h.runErr()
	require.Error(t, err)
	assert.ErrorIs(t, err, client.ErrBadCredentials)
	var te *client.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 100016, te.Code)
	assert.Contains(t, err.Error(), gatewaytest.DefaultAppID)
	assert.NotContains(t, err.Error(), secret)
	assert.Equal(t, 1, srv.TokenFetches(), "no retry loop")
	assert.Equal(t, 0, srv.Connections())
	assert.Equal(t, client.StateFailed, h.c.Status().State)
}

func TestSlowHandlerDoesNotDelayHeartbeats(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.QueueSize = 2 })
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		if ev.Type == wire.EventC2CMessageCreate {
			close(entered)
			<-release
		}
		return nil
	}
	h.start()
	sess := h.session()
	h.eventually(func() bool { return h.c.Status().HeartbeatACKs == 1 }, "the READY beat's ACK read")
	_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	<-entered
	// More events than the queue holds: the reader pauses, heartbeats go on.
	for i := 0; i < 5; i++ {
		_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
		require.NoError(t, err)
	}
	h.eventually(func() bool { return h.c.Status().LastSeqReceived >= 5 }, "the reader waiting on the full queue")
	before := len(srv.Heartbeats())
	for i := 1; i <= 5; i++ {
		waitClock(t, clk, func() bool { return clk.Pending(fakeInterval) == 1 }, "the next beat scheduled")
		clk.Advance(fakeInterval)
		h.serverWait(func() bool { return len(srv.Heartbeats()) >= before+i }, "a heartbeat while the handler is busy")
	}
	assert.Equal(t, 1, srv.Connections(), "a busy handler is not a zombie connection")
	close(release)
	h.eventually(func() bool { return h.rec.count(wire.EventGroupAtMessageCreate) == 5 }, "the queued events")
	assert.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7}, h.rec.seqs())
}

func TestHandlerErrorsAndPanicsAreCounted(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, nil)
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		switch ev.Type {
		case wire.EventC2CMessageCreate:
			return errors.New("handler says no")
		case wire.EventFriendAdd:
			panic("handler blew up")
		}
		return nil
	}
	h.start()
	sess := h.session()
	for _, typ := range []string{wire.EventC2CMessageCreate, wire.EventFriendAdd, wire.EventFriendDel} {
		_, err := sess.EmitMessage(typ)
		require.NoError(t, err)
	}
	h.eventually(func() bool { return h.c.Status().Handled == 4 }, "all handled")
	h.eventually(func() bool { return h.c.Status().State == client.StateConnected }, "connected")
	st := h.c.Status()
	assert.EqualValues(t, 1, st.HandlerErrors)
	assert.EqualValues(t, 1, st.HandlerPanics)
	assert.EqualValues(t, 4, st.LastSeqHandled)
	assert.Equal(t, 1, srv.Connections())
}

func TestRunReturnsOnCancel(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, nil).start()
	h.session()
	err := h.stop()
	assert.True(t, isCanceled(err), "Run returned %v", err)
	assert.Equal(t, client.StateClosed, h.c.Status().State)
	h.serverWait(func() bool { return srv.LiveConnections() == 0 }, "the connection closed")
	require.ErrorIs(t, h.c.Run(context.Background()), client.ErrClosed)
}

func TestCloseIsIdempotentAndEndsRun(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, nil).start()
	h.session()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, h.c.Close(ctx))
	require.NoError(t, h.c.Close(ctx))
	assert.ErrorIs(t, h.runErr(), client.ErrClosed)
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	_, err := client.New(client.Config{})
	assert.ErrorIs(t, err, client.ErrConfig)
	_, err = client.New(client.Config{AppID: "1"})
	assert.ErrorIs(t, err, client.ErrConfig, "no secret")
	_, err = client.New(client.Config{AppID: "1", ClientSecret: "s", APIBase: "http://example.com"})
	assert.ErrorIs(t, err, client.ErrConfig, "plain http off loopback")
	_, err = client.New(client.Config{AppID: "1", ClientSecret: "s", APIBase: "http://127.0.0.1:1", TokenURL: "http://localhost:1/t"})
	assert.NoError(t, err, "plain http on loopback")
	_, err = client.New(client.Config{AppID: "1", ClientSecret: "s", Shard: [2]int{2, 2}})
	assert.ErrorIs(t, err, client.ErrConfig)
	c, err := client.New(client.Config{AppID: "1", ClientSecret: "s"})
	require.NoError(t, err)
	st := c.Status()
	assert.Equal(t, client.StateIdle, st.State)
	assert.Equal(t, "1", st.AccountID, "account defaults to the app id")
	assert.EqualValues(t, 1174409216, st.Intents, "the default asks for interactions (button clicks)")
	assert.False(t, st.Degraded)
	assert.NoError(t, c.Close(context.Background()))
}

// Validate gives exactly New's verdict, without building a client, and
// leaves the caller's value as it was.
func TestConfigValidateMatchesNew(t *testing.T) {
	t.Parallel()
	hc := &http.Client{}
	levels := []intents.Level{{Name: "a", Intents: 1}, {Name: "b", Intents: 0}}
	cases := []client.Config{
		{},
		{AppID: "  "},
		{AppID: "1"},
		{AppID: "1", ClientSecret: "s", APIBase: "http://example.com"},
		{AppID: "1", ClientSecret: "s", TokenURL: "ftp://example.com/t"},
		{AppID: "1", ClientSecret: "s", GatewayURL: "ws://example.com/ws"},
		{AppID: "1", ClientSecret: "s", IntentLevels: levels},
		{AppID: "1", ClientSecret: "s", Shard: [2]int{2, 2}},
		{AppID: "1", ClientSecret: "s", HandlerConcurrency: -1},
		{AppID: "1", ClientSecret: "s", QueueSize: -1},
		{AppID: "1", ClientSecret: "s", QueueBytes: -1},
		{AppID: "1", ClientSecret: "s", MaxMessageBytes: 10},
		{AppID: "1", ClientSecret: "s", MaxMessageBytes: wire.MaxFrameBytes + 1},
		{AppID: "1", ClientSecret: "s", Backoff: client.BackoffConfig{Jitter: 1.5}},
		{AppID: "1", ClientSecret: "s", APIBase: "http://127.0.0.1:1", TokenURL: "http://localhost:1/t"},
		{AppID: " 1 ", ClientSecret: "s", HTTPClient: hc, IntentLevels: levels[:1]},
	}
	for i, cfg := range cases {
		before := fmt.Sprintf("%+v", cfg)
		verr := cfg.Validate()
		assert.Equal(t, before, fmt.Sprintf("%+v", cfg), "case %d: Validate changed the config", i)
		c, nerr := client.New(cfg)
		if nerr != nil {
			require.Error(t, verr, "case %d: New refused %v", i, nerr)
			assert.ErrorIs(t, verr, client.ErrConfig, "case %d", i)
			assert.Equal(t, nerr.Error(), verr.Error(), "case %d", i)
			continue
		}
		assert.NoError(t, verr, "case %d", i)
		assert.NoError(t, c.Close(context.Background()))
	}
	assert.Nil(t, hc.CheckRedirect, "the caller's HTTP client is not changed")
}

func TestHandlerConcurrencyCommitsBelowTheSlowest(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	release := make(chan struct{})
	slowIn := make(chan struct{})
	h := newHarness(t, srv, func(c *client.Config) { c.HandlerConcurrency = 3 })
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		if ev.Seq == 2 {
			close(slowIn)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	h.start()
	sess := h.session()
	for i := 0; i < 4; i++ {
		_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
		require.NoError(t, err)
	}
	<-slowIn
	h.eventually(func() bool { return h.c.Status().Handled == 4 }, "all but the slow one handled")
	assert.EqualValues(t, 1, h.c.Status().LastSeqHandled, "committed stays below the slow event")
	close(release)
	h.eventually(func() bool { return h.c.Status().LastSeqHandled == 5 }, "committed catches up")
}

func TestDedupeWindowForgetsTheOldest(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, func(c *client.Config) { c.DedupeWindow = 2 }).start()
	sess := h.session()
	first, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
		require.NoError(t, err)
	}
	dup, err := sess.EmitDuplicate(first) // out of the window of 2: delivered again
	require.NoError(t, err)
	h.eventually(func() bool { return h.c.Status().LastSeqHandled == dup }, "all handled")
	assert.Equal(t, 4, h.rec.count(wire.EventC2CMessageCreate))
	assert.EqualValues(t, 0, h.c.Status().DuplicatesDropped)
}
