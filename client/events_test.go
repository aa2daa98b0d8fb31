package client_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// GROUP_MESSAGE_CREATE (a group that lets the bot receive every message)
// is a message event: Mux.OnMessage gets it, decoded.
func TestGroupMessageCreateReachesOnMessage(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	var mu sync.Mutex
	var got []wire.Message
	var mux event.Mux
	mux.OnMessage(func(_ context.Context, ev event.Event, m wire.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		return nil
	})
	h := newHarness(t, srv, func(c *client.Config) { c.Handler = &mux }).start()
	sess := h.session()
	_, err := sess.EmitMessage(wire.EventGroupMessageCreate)
	require.NoError(t, err)
	h.eventually(func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	}, "GROUP_MESSAGE_CREATE handed to OnMessage")
	mu.Lock()
	m := got[0]
	mu.Unlock()
	assert.NotEmpty(t, m.GroupOpenID)
	assert.NotEmpty(t, m.Author.MemberOpenID)
	require.Len(t, m.Mentions, 1)
	assert.True(t, m.Mentions[0].IsYou, "the bot can tell it was mentioned")

	ev := event.Event{Type: wire.EventGroupMessageCreate, Data: []byte(`{"id":"m","content":"hi"}`)}
	assert.True(t, ev.IsMessage())
}

// Events that share a body with an older one are accepted by its
// accessor; the delete and audit events have their own.
func TestTypedAccessorsOfSharedBodies(t *testing.T) {
	t.Parallel()
	friend := []byte(`{"openid":"C0000000000000000000000000000001","timestamp":1700000000}`)
	for _, typ := range []string{wire.EventFriendAdd, wire.EventFriendDel, wire.EventC2CMsgReceive, wire.EventC2CMsgReject} {
		v, err := event.Event{Type: typ, Data: friend}.Friend()
		require.NoError(t, err, typ)
		assert.Equal(t, "C0000000000000000000000000000001", v.OpenID, typ)
		assert.EqualValues(t, 1700000000, v.Timestamp, typ)
	}
	group := []byte(`{"group_openid":"G1","op_member_openid":"M1","timestamp":1700000001}`)
	for _, typ := range []string{wire.EventGroupAddRobot, wire.EventGroupDelRobot, wire.EventGroupMsgReceive, wire.EventGroupMsgReject} {
		v, err := event.Event{Type: typ, Data: group}.GroupRobot()
		require.NoError(t, err, typ)
		assert.Equal(t, wire.GroupRobotEvent{GroupOpenID: "G1", OpMemberOpenID: "M1", Timestamp: 1700000001}, v, typ)
	}
	del := []byte(`{"message":{"id":"0812","channel_id":"600001","guild_id":"7001","author":{"id":"144","username":"u","bot":false}},"op_user":{"id":"145"}}`)
	for _, typ := range []string{wire.EventMessageDelete, wire.EventPublicMessageDelete, wire.EventDirectMessageDelete} {
		v, err := event.Event{Type: typ, Data: del}.MessageDelete()
		require.NoError(t, err, typ)
		assert.Equal(t, "0812", v.Message.ID, typ)
		assert.Equal(t, "600001", v.Message.ChannelID, typ)
		assert.Equal(t, "144", v.Message.Author.ID, typ)
		assert.Equal(t, "145", v.OpUser.ID, typ)
	}
	audit := []byte(`{"audit_id":"a1","message_id":"m1","guild_id":"g1","channel_id":"c1","audit_time":"2025-01-02T03:04:05+08:00","create_time":"2025-01-02T03:04:00+08:00","seq_in_channel":"17"}`)
	for _, typ := range []string{wire.EventMessageAuditPass, wire.EventMessageAuditReject} {
		v, err := event.Event{Type: typ, Data: audit}.MessageAudit()
		require.NoError(t, err, typ)
		assert.Equal(t, wire.MessageAudited{
			AuditID: "a1", MessageID: "m1", GuildID: "g1", ChannelID: "c1",
			AuditTime: "2025-01-02T03:04:05+08:00", CreateTime: "2025-01-02T03:04:00+08:00", SeqInChannel: "17",
		}, v, typ)
	}

	// The wrong type is a clear error, not a zero value taken for real.
	other := event.Event{Type: wire.EventC2CMessageCreate, Data: []byte(`{}`)}
	_, err := other.Friend()
	assert.ErrorContains(t, err, "C2C_MESSAGE_CREATE")
	_, err = other.GroupRobot()
	assert.Error(t, err)
	_, err = other.MessageDelete()
	assert.Error(t, err)
	_, err = other.MessageAudit()
	assert.Error(t, err)
	_, err = event.Event{Type: wire.EventMessageDelete, Data: []byte(`[]`)}.MessageDelete()
	assert.Error(t, err, "a body that does not decode")
}

// The fields a chatbot needs from real payloads: mentions (is_you),
// message_scene and msg_elements (quotes), message_reference, voice
// attachments with the platform's speech-to-text, the union open id, and
// the quick-menu feature id of an interaction.
func TestMessageFieldsOfRealPayloads(t *testing.T) {
	t.Parallel()
	group := `{
		"author":{"id":"E4F4AEA33253A2797FB897C50B81D7ED","member_openid":"E4F4AEA33253A2797FB897C50B81D7ED","union_openid":"E4F4AEA33253A2797FB897C50B81D7ED"},
		"content":" look at this",
		"group_id":"C9F778FE6ADF9D1D1DBE395BF744A33A",
		"group_openid":"C9F778FE6ADF9D1D1DBE395BF744A33A",
		"id":"ROBOT1.0_abc",
		"mentions":[{"scope":"single","id":"BOT1","member_openid":"BOT1","nickname":"helper","bot":true,"is_you":true},
		            {"scope":"all"}],
		"message_scene":{"source":"default","ext":["ref_msg_idx=REFIDX_1","msg_idx=REFIDX_2"]},
		"message_type":103,
		"msg_elements":[{"msg_idx":"REFIDX_1","message_type":0,"content":"the quoted text",
			"attachments":[{"content_type":"image/png","url":"https://multimedia.nt.qq.com.cn/x"}]}],
		"attachments":[{"content_type":"voice","filename":"v.amr","url":"https://multimedia.nt.qq.com.cn/v",
			"voice_wav_url":"https://multimedia.nt.qq.com.cn/v.wav","asr_refer_text":"hello there"}],
		"timestamp":"2025-09-10T20:00:00+08:00"
	}`
	m, err := event.Event{Type: wire.EventGroupAtMessageCreate, Data: []byte(group)}.Message()
	require.NoError(t, err)
	assert.Equal(t, "E4F4AEA33253A2797FB897C50B81D7ED", m.Author.MemberOpenID)
	assert.Equal(t, "E4F4AEA33253A2797FB897C50B81D7ED", m.Author.UnionOpenID)
	assert.Equal(t, "C9F778FE6ADF9D1D1DBE395BF744A33A", m.GroupID)
	require.Len(t, m.Mentions, 2)
	assert.Equal(t, wire.Mention{Scope: "single", ID: "BOT1", MemberOpenID: "BOT1", Nickname: "helper", Bot: true, IsYou: true}, m.Mentions[0])
	assert.Equal(t, "all", m.Mentions[1].Scope)
	require.NotNil(t, m.MessageScene)
	assert.Equal(t, "default", m.MessageScene.Source)
	assert.Equal(t, []string{"ref_msg_idx=REFIDX_1", "msg_idx=REFIDX_2"}, m.MessageScene.Ext)
	assert.Equal(t, wire.MessageTypeQuote, m.MessageType)
	require.Len(t, m.MsgElements, 1)
	assert.Equal(t, "the quoted text", m.MsgElements[0].Content)
	assert.Equal(t, "REFIDX_1", m.MsgElements[0].MsgIdx)
	require.Len(t, m.MsgElements[0].Attachments, 1)
	require.Len(t, m.Attachments, 1)
	assert.Equal(t, "https://multimedia.nt.qq.com.cn/v.wav", m.Attachments[0].VoiceWAVURL)
	assert.Equal(t, "hello there", m.Attachments[0].ASRReferText)

	guild := `{"id":"08e1","content":"<@!1> re","channel_id":"1","guild_id":"2","author":{"id":"3","username":"u"},
		"edited_timestamp":"2025-01-02T03:04:05+08:00","mention_everyone":true,
		"mentions":[{"id":"1","username":"bot","bot":true,"avatar":"https://a"}],
		"message_reference":{"message_id":"08e0"}}`
	m, err = event.Event{Type: wire.EventAtMessageCreate, Data: []byte(guild)}.Message()
	require.NoError(t, err)
	assert.Equal(t, "2025-01-02T03:04:05+08:00", m.EditedTimestamp)
	assert.True(t, m.MentionEveryone)
	require.NotNil(t, m.MessageReference)
	assert.Equal(t, "08e0", m.MessageReference.MessageID)
	require.Len(t, m.Mentions, 1)
	assert.True(t, m.Mentions[0].Bot)
	assert.Equal(t, "https://a", m.Mentions[0].Avatar)

	menu := `{"id":"i1","type":12,"chat_type":2,"scene":"c2c","user_openid":"U1","version":1,
		"data":{"type":12,"resolved":{"feature_id":"menu-7"}}}`
	in, err := event.Event{Type: wire.EventInteractionCreate, Data: []byte(menu)}.Interaction()
	require.NoError(t, err)
	assert.Equal(t, "menu-7", in.Data.Resolved.FeatureID)
}
