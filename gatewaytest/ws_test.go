package gatewaytest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/wire"
)

func TestHelloFirst(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{HeartbeatInterval: 1234 * time.Millisecond})
	c := dial(t, srv)
	f := c.readOp(wire.OpHello)
	var h wire.Hello
	require.NoError(t, json.Unmarshal(f.D, &h))
	assert.Equal(t, int64(1234), h.HeartbeatInterval)
	assert.Equal(t, 1, srv.Connections())
	assert.Equal(t, 1, srv.LiveConnections())

	d := dial(t, NewTestServer(t, Options{}))
	f = d.readOp(wire.OpHello)
	require.NoError(t, json.Unmarshal(f.D, &h))
	assert.Equal(t, int64(45000), h.HeartbeatInterval)
}

func TestIdentifyReady(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c := dial(t, srv)
	// IDENTIFY before reading HELLO, as botgo does.
	c.identify(wire.TokenPrefix+srv.Token(DefaultAppID), 1<<25|1<<30, [2]int{1, 4})
	c.readOp(wire.OpHello)
	f := c.readDispatch(wire.EventReady)
	assert.Equal(t, uint64(1), f.S)
	var r wire.Ready
	require.NoError(t, json.Unmarshal(f.D, &r))
	assert.Equal(t, 1, r.Version)
	assert.Equal(t, [2]int{1, 4}, r.Shard, "shard echoed")
	assert.True(t, r.User.Bot)
	assert.NotEmpty(t, r.User.ID)
	assert.Len(t, r.SessionID, 36)

	sess, err := srv.WaitSession(testCtx(t))
	require.NoError(t, err)
	assert.Equal(t, r.SessionID, sess.ID())
	assert.Equal(t, DefaultAppID, sess.AppID())
	assert.Equal(t, [2]int{1, 4}, sess.Shard())
	assert.Equal(t, uint32(1<<25|1<<30), sess.Intents())
	assert.Equal(t, r.User, sess.User())
	assert.Equal(t, uint64(1), sess.LastSeq())
	assert.Equal(t, 1, sess.Conn())
	assert.Same(t, sess, srv.Session(DefaultAppID))
	assert.Nil(t, srv.Session("other"))

	ids := srv.Identifies()
	require.Len(t, ids, 1)
	assert.Equal(t, [2]int{1, 4}, ids[0].Shard)
}

func TestIdentifyFailures(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	tok := srv.Token(DefaultAppID)
	cases := []struct {
		name   string
		frame  string
		code   wire.CloseCode
		reason string
	}{
		{"bare token", `{"op":2,"d":{"token":"` + tok + `","intents":1,"shard":[0,1]}}`, wire.CloseAuthenticationFailed, "authentication failed"},
		{"unknown token", `{"op":2,"d":{"token":"QQBot nope","intents":1,"shard":[0,1]}}`, wire.CloseAuthenticationFailed, "authentication failed"},
		{"no d", `{"op":2}`, wire.CloseDecodeError, "decode error"},
		{"bad shard", `{"op":2,"d":{"token":"QQBot ` + tok + `","intents":1,"shard":[1,1]}}`, wire.CloseInvalidShard, "invalid shard"},
		{"not json", `hello`, wire.CloseDecodeError, "decode error"},
		{"no op", `{"d":1}`, wire.CloseDecodeError, "decode error"},
		{"dispatch from client", `{"op":0,"d":{}}`, wire.CloseInvalidOpcode, "invalid opcode"},
		{"op 12", `{"op":12,"d":0}`, wire.CloseInvalidOpcode, "invalid opcode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, srv)
			c.readOp(wire.OpHello)
			c.sendRaw([]byte(tc.frame))
			c.expectClose(int(tc.code), tc.reason)
		})
	}
}

func TestAlreadyAuthenticated(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, r, sess := ready(t, srv)
	c.resume(srv.Token(DefaultAppID), r.SessionID, 1)
	c.expectClose(int(wire.CloseAlreadyAuthenticated), "already authenticated")
	require.NoError(t, srv.Wait(testCtx(t), func() bool { return sess.Conn() == 0 }))
}

func TestHeartbeatACK(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c := dial(t, srv)
	c.readOp(wire.OpHello)
	c.send(wire.OpHeartbeat, json.RawMessage("null"))
	ack := c.readOp(wire.OpHeartbeatACK)
	assert.Nil(t, ack.D, "the ACK has no d")
	c.send(wire.OpHeartbeat, 42)
	c.readOp(wire.OpHeartbeatACK)
	c.send(wire.OpHeartbeat, nil)
	c.readOp(wire.OpHeartbeatACK)

	hbs := srv.Heartbeats()
	require.Len(t, hbs, 3)
	assert.Equal(t, json.RawMessage("null"), hbs[0].D)
	assert.False(t, hbs[0].HasSeq)
	assert.True(t, hbs[1].HasSeq)
	assert.Equal(t, uint64(42), hbs[1].Seq)
	assert.False(t, hbs[2].HasSeq)
	assert.Nil(t, hbs[2].D)
	for _, hb := range hbs {
		assert.Equal(t, 1, hb.Conn)
	}
}

func TestWithholdACKs(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, _, sess := ready(t, srv)
	srv.WithholdACKs(true)
	c.send(wire.OpHeartbeat, 1)
	require.NoError(t, srv.Wait(testCtx(t), func() bool { return len(srv.Heartbeats()) == 1 }))
	srv.WithholdACKs(false)
	c.send(wire.OpHeartbeat, 1)
	require.NoError(t, srv.Wait(testCtx(t), func() bool { return len(srv.Heartbeats()) == 2 }))
	_, err := sess.Emit("X", nil)
	require.NoError(t, err)
	// Exactly one ACK (for the second beat), then the event.
	c.readOp(wire.OpHeartbeatACK)
	c.readDispatch("X")
}

func TestHeartbeatTimeout(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 50 * time.Millisecond})
	c := dial(t, srv)
	c.readOp(wire.OpHello)
	c.expectClose(int(wire.CloseSessionTimedOut), "Session timed out")
	require.NoError(t, srv.Wait(testCtx(t), func() bool { return srv.LiveConnections() == 0 }))
}

func TestHeartbeatsKeepConnectionAlive(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	srv := NewTestServer(t, Options{HeartbeatInterval: 10 * time.Millisecond, HeartbeatTimeout: timeout})
	c, _, _ := ready(t, srv)
	// Beat, every beat answered, until the server's own record of the
	// beats spans twice the timeout: each beat re-armed it.
	for {
		c.send(wire.OpHeartbeat, 1)
		c.readOp(wire.OpHeartbeatACK)
		hb := srv.Heartbeats()
		if hb[len(hb)-1].At.Sub(hb[0].At) > 2*timeout {
			break
		}
	}
	assert.Equal(t, 1, srv.LiveConnections())
}

func TestEmitInSeqOrder(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, _, sess := ready(t, srv)
	for i := range 20 {
		seq, err := sess.Emit("EVENT", map[string]int{"n": i})
		require.NoError(t, err)
		assert.Equal(t, uint64(i+2), seq)
	}
	raw, err := sess.EmitWithID("RAW", "", json.RawMessage(`{"x":1}`))
	require.NoError(t, err)
	for i := range 20 {
		f := c.readDispatch("EVENT")
		assert.Equal(t, uint64(i+2), f.S)
		assert.True(t, strings.HasPrefix(f.ID, "EVENT:"), f.ID)
		assert.JSONEq(t, mustJSON(t, map[string]int{"n": i}), string(f.D))
	}
	f := c.readDispatch("RAW")
	assert.Equal(t, raw, f.S)
	assert.Empty(t, f.ID)
	assert.JSONEq(t, `{"x":1}`, string(f.D))
	assert.Equal(t, raw, sess.LastSeq())
	assert.Len(t, sess.Frames(), 22)

	_, err = sess.Emit("BAD", func() {})
	require.Error(t, err)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestEmitMessage(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, _, sess := ready(t, srv)
	types := []string{
		wire.EventAtMessageCreate, wire.EventMessageCreate, wire.EventDirectMessageCreate,
		wire.EventC2CMessageCreate, wire.EventGroupAtMessageCreate, wire.EventInteractionCreate,
		wire.EventGroupAddRobot, wire.EventGroupDelRobot, wire.EventFriendAdd, wire.EventFriendDel,
		wire.EventGroupMessageCreate, wire.EventGroupMsgReceive, wire.EventGroupMsgReject,
		wire.EventC2CMsgReceive, wire.EventC2CMsgReject,
		wire.EventMessageDelete, wire.EventPublicMessageDelete, wire.EventDirectMessageDelete,
		wire.EventMessageAuditPass, wire.EventMessageAuditReject,
	}
	for _, typ := range types {
		_, err := sess.EmitMessage(typ)
		require.NoError(t, err, typ)
	}
	_, err := sess.EmitMessage("NOPE")
	require.ErrorIs(t, err, ErrUnknownEvent)

	envelopeIDs := map[string]bool{}
	bodyIDs := map[string]bool{}
	for _, typ := range types {
		f := c.readDispatch(typ)
		assert.True(t, strings.HasPrefix(f.ID, typ+":"), f.ID)
		envelopeIDs[f.ID] = true
		switch typ {
		case wire.EventInteractionCreate:
			var in wire.Interaction
			require.NoError(t, json.Unmarshal(f.D, &in))
			assert.NotEmpty(t, in.Data.Resolved.ButtonID)
			assert.Equal(t, DefaultAppID, in.ApplicationID)
			bodyIDs[in.ID] = true
		case wire.EventGroupAddRobot, wire.EventGroupDelRobot, wire.EventGroupMsgReceive, wire.EventGroupMsgReject:
			var ev wire.GroupRobotEvent
			require.NoError(t, json.Unmarshal(f.D, &ev))
			assert.Len(t, ev.GroupOpenID, 32)
			assert.NotZero(t, ev.Timestamp)
		case wire.EventFriendAdd, wire.EventFriendDel, wire.EventC2CMsgReceive, wire.EventC2CMsgReject:
			var ev wire.FriendEvent
			require.NoError(t, json.Unmarshal(f.D, &ev))
			assert.Len(t, ev.OpenID, 32)
		case wire.EventMessageDelete, wire.EventPublicMessageDelete, wire.EventDirectMessageDelete:
			var ev wire.MessageDelete
			require.NoError(t, json.Unmarshal(f.D, &ev))
			assert.NotEmpty(t, ev.Message.ID)
			assert.NotEmpty(t, ev.Message.ChannelID)
			assert.NotEmpty(t, ev.OpUser.ID)
		case wire.EventMessageAuditPass, wire.EventMessageAuditReject:
			var ev wire.MessageAudited
			require.NoError(t, json.Unmarshal(f.D, &ev))
			assert.NotEmpty(t, ev.AuditID)
			assert.Equal(t, typ == wire.EventMessageAuditPass, ev.MessageID != "", "only a passed audit names the message")
		default:
			var m wire.Message
			require.NoError(t, json.Unmarshal(f.D, &m))
			assert.NotEmpty(t, m.Content)
			_, err := time.Parse(time.RFC3339, m.Timestamp)
			require.NoError(t, err)
			bodyIDs[m.ID] = true
			switch typ {
			case wire.EventC2CMessageCreate:
				assert.NotEmpty(t, m.Author.UserOpenID)
			case wire.EventGroupAtMessageCreate, wire.EventGroupMessageCreate:
				assert.NotEmpty(t, m.Author.MemberOpenID)
				assert.NotEmpty(t, m.GroupOpenID)
				require.Len(t, m.Mentions, 1)
				assert.True(t, m.Mentions[0].IsYou)
				require.NotNil(t, m.MessageScene)
				assert.Equal(t, "default", m.MessageScene.Source)
			case wire.EventAtMessageCreate:
				assert.Contains(t, m.Content, "<@!"+sess.User().ID+">")
				fallthrough
			default:
				assert.NotEmpty(t, m.GuildID)
				assert.NotEmpty(t, m.ChannelID)
				assert.NotEmpty(t, m.Author.ID)
			}
		}
	}
	assert.Len(t, envelopeIDs, len(types))
	assert.Len(t, bodyIDs, 7)
}

func TestEmitDuplicate(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, _, sess := ready(t, srv)
	seq, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	dup, err := sess.EmitDuplicate(seq)
	require.NoError(t, err)
	assert.Equal(t, seq+1, dup)
	a := c.readDispatch(wire.EventC2CMessageCreate)
	b := c.readDispatch(wire.EventC2CMessageCreate)
	assert.Equal(t, a.ID, b.ID)
	assert.JSONEq(t, string(a.D), string(b.D))
	assert.Equal(t, seq, a.S)
	assert.Equal(t, dup, b.S)
	_, err = sess.EmitDuplicate(99)
	require.ErrorIs(t, err, ErrNoSuchSeq)
}

func TestDropThenResumeReplays(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, r, sess := ready(t, srv)
	_, err := sess.Emit("A", 1)
	require.NoError(t, err)
	last := c.readDispatch("A").S

	sess.Drop()
	code, _ := c.readEnd()
	assert.Equal(t, -1, code, "no close frame")
	assert.Equal(t, 0, sess.Conn(), "detached at once")
	for _, typ := range []string{"B", "C"} {
		_, err := sess.Emit(typ, typ)
		require.NoError(t, err)
	}

	replays := [][]string{{"B", "C"}, {"B", "C", "D"}} // never the first RESUMED
	for i, form := range []string{"QQBot ", ""} {
		t.Run("token "+strings.TrimSpace(form+"bare"), func(t *testing.T) {
			c2 := dial(t, srv)
			c2.readOp(wire.OpHello)
			c2.resume(form+srv.Token(DefaultAppID), r.SessionID, last)
			var got []string
			next := last + 1
			for {
				f := c2.readOp(wire.OpDispatch)
				if f.T == wire.EventResumed {
					assert.Equal(t, sess.LastSeq(), f.S, "RESUMED takes the next seq")
					assert.JSONEq(t, `""`, string(f.D))
					break
				}
				assert.GreaterOrEqual(t, f.S, next, "in seq order")
				next = f.S + 1
				got = append(got, f.T)
			}
			assert.Equal(t, replays[i], got)
			assert.NotZero(t, sess.Conn())

			// Live again: events go straight to the new connection.
			_, err := sess.Emit("D", nil)
			require.NoError(t, err)
			c2.readDispatch("D")
			sess.Drop()
			c2.readEnd()
		})
	}
	// The RESUMED frames are in the log but never replayed; D events are.
	assert.Equal(t, 2, sess.Resumes())
	rs := srv.Resumes()
	require.Len(t, rs, 2)
	assert.Equal(t, "QQBot "+srv.Token(DefaultAppID), rs[0].Token)
	assert.Equal(t, srv.Token(DefaultAppID), rs[1].Token)

	c3 := dial(t, srv)
	c3.readOp(wire.OpHello)
	c3.resume(srv.Token(DefaultAppID), r.SessionID, 0)
	var got []string
	for {
		f := c3.readOp(wire.OpDispatch)
		got = append(got, f.T)
		if f.T == wire.EventResumed {
			break
		}
	}
	assert.Equal(t, []string{"READY", "A", "B", "C", "D", "D", "RESUMED"}, got)
}

func TestResumeTakesOverLiveConnection(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, r, sess := ready(t, srv)
	c2 := dial(t, srv)
	c2.readOp(wire.OpHello)
	c2.resume(wire.TokenPrefix+srv.Token(DefaultAppID), r.SessionID, 1)
	c2.readDispatch(wire.EventResumed)
	c.expectClose(int(wire.CloseSessionTimedOut), "Session timed out")
	assert.Equal(t, 2, sess.Conn())
}

func TestResumeRejected(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		opts      Options
		setup     func(srv *Server, sess *Session) (sessionID string, seq uint64, token string)
		op9       bool
		code      wire.CloseCode
		reason    string
		stillGood bool // the session can be resumed afterwards
	}{
		{
			name: "expired (default op 9 + 4006)",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				sess.Expire()
				return sess.ID(), 1, srv.Token(DefaultAppID)
			},
			op9: true, code: wire.CloseInvalidSession, reason: "invalid session",
		},
		{
			name: "unknown session",
			setup: func(srv *Server, _ *Session) (string, uint64, string) {
				return "nope", 1, srv.Token(DefaultAppID)
			},
			op9: true, code: wire.CloseInvalidSession, reason: "invalid session", stillGood: true,
		},
		{
			name: "unknown session with ResumeReject4902",
			opts: Options{ResumeRejection: ResumeReject4902},
			setup: func(srv *Server, _ *Session) (string, uint64, string) {
				return "nope", 1, srv.Token(DefaultAppID)
			},
			code: wire.CloseResetByResume, reason: "reset by resume", stillGood: true,
		},
		{
			name: "another app's session",
			opts: Options{Apps: map[string]string{DefaultAppID: DefaultSecret, "2": "x"}},
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				return sess.ID(), 1, srv.Token("2")
			},
			op9: true, code: wire.CloseInvalidSession, reason: "invalid session", stillGood: true,
		},
		{
			name: "seq ahead of the session",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				return sess.ID(), 2, srv.Token(DefaultAppID)
			},
			code: wire.CloseInvalidSeq, reason: "invalid seq", stillGood: true,
		},
		{
			name: "revoked token",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				tok := srv.Token(DefaultAppID)
				srv.RevokeTokens()
				return sess.ID(), 1, tok
			},
			code: wire.CloseAuthenticationFailed, reason: "authentication failed", stillGood: true,
		},
		{
			name: "scripted 4902",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				srv.RejectResumes(1, ResumeReject4902)
				return sess.ID(), 1, srv.Token(DefaultAppID)
			},
			code: wire.CloseResetByResume, reason: "reset by resume", stillGood: true,
		},
		{
			name: "scripted 4006",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				srv.RejectResumes(1, ResumeReject4006)
				return sess.ID(), 1, srv.Token(DefaultAppID)
			},
			code: wire.CloseInvalidSession, reason: "invalid session", stillGood: true,
		},
		{
			name: "scripted invalid session",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				srv.RejectResumes(1, ResumeRejectInvalidSession)
				return sess.ID(), 1, srv.Token(DefaultAppID)
			},
			op9: true, code: wire.CloseInvalidSession, reason: "invalid session", stillGood: true,
		},
		{
			name: "scripted code",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				srv.RejectResumes(1, Close{Code: 4008, Reason: "rate limited"})
				return sess.ID(), 1, srv.Token(DefaultAppID)
			},
			code: wire.CloseRateLimited, reason: "rate limited", stillGood: true,
		},
		{
			name: "scripted drop",
			setup: func(srv *Server, sess *Session) (string, uint64, string) {
				srv.RejectResumes(1, Close{Code: 1006})
				return sess.ID(), 1, srv.Token(DefaultAppID)
			},
			code: -1, stillGood: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := NewTestServer(t, tc.opts)
			c, _, sess := ready(t, srv)
			sess.Drop()
			c.readEnd()
			id, seq, tok := tc.setup(srv, sess)

			c2 := dial(t, srv)
			c2.readOp(wire.OpHello)
			c2.resume(tok, id, seq)
			if tc.op9 {
				f := c2.readOp(wire.OpInvalidSession)
				assert.JSONEq(t, "false", string(f.D))
			}
			c2.expectClose(int(tc.code), tc.reason)
			assert.Equal(t, 0, sess.Resumes())

			c3 := dial(t, srv)
			c3.readOp(wire.OpHello)
			c3.resume(srv.Token(DefaultAppID), sess.ID(), 1)
			if tc.stillGood {
				c3.readDispatch(wire.EventResumed)
			} else {
				c3.readOp(wire.OpInvalidSession)
				c3.readEnd()
			}
		})
	}
}

func TestResumeAcceptingScripts(t *testing.T) {
	t.Parallel()
	t.Run("drop before RESUMED", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{})
		c, r, sess := ready(t, srv)
		sess.Drop()
		c.readEnd()
		_, err := sess.Emit("MISSED", nil)
		require.NoError(t, err)
		srv.RejectResumes(1, ResumeDropBeforeResumed)
		c2 := dial(t, srv)
		c2.readOp(wire.OpHello)
		c2.resume(srv.Token(DefaultAppID), r.SessionID, 1)
		c2.readDispatch("MISSED")
		assert.Equal(t, -1, func() int { code, _ := c2.readEnd(); return code }())
		assert.Equal(t, 0, sess.Resumes())
	})
	t.Run("RESUMED then 4009", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{})
		c, r, sess := ready(t, srv)
		sess.Drop()
		c.readEnd()
		srv.RejectResumes(1, ResumeAcceptThenClose)
		c2 := dial(t, srv)
		c2.readOp(wire.OpHello)
		c2.resume(srv.Token(DefaultAppID), r.SessionID, 1)
		c2.readDispatch(wire.EventResumed)
		c2.expectClose(int(wire.CloseSessionTimedOut), "Session timed out")
		assert.Equal(t, 1, sess.Resumes())
		assert.Equal(t, 0, sess.Conn())
	})
	t.Run("accepting script on a bad resume is used up", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{})
		c, r, sess := ready(t, srv)
		sess.Drop()
		c.readEnd()
		srv.RejectResumes(1, ResumeAcceptThenClose)
		c2 := dial(t, srv)
		c2.readOp(wire.OpHello)
		c2.resume(srv.Token(DefaultAppID), r.SessionID, 7)
		c2.expectClose(int(wire.CloseInvalidSeq), "invalid seq")
		c3 := dial(t, srv)
		c3.readOp(wire.OpHello)
		c3.resume(srv.Token(DefaultAppID), r.SessionID, 1)
		c3.readDispatch(wire.EventResumed)
		c3.send(wire.OpHeartbeat, 2)
		c3.readOp(wire.OpHeartbeatACK) // still open
	})
}

func TestReconnect(t *testing.T) {
	t.Parallel()
	t.Run("op 7 then 4009", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{})
		c, _, sess := ready(t, srv)
		sess.Reconnect(Close{Code: wire.CloseSessionTimedOut, Reason: "Session timed out"})
		c.readOp(wire.OpReconnect)
		c.expectClose(int(wire.CloseSessionTimedOut), "Session timed out")
		assert.False(t, sess.Expired())
	})
	t.Run("op 7 alone", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{})
		c, r, sess := ready(t, srv)
		sess.Reconnect()
		_, err := sess.Emit("LATER", nil)
		require.NoError(t, err)
		f := c.readOp(wire.OpReconnect)
		assert.Nil(t, f.D)
		// The connection stays open but no longer carries the session.
		c.send(wire.OpHeartbeat, 1)
		c.readOp(wire.OpHeartbeatACK)
		assert.Equal(t, 0, sess.Conn())

		c2 := dial(t, srv)
		c2.readOp(wire.OpHello)
		c2.resume(srv.Token(DefaultAppID), r.SessionID, 1)
		c2.readDispatch("LATER")
		c2.readDispatch(wire.EventResumed)
	})
	t.Run("no connection", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{})
		c, _, sess := ready(t, srv)
		sess.Drop()
		c.readEnd()
		sess.Reconnect(Close{Code: wire.CloseSessionTimedOut, Reason: "Session timed out"})
		sess.InvalidSession(false)
		sess.CloseWith(4000, "x")
		assert.False(t, sess.Expired())
	})
}

func TestInvalidSession(t *testing.T) {
	t.Parallel()
	for _, canResume := range []bool{true, false} {
		t.Run(map[bool]string{true: "true", false: "false"}[canResume], func(t *testing.T) {
			t.Parallel()
			srv := NewTestServer(t, Options{})
			c, r, sess := ready(t, srv)
			sess.InvalidSession(canResume)
			f := c.readOp(wire.OpInvalidSession)
			assert.JSONEq(t, map[bool]string{true: "true", false: "false"}[canResume], string(f.D))
			assert.Equal(t, !canResume, sess.Expired())

			// The connection is still open and may RESUME or IDENTIFY.
			c.resume(srv.Token(DefaultAppID), r.SessionID, 1)
			if canResume {
				c.readDispatch(wire.EventResumed)
			} else {
				c.readOp(wire.OpInvalidSession)
				c.expectClose(int(wire.CloseInvalidSession), "invalid session")
			}
		})
	}
	t.Run("then close", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{})
		c, _, sess := ready(t, srv)
		sess.InvalidSession(false, Close{Code: wire.CloseCreateSessionError, Reason: "create session error"})
		c.readOp(wire.OpInvalidSession)
		c.expectClose(4903, "create session error")
	})
}

func TestCloseWith(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, _, sess := ready(t, srv)
	_, err := sess.Emit("BEFORE", nil)
	require.NoError(t, err)
	sess.CloseWith(4900, "internal error")
	_, err = sess.Emit("AFTER", nil)
	require.NoError(t, err)
	c.readDispatch("BEFORE")
	c.expectClose(4900, "internal error")
	require.NoError(t, srv.Wait(testCtx(t), func() bool { return srv.LiveConnections() == 0 }))
}

func TestIntentRejection(t *testing.T) {
	t.Parallel()
	const allowed = 1<<30 | 1<<25
	cases := []struct {
		mode   RejectMode
		op9    bool
		code   wire.CloseCode
		reason string
	}{
		{RejectInvalidSession4903, true, wire.CloseCreateSessionError, "create session error"},
		{RejectClose4013, false, wire.CloseInvalidIntents, "invalid intents"},
		{RejectClose4014, false, wire.CloseDisallowedIntents, "disallowed intents"},
	}
	for _, tc := range cases {
		t.Run(tc.mode.String(), func(t *testing.T) {
			t.Parallel()
			srv := NewTestServer(t, Options{AllowedIntents: allowed, IntentRejection: tc.mode})
			c := dial(t, srv)
			c.readOp(wire.OpHello)
			c.identify(wire.TokenPrefix+srv.Token(DefaultAppID), allowed|1<<12, [2]int{0, 1})
			if tc.op9 {
				f := c.readOp(wire.OpInvalidSession)
				assert.JSONEq(t, "false", string(f.D))
			}
			c.expectClose(int(tc.code), tc.reason)
			assert.Empty(t, srv.Sessions())

			// A subset of the allowed intents is fine.
			c2 := dial(t, srv)
			c2.readOp(wire.OpHello)
			c2.identify(wire.TokenPrefix+srv.Token(DefaultAppID), 1<<30, [2]int{0, 1})
			c2.readDispatch(wire.EventReady)
		})
	}
}

func TestRejectIdentifies(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	srv.RejectIdentifies(1, RejectClose4014)
	srv.RejectIdentifies(1, Close{Code: 4915, Reason: "banned"})
	tok := wire.TokenPrefix + srv.Token(DefaultAppID)

	c := dial(t, srv)
	c.readOp(wire.OpHello)
	c.identify(tok, 1, [2]int{0, 1})
	c.expectClose(4014, "disallowed intents")

	c = dial(t, srv)
	c.readOp(wire.OpHello)
	c.identify(tok, 1, [2]int{0, 1})
	c.expectClose(4915, "banned")

	c = dial(t, srv)
	c.readOp(wire.OpHello)
	c.identify(tok, 1, [2]int{0, 1})
	c.readDispatch(wire.EventReady)
	assert.Len(t, srv.Identifies(), 3)
	assert.Equal(t, 997, srv.SessionStartLimit().Remaining)
}

func TestCloseNextAfterHello(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	srv.CloseNextAfterHello(4914, "bot offline")
	srv.CloseNextAfterHello(1006, "")
	c := dial(t, srv)
	c.readOp(wire.OpHello)
	c.identify(wire.TokenPrefix+srv.Token(DefaultAppID), 1, [2]int{0, 1})
	c.expectClose(4914, "bot offline")

	c = dial(t, srv)
	c.readOp(wire.OpHello)
	c.expectClose(-1, "")

	ready(t, srv)
	assert.Len(t, srv.Sessions(), 1)
	assert.Equal(t, 3, srv.Connections())
}

func TestAppsAreSeparate(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{Apps: map[string]string{"a": "1", "b": "2"}})
	var sessions []*Session
	var clients []*client
	for _, app := range []string{"a", "b"} {
		c := dial(t, srv)
		c.readOp(wire.OpHello)
		c.identify(wire.TokenPrefix+srv.Token(app), 1, [2]int{0, 1})
		c.readDispatch(wire.EventReady)
		sess, err := srv.WaitSession(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, app, sess.AppID())
		sessions = append(sessions, sess)
		clients = append(clients, c)
	}
	assert.NotEqual(t, sessions[0].ID(), sessions[1].ID())
	assert.NotEqual(t, sessions[0].User().ID, sessions[1].User().ID)
	_, err := sessions[1].Emit("FOR_B", nil)
	require.NoError(t, err)
	_, err = sessions[0].Emit("FOR_A", nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), clients[0].readDispatch("FOR_A").S)
	assert.Equal(t, uint64(2), clients[1].readDispatch("FOR_B").S)
	assert.Same(t, sessions[1], srv.Session("b"))
}

func TestRecordedFrames(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, _, _ := ready(t, srv)
	c.send(wire.OpHeartbeat, 1)
	c.readOp(wire.OpHeartbeatACK)
	c.sendRaw([]byte("junk"))
	c.expectClose(4002, "decode error")

	got := srv.Received()
	require.Len(t, got, 3)
	assert.Equal(t, wire.OpIdentify, got[0].Frame.Op)
	assert.Equal(t, wire.OpHeartbeat, got[1].Frame.Op)
	assert.Equal(t, []byte("junk"), got[2].Raw)
	require.ErrorIs(t, got[2].Err, wire.ErrBadFrame)
	for i, r := range got {
		assert.Equal(t, 1, r.Conn)
		assert.False(t, r.At.IsZero())
		if i > 0 {
			assert.False(t, r.At.Before(got[i-1].At))
		}
	}
	assert.Len(t, srv.ReceivedOn(1), 3)
	assert.Empty(t, srv.ReceivedOn(2))
}

func TestLargeFrameClosesConnection(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c := dial(t, srv)
	c.readOp(wire.OpHello)
	big := `{"op":1,"d":"` + strings.Repeat("x", MaxMessageBytes) + `"}`
	c.sendRaw([]byte(big))
	c.expectClose(1009, "")
	assert.Empty(t, srv.Received())
}

func TestWaitAndClose(t *testing.T) {
	t.Parallel()
	srv := NewServer(Options{})
	c, _, sess := ready(t, srv)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := srv.WaitSession(testCtx(t)) // the session that is ready
	require.NoError(t, err)
	_, err = srv.WaitSession(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, srv.Wait(ctx, func() bool { return false }), context.Canceled)

	ch := srv.Changed()
	srv.Close()
	<-ch
	srv.Close() // idempotent
	code, _ := c.readEnd()
	assert.Equal(t, -1, code)
	_, err = sess.Emit("X", nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = sess.EmitMessage(wire.EventFriendAdd)
	require.ErrorIs(t, err, ErrClosed)
	_, err = srv.WaitSession(testCtx(t))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, srv.Wait(testCtx(t), func() bool { return false }), ErrClosed)
	assert.Equal(t, 0, srv.LiveConnections())
}

func TestHoldAuthAndRejectEarlyHeartbeat(t *testing.T) {
	t.Parallel()
	t.Run("heartbeat while IDENTIFY is held: 4003", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{RejectEarlyHeartbeat: true})
		release := srv.HoldAuth()
		defer release()
		c := dial(t, srv)
		c.readOp(wire.OpHello)
		c.identify(wire.TokenPrefix+srv.Token(DefaultAppID), 1<<30, [2]int{0, 1})
		c.send(wire.OpHeartbeat, json.RawMessage("null"))
		c.expectClose(int(wire.CloseNotAuthenticated), "not authenticated")
		assert.Empty(t, srv.Sessions(), "no READY for a connection that was closed")
	})
	t.Run("heartbeat before IDENTIFY and after READY: answered", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{RejectEarlyHeartbeat: true})
		release := srv.HoldAuth()
		c := dial(t, srv)
		c.readOp(wire.OpHello)
		c.send(wire.OpHeartbeat, json.RawMessage("null"))
		c.readOp(wire.OpHeartbeatACK)
		c.identify(wire.TokenPrefix+srv.Token(DefaultAppID), 1<<30, [2]int{0, 1})
		require.NoError(t, srv.Wait(testCtx(t), func() bool { return len(srv.Identifies()) == 1 }))
		assert.Empty(t, srv.Sessions(), "READY is held")
		done := make(chan struct{})
		go func() { defer close(done); release() }() // its ping needs this side reading
		c.readDispatch(wire.EventReady)
		<-done
		c.send(wire.OpHeartbeat, 1)
		c.readOp(wire.OpHeartbeatACK)
	})
	t.Run("held RESUME is answered on release", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{RejectEarlyHeartbeat: true})
		c, r, sess := ready(t, srv)
		sess.Drop()
		c.readEnd()
		_, err := sess.Emit("MISSED", nil)
		require.NoError(t, err)
		release := srv.HoldAuth()
		c2 := dial(t, srv)
		c2.readOp(wire.OpHello)
		c2.resume(srv.Token(DefaultAppID), r.SessionID, 1)
		require.NoError(t, srv.Wait(testCtx(t), func() bool { return len(srv.Resumes()) == 1 }))
		done := make(chan struct{})
		go func() { defer close(done); release() }()
		c2.readDispatch("MISSED")
		c2.readDispatch(wire.EventResumed)
		<-done
		assert.Equal(t, 1, sess.Resumes())
	})
	t.Run("without HoldAuth the answer is immediate", func(t *testing.T) {
		t.Parallel()
		srv := NewTestServer(t, Options{RejectEarlyHeartbeat: true})
		c := dial(t, srv)
		c.readOp(wire.OpHello)
		c.identify(wire.TokenPrefix+srv.Token(DefaultAppID), 1<<30, [2]int{0, 1})
		c.send(wire.OpHeartbeat, json.RawMessage("null"))
		c.readDispatch(wire.EventReady)
		c.readOp(wire.OpHeartbeatACK)
	})
}

func TestResumeDropMidReplay(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, r, sess := ready(t, srv)
	sess.Drop()
	c.readEnd()
	for range 4 {
		_, err := sess.Emit("MISSED", nil)
		require.NoError(t, err)
	}
	srv.RejectResumes(1, ResumeDropMidReplay)
	c2 := dial(t, srv)
	c2.readOp(wire.OpHello)
	c2.resume(srv.Token(DefaultAppID), r.SessionID, 1)
	assert.EqualValues(t, 2, c2.readDispatch("MISSED").S)
	assert.EqualValues(t, 3, c2.readDispatch("MISSED").S)
	code, _ := c2.readEnd()
	assert.Equal(t, -1, code, "dropped mid-replay")
	assert.Equal(t, 0, sess.Resumes())

	c3 := dial(t, srv)
	c3.readOp(wire.OpHello)
	c3.resume(srv.Token(DefaultAppID), r.SessionID, 3)
	assert.EqualValues(t, 4, c3.readDispatch("MISSED").S)
	assert.EqualValues(t, 5, c3.readDispatch("MISSED").S)
	c3.readDispatch(wire.EventResumed)
}

func TestEmitRaw(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	c, _, sess := ready(t, srv)
	require.NoError(t, sess.EmitRaw([]byte(`{"op":0,"s":99,"t":"FORGED","d":{}}`)))
	seq, err := sess.Emit("NEXT", nil)
	require.NoError(t, err)
	assert.EqualValues(t, 99, c.readDispatch("FORGED").S)
	assert.EqualValues(t, 2, c.readDispatch("NEXT").S)
	assert.EqualValues(t, 2, seq, "the raw frame took no seq")
	assert.Len(t, sess.Frames(), 2, "and is not in the replay log")
}
