package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// A gateway that sends hostile frames after READY: they are counted and
// skipped, the connection stays, and the next good event arrives.
func TestHostileFramesAreSkippedNotFatal(t *testing.T) {
	tokens := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	hostile := []string{
		`not json at all`,
		`{"op":"zero"}`,
		`{"d":{}}`,
		`[1,2,3]`,
		`{"op":0,"s":2,"t":"READY","d":{"session_id":""}}`,
		`{"op":0,"s":3,"t":"C2C_MESSAGE_CREATE","d":` + strings.Repeat("[", 100000) + `}`,
		`{"op":10,"d":"hello again"}`,
		`{"op":9,"d":"maybe"}`,
	}
	var wg sync.WaitGroup
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		write := func(s string) bool { return c.Write(ctx, websocket.MessageText, []byte(s)) == nil }
		write(`{"op":10,"d":{"heartbeat_interval":45000}}`)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			f, _ := wire.DecodeFrame(b)
			if f.Op != wire.OpIdentify {
				continue
			}
			write(`{"op":0,"s":1,"t":"READY","d":{"version":1,"session_id":"s-1","user":{"id":"1","username":"b","bot":true},"shard":[0,1]}}`)
			for _, h := range hostile[:6] {
				write(h)
			}
			write(`{"op":0,"s":4,"t":"FRIEND_ADD","id":"FRIEND_ADD:1","d":{"openid":"o","timestamp":1}}`)
			for { // keep reading (heartbeats, the close handshake) until the client goes
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}
	}))
	// Registered before the harness: cleanups run last-first, so the client
	// stops before this server does (a client still running would
	// reconnect and RESUME, which this server never answers).
	t.Cleanup(func() { ws.Close(); wg.Wait() })

	h := newHarness(t, tokens, func(c *client.Config) {
		c.GatewayURL = "ws" + strings.TrimPrefix(ws.URL, "http")
	}).start()
	h.eventually(func() bool { return h.rec.has(wire.EventFriendAdd) }, "the good event after the hostile ones")
	st := h.c.Status()
	assert.EqualValues(t, 6, st.BadFrames, "four undecodable frames, one nested past the decoder's depth limit, a READY without a session id")
	assert.Equal(t, "s-1", st.SessionID, "a hostile READY does not replace the session")
	assert.EqualValues(t, 1, st.Connects, "no reconnect")
	require.Equal(t, []string{wire.EventReady, wire.EventFriendAdd}, h.rec.types())
}

func TestHostileHelloIntervalIsRejectedNotAPanic(t *testing.T) {
	tokens := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	var wg sync.WaitGroup
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`{"op":10,"d":{"heartbeat_interval":9223372036855}}`))
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { ws.Close(); wg.Wait() })
	h := newHarness(t, tokens, func(c *client.Config) {
		c.GatewayURL = "ws" + strings.TrimPrefix(ws.URL, "http")
	}).start()
	h.eventually(func() bool { return h.c.Status().Connects >= 2 }, "a reconnect after the bad HELLO")
	assert.Empty(t, tokens.Identifies())
}

func TestRateLimitedGatewayWaitsAMinute(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.FailNextGateways(1, gatewaytest.Failure{Status: http.StatusTooManyRequests, Code: 100001, Message: "Too many requests"})
	h := newHarness(t, srv, nil).start()
	h.session()
	waits := h.recordedWaits()
	require.NotEmpty(t, waits)
	assert.GreaterOrEqual(t, waits[0], 60*time.Second)
}

func TestOversizedFrameReplayedTwiceStartsANewSession(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, func(c *client.Config) { c.MaxMessageBytes = 2048 }).start()
	sess := h.session()
	_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	_, err = sess.Emit(wire.EventC2CMessageCreate, map[string]string{"id": "huge", "content": strings.Repeat("x", 4096)})
	require.NoError(t, err)
	h.serverWait(func() bool { return len(srv.Identifies()) == 2 }, "a new IDENTIFY after the frame came back")
	next, err := srv.WaitSession(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, sess.ID(), next.ID())
	_, err = next.EmitMessage(wire.EventFriendAdd)
	require.NoError(t, err)
	h.eventually(func() bool { return h.rec.has(wire.EventFriendAdd) }, "events flow on the new session")
	assert.Len(t, srv.Resumes(), 1, "one RESUME that got the same frame again, then IDENTIFY")
	st := h.c.Status()
	assert.EqualValues(t, 2, st.OversizedFrames)
	assert.Equal(t, next.ID(), st.SessionID)
	assert.Equal(t, 1, h.rec.count(wire.EventC2CMessageCreate), "the oversized event never reached the handler")
}
