package openapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
)

func TestRouteOfTable(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 3, 1, 20, 0, 0, 0, time.FixedZone("CST", 8*3600))
	cases := []struct {
		name string
		in   openapi.Inbound
		want openapi.Target
	}{
		{"c2c message", openapi.Inbound{Type: "C2C_MESSAGE_CREATE", ID: "C2C_MESSAGE_CREATE:x",
			Data: json.RawMessage(`{"id":"m1","author":{"id":"U1","user_openid":"U1"},"timestamp":"2026-03-01T20:00:00+08:00"}`)},
			openapi.Target{Kind: openapi.KindC2C, ID: "U1", MsgID: "m1", At: ts}},
		{"group at message", openapi.Inbound{Type: "GROUP_AT_MESSAGE_CREATE",
			Data: json.RawMessage(`{"id":"m2","group_openid":"G1","author":{"member_openid":"M1"}}`)},
			openapi.Target{Kind: openapi.KindGroup, ID: "G1", MsgID: "m2"}},
		{"group message", openapi.Inbound{Type: "GROUP_MESSAGE_CREATE",
			Data: json.RawMessage(`{"id":"m3","group_openid":"G2"}`)},
			openapi.Target{Kind: openapi.KindGroup, ID: "G2", MsgID: "m3"}},
		{"channel at message", openapi.Inbound{Type: "AT_MESSAGE_CREATE",
			Data: json.RawMessage(`{"id":"m4","channel_id":"100","guild_id":"200"}`)},
			openapi.Target{Kind: openapi.KindChannel, ID: "100", MsgID: "m4"}},
		{"channel message", openapi.Inbound{Type: "MESSAGE_CREATE",
			Data: json.RawMessage(`{"id":"m5","channel_id":"101","guild_id":"200"}`)},
			openapi.Target{Kind: openapi.KindChannel, ID: "101", MsgID: "m5"}},
		{"direct message", openapi.Inbound{Type: "DIRECT_MESSAGE_CREATE",
			Data: json.RawMessage(`{"id":"m6","channel_id":"102","guild_id":"300","src_guild_id":"200"}`)},
			openapi.Target{Kind: openapi.KindDM, ID: "300", MsgID: "m6"}},
		{"group interaction", openapi.Inbound{Type: "INTERACTION_CREATE", ID: "INTERACTION_CREATE:e",
			Data: json.RawMessage(`{"id":"i1","scene":"group","chat_type":1,"group_openid":"G3","group_member_openid":"M3"}`)},
			openapi.Target{Kind: openapi.KindGroup, ID: "G3", EventID: "i1"}},
		{"c2c interaction", openapi.Inbound{Type: "INTERACTION_CREATE",
			Data: json.RawMessage(`{"id":"i2","scene":"c2c","chat_type":2,"user_openid":"U2"}`)},
			openapi.Target{Kind: openapi.KindC2C, ID: "U2", EventID: "i2"}},
		{"interaction by chat_type", openapi.Inbound{Type: "INTERACTION_CREATE",
			Data: json.RawMessage(`{"id":"i3","chat_type":2,"user_openid":"U3"}`)},
			openapi.Target{Kind: openapi.KindC2C, ID: "U3", EventID: "i3"}},
		{"friend add", openapi.Inbound{Type: "FRIEND_ADD", ID: "FRIEND_ADD:abc",
			Data: json.RawMessage(`{"openid":"U4","timestamp":1772366400}`)},
			openapi.Target{Kind: openapi.KindC2C, ID: "U4", EventID: "FRIEND_ADD:abc", At: time.Unix(1772366400, 0)}},
		{"c2c msg receive", openapi.Inbound{Type: "C2C_MSG_RECEIVE", ID: "C2C_MSG_RECEIVE:abc",
			Data: json.RawMessage(`{"openid":"U5","timestamp":1772366400}`)},
			openapi.Target{Kind: openapi.KindC2C, ID: "U5", EventID: "C2C_MSG_RECEIVE:abc", At: time.Unix(1772366400, 0)}},
		{"group add robot", openapi.Inbound{Type: "GROUP_ADD_ROBOT", ID: "GROUP_ADD_ROBOT:abc",
			Data: json.RawMessage(`{"group_openid":"G4","op_member_openid":"M4","timestamp":"1772366400"}`)},
			openapi.Target{Kind: openapi.KindGroup, ID: "G4", EventID: "GROUP_ADD_ROBOT:abc", At: time.Unix(1772366400, 0)}},
		{"group msg receive", openapi.Inbound{Type: "GROUP_MSG_RECEIVE", ID: "GROUP_MSG_RECEIVE:abc",
			Data: json.RawMessage(`{"group_openid":"G5","op_member_openid":"M5","timestamp":1772366400}`)},
			openapi.Target{Kind: openapi.KindGroup, ID: "G5", EventID: "GROUP_MSG_RECEIVE:abc", At: time.Unix(1772366400, 0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openapi.RouteOf(tc.in)
			require.NoError(t, err)
			assert.True(t, tc.want.At.Equal(got.At), "At: want %v, got %v", tc.want.At, got.At)
			got.At, tc.want.At = time.Time{}, time.Time{}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRouteOfNoRoute(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   openapi.Inbound
	}{
		{"unknown type", openapi.Inbound{Type: "GROUP_DEL_ROBOT", ID: "x", Data: json.RawMessage(`{"group_openid":"G"}`)}},
		{"friend del", openapi.Inbound{Type: "FRIEND_DEL", ID: "x", Data: json.RawMessage(`{"openid":"U"}`)}},
		{"ready", openapi.Inbound{Type: "READY", Data: json.RawMessage(`{"session_id":"s"}`)}},
		{"guild interaction", openapi.Inbound{Type: "INTERACTION_CREATE",
			Data: json.RawMessage(`{"id":"i","scene":"guild","chat_type":0,"channel_id":"1"}`)}},
		{"no author openid", openapi.Inbound{Type: "C2C_MESSAGE_CREATE", Data: json.RawMessage(`{"id":"m","author":{}}`)}},
		{"no message id", openapi.Inbound{Type: "GROUP_AT_MESSAGE_CREATE", Data: json.RawMessage(`{"group_openid":"G"}`)}},
		{"no envelope id", openapi.Inbound{Type: "FRIEND_ADD", Data: json.RawMessage(`{"openid":"U"}`)}},
		{"no data", openapi.Inbound{Type: "C2C_MESSAGE_CREATE"}},
		{"data not an object", openapi.Inbound{Type: "C2C_MESSAGE_CREATE", Data: json.RawMessage(`[1,2]`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openapi.RouteOf(tc.in)
			require.ErrorIs(t, err, openapi.ErrNoRoute)
		})
	}
}

// Every row of the routing table, sent through the fake: the reply lands on
// the right target with the right passive id, and the user sees it.
func TestReplyRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	interactionC2C := map[string]any{"id": "interaction.c2c.1", "type": 11, "scene": "c2c", "chat_type": 2,
		"user_openid": "C0000000000000000000000000000AB", "timestamp": time.Now().Format(time.RFC3339)}
	cases := []struct {
		name     string
		in       openapi.Inbound
		kind     openapi.Kind
		eventID  bool // passive by event_id, not msg_id
		envelope bool // event_id is the envelope id
	}{
		{"C2C_MESSAGE_CREATE", e.inbound(t, "C2C_MESSAGE_CREATE"), openapi.KindC2C, false, false},
		{"GROUP_AT_MESSAGE_CREATE", e.inbound(t, "GROUP_AT_MESSAGE_CREATE"), openapi.KindGroup, false, false},
		{"GROUP_MESSAGE_CREATE", e.inbound(t, "GROUP_MESSAGE_CREATE"), openapi.KindGroup, false, false},
		{"AT_MESSAGE_CREATE", e.inbound(t, "AT_MESSAGE_CREATE"), openapi.KindChannel, false, false},
		{"MESSAGE_CREATE", e.inbound(t, "MESSAGE_CREATE"), openapi.KindChannel, false, false},
		{"DIRECT_MESSAGE_CREATE", e.inbound(t, "DIRECT_MESSAGE_CREATE"), openapi.KindDM, false, false},
		{"INTERACTION_CREATE group", e.inbound(t, "INTERACTION_CREATE"), openapi.KindGroup, true, false},
		{"INTERACTION_CREATE c2c", e.inboundWith(t, "INTERACTION_CREATE", "", interactionC2C), openapi.KindC2C, true, false},
		{"FRIEND_ADD", e.inbound(t, "FRIEND_ADD"), openapi.KindC2C, true, true},
		{"C2C_MSG_RECEIVE", e.inbound(t, "C2C_MSG_RECEIVE"), openapi.KindC2C, true, true},
		{"GROUP_ADD_ROBOT", e.inbound(t, "GROUP_ADD_ROBOT"), openapi.KindGroup, true, true},
		{"GROUP_MSG_RECEIVE", e.inbound(t, "GROUP_MSG_RECEIVE"), openapi.KindGroup, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			route, err := openapi.RouteOf(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.kind, route.Kind)
			var d struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(tc.in.Data, &d))

			res, err := e.api.ReplyText(ctx, tc.in, "answer to "+tc.name)
			require.NoError(t, err)
			require.NotEmpty(t, res.ID)
			assert.Equal(t, 1, res.Attempts)

			got := e.srv.Delivered(target(route))
			require.Len(t, got, 1)
			assert.Equal(t, "answer to "+tc.name, got[0].Content)
			assert.Equal(t, res.ID, got[0].ID)
			switch {
			case tc.envelope:
				assert.Equal(t, tc.in.ID, got[0].EventID)
				assert.Empty(t, got[0].MsgID)
			case tc.eventID:
				assert.Equal(t, d.ID, got[0].EventID)
				assert.Empty(t, got[0].MsgID)
			default:
				assert.Equal(t, d.ID, got[0].MsgID)
				assert.Empty(t, got[0].EventID)
			}
			if tc.kind == openapi.KindC2C || tc.kind == openapi.KindGroup {
				assert.Equal(t, 1, got[0].MsgSeq)
				assert.Equal(t, 1, res.MsgSeq)
			} else {
				assert.Zero(t, res.MsgSeq)
			}
		})
	}
}

func TestReplyNoRouteSendsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "GROUP_DEL_ROBOT")
	_, err := e.api.ReplyText(testCtx(t), in, "bye")
	require.ErrorIs(t, err, openapi.ErrNoRoute)
	assert.Equal(t, openapi.ClassInvalid, openapi.Classify(err))
	assert.Empty(t, e.srv.Sent())
	assert.Equal(t, uint64(1), e.api.Stats().Failures[openapi.ClassInvalid])
}

// A reply to an event the platform never sent is refused by the fake
// (304026), like the platform does: the passive id must be real.
func TestReplyToUnknownIDRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, err := e.api.PostGroupMessage(testCtx(t), "G1", &openapi.Message{Content: "hi", MsgID: "made-up"})
	require.ErrorIs(t, err, openapi.ErrReplyWindow)
	var ae *openapi.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, gatewaytest.CodeBadMsgID, ae.EffectiveCode())
}
