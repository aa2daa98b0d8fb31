package openapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
)

func TestHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	_, err := e.api.ReplyText(testCtx(t), in, "hi")
	require.NoError(t, err)
	sent := e.srv.Sent()
	require.Len(t, sent, 1)
	h := sent[0].Header
	assert.Equal(t, gatewaytest.DefaultAppID, h.Get("X-Union-Appid"))
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.Equal(t, "<redacted>", h.Get("Authorization"), "the fake checked it, then hid it")
	assert.Empty(t, h.Get("X-Callback-AppID"), "only for interactions")
}

// The bodies: v2 has msg_type and msg_seq; channel and DM have neither.
func TestBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	kb := &openapi.MessageKeyboard{Content: &openapi.KeyboardContent{Rows: []openapi.KeyboardRow{{Buttons: []openapi.Button{{
		ID: "b1", RenderData: openapi.ButtonRenderData{Label: "OK", VisitedLabel: "OK!"},
		Action: openapi.ButtonAction{Type: openapi.ActionCallback, Permission: openapi.ButtonPermission{Type: 2}, Data: "ok"},
	}}}}}}

	group := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	_, err := e.api.Reply(ctx, group, openapi.Markdown("**bold**").WithKeyboard(kb))
	require.NoError(t, err)
	channel := e.inbound(t, "AT_MESSAGE_CREATE")
	_, err = e.api.Reply(ctx, channel, &openapi.Message{Content: "see", Image: "https://example.com/a.png",
		Embed: &openapi.MessageEmbed{Title: "t", Fields: []openapi.EmbedField{{Name: "f"}}}})
	require.NoError(t, err)

	sent := e.srv.Sent()
	require.Len(t, sent, 2)
	var v2 map[string]any
	require.NoError(t, json.Unmarshal(sent[0].Body, &v2))
	assert.Equal(t, float64(2), v2["msg_type"])
	assert.Equal(t, float64(1), v2["msg_seq"])
	assert.Equal(t, map[string]any{"content": "**bold**"}, v2["markdown"])
	assert.Contains(t, v2, "keyboard")
	assert.NotContains(t, v2, "content", "empty content is left out")

	var ch map[string]any
	require.NoError(t, json.Unmarshal(sent[1].Body, &ch))
	assert.NotContains(t, ch, "msg_type")
	assert.NotContains(t, ch, "msg_seq")
	assert.Equal(t, "https://example.com/a.png", ch["image"])
	assert.Contains(t, ch, "embed")
	assert.NotEmpty(t, ch["msg_id"])

	// The channel answer is the whole message object.
	got := e.srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneChannel, ID: sent[1].Target.ID})
	require.Len(t, got, 1)
	assert.Equal(t, "see", got[0].Content)
}

func TestSendResultFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	res, err := e.api.ReplyText(testCtx(t), in, "hi")
	require.NoError(t, err)
	assert.NotEmpty(t, res.ID)
	assert.False(t, res.Timestamp.IsZero(), "timestamp as a number")
	assert.NotEmpty(t, res.RefIdx)
	assert.NotEmpty(t, res.TraceID)
	assert.JSONEq(t, `{"id":"`+res.ID+`","timestamp":`+jsonNumber(res.Timestamp.Unix())+`,"ext_info":{"ref_idx":"`+res.RefIdx+`"}}`, string(res.Raw))

	ch := e.inbound(t, "MESSAGE_CREATE")
	res, err = e.api.ReplyText(testCtx(t), ch, "hi")
	require.NoError(t, err)
	assert.False(t, res.Timestamp.IsZero(), "timestamp as RFC 3339")
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Messages the platform would refuse are refused locally, without a
// request.
func TestInvalidMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	c2c := e.inbound(t, "C2C_MESSAGE_CREATE")
	channel := e.inbound(t, "AT_MESSAGE_CREATE")
	six := make([]openapi.KeyboardRow, 6)
	cases := []struct {
		name string
		in   openapi.Inbound
		m    *openapi.Message
	}{
		{"embed on c2c", c2c, openapi.Embed(&openapi.MessageEmbed{Title: "x"})},
		{"image on c2c", c2c, &openapi.Message{Content: "x", Image: "https://example.com/a.png"}},
		{"media on channel", channel, openapi.Media("info")},
		{"msg_seq on channel", channel, &openapi.Message{Content: "x", MsgSeq: 3}},
		{"msg_type on channel", channel, &openapi.Message{Content: "x", MsgType: openapi.MsgTypeMarkdown}},
		{"empty c2c", c2c, &openapi.Message{}},
		{"empty channel", channel, &openapi.Message{}},
		{"markdown content and template", c2c, &openapi.Message{Markdown: &openapi.MessageMarkdown{Content: "a", CustomTemplateID: "t"}}},
		{"keyboard id and content", c2c, openapi.Text("x").WithKeyboard(&openapi.MessageKeyboard{ID: "k", Content: &openapi.KeyboardContent{}})},
		{"keyboard of 6 rows", c2c, openapi.Text("x").WithKeyboard(&openapi.MessageKeyboard{Content: &openapi.KeyboardContent{Rows: six}})},
		{"msg_id and event_id", c2c, &openapi.Message{Content: "x", EventID: "e"}},
		{"other msg_id", c2c, &openapi.Message{Content: "x", MsgID: "other"}},
		{"negative msg_seq", c2c, &openapi.Message{Content: "x", MsgSeq: -1}},
		{"msg_seq over int32", c2c, &openapi.Message{Content: "x", MsgSeq: 1 << 31}},
		{"nil", c2c, nil},
	}
	for _, tc := range cases {
		_, err := e.api.Reply(ctx, tc.in, tc.m)
		require.ErrorIs(t, err, openapi.ErrInvalidMessage, tc.name)
		assert.Equal(t, openapi.ClassInvalid, openapi.Classify(err), tc.name)
	}
	assert.Empty(t, e.srv.Sent())

	for _, id := range []string{"", "..", "a/b", "x?y=1", "a b", "%2e"} {
		_, err := e.api.PostC2CMessage(ctx, id, openapi.Text("x"))
		require.ErrorIs(t, err, openapi.ErrInvalidMessage, "id %q", id)
	}
	assert.Empty(t, e.srv.Sent())
}

func TestMediaUploadAndSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	route, _ := openapi.RouteOf(in)

	info, err := e.api.UploadC2CMedia(ctx, route.ID, openapi.MediaUpload{FileType: openapi.FileImage, URL: "https://example.com/cat.png"})
	require.NoError(t, err)
	assert.NotEmpty(t, info.FileInfo)
	assert.NotEmpty(t, info.FileUUID)
	assert.Positive(t, info.TTL)
	assert.Empty(t, info.ID)

	res, err := e.api.Reply(ctx, in, openapi.Media(info.FileInfo))
	require.NoError(t, err)
	got := e.srv.Delivered(target(route))
	require.Len(t, got, 1)
	assert.Equal(t, 7, got[0].MsgType)
	assert.Equal(t, info.FileInfo, got[0].FileInfo)
	assert.Equal(t, res.ID, got[0].ID)
	assert.Equal(t, " ", got[0].Content, "the documented placeholder content")

	// Bytes go as base64 file_data.
	data := []byte{0x89, 'P', 'N', 'G', 0, 1, 2}
	_, err = e.api.UploadC2CMedia(ctx, route.ID, openapi.MediaUpload{FileType: openapi.FileImage, Data: data})
	require.NoError(t, err)
	ups := e.srv.Uploads()
	require.Len(t, ups, 2)
	assert.Equal(t, data, ups[1].FileData)
	assert.False(t, ups[1].SrvSendMsg)

	// A c2c file_info does not serve groups.
	group := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	_, err = e.api.Reply(ctx, group, openapi.Media(info.FileInfo))
	require.Error(t, err)
	ginfo, err := e.api.UploadGroupMedia(ctx, mustRoute(t, group).ID, openapi.MediaUpload{FileType: openapi.FileVideo, URL: "https://example.com/v.mp4"})
	require.NoError(t, err)
	_, err = e.api.Reply(ctx, group, openapi.Media(ginfo.FileInfo))
	require.NoError(t, err)

	// Bad uploads are refused locally.
	for _, up := range []openapi.MediaUpload{
		{FileType: 9, URL: "https://example.com/x"},
		{FileType: openapi.FileImage},
		{FileType: openapi.FileImage, URL: "https://example.com/x", Data: data},
		{FileType: openapi.FileImage, URL: "ftp://example.com/x"},
	} {
		_, err := e.api.UploadC2CMedia(ctx, route.ID, up)
		require.ErrorIs(t, err, openapi.ErrInvalidMessage)
	}
	assert.Len(t, e.srv.Uploads(), 3)

	// srv_send_msg is an active send.
	_, err = e.api.UploadC2CMedia(ctx, route.ID, openapi.MediaUpload{FileType: openapi.FileImage, URL: "https://example.com/x.png", SrvSendMsg: true})
	require.ErrorIs(t, err, openapi.ErrPermission)
	e.srv.AllowActiveSends(true)
	sentInfo, err := e.api.UploadC2CMedia(ctx, route.ID, openapi.MediaUpload{FileType: openapi.FileImage, URL: "https://example.com/x.png", SrvSendMsg: true})
	require.NoError(t, err)
	assert.NotEmpty(t, sentInfo.ID)
}

func mustRoute(t *testing.T, in openapi.Inbound) openapi.Target {
	t.Helper()
	r, err := openapi.RouteOf(in)
	require.NoError(t, err)
	return r
}

func TestRetract(t *testing.T) {
	t.Parallel()
	e, clock := envWithClock(t, nil)
	ctx := testCtx(t)
	for _, typ := range []string{"C2C_MESSAGE_CREATE", "GROUP_AT_MESSAGE_CREATE", "AT_MESSAGE_CREATE", "DIRECT_MESSAGE_CREATE"} {
		in := e.inbound(t, typ)
		route := mustRoute(t, in)
		res, err := e.api.ReplyText(ctx, in, "oops")
		require.NoError(t, err)
		require.Len(t, e.srv.Delivered(target(route)), 1)
		switch route.Kind {
		case openapi.KindC2C:
			err = e.api.RetractC2CMessage(ctx, route.ID, res.ID)
		case openapi.KindGroup:
			err = e.api.RetractGroupMessage(ctx, route.ID, res.ID)
		case openapi.KindChannel:
			err = e.api.RetractChannelMessage(ctx, route.ID, res.ID, true)
		case openapi.KindDM:
			err = e.api.RetractDMMessage(ctx, route.ID, res.ID, false)
		}
		require.NoError(t, err, typ)
		assert.Empty(t, e.srv.Delivered(target(route)), "%s: the user no longer sees it", typ)
	}
	rc := e.srv.Recalls()
	require.Len(t, rc, 4)
	assert.Equal(t, "true", rc[2].HideTip)
	assert.Equal(t, "false", rc[3].HideTip)
	assert.Equal(t, http.StatusNoContent, rc[2].Status)

	// Past 2 minutes a c2c message stays.
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	route := mustRoute(t, in)
	res, err := e.api.ReplyText(ctx, in, "stays")
	require.NoError(t, err)
	clock.Add(3 * time.Minute)
	err = e.api.RetractC2CMessage(ctx, route.ID, res.ID)
	var ae *openapi.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, gatewaytest.CodeRecallExpired, ae.EffectiveCode())
	require.ErrorIs(t, e.api.RetractC2CMessage(ctx, route.ID, ""), openapi.ErrInvalidMessage)
}

func TestAckInteraction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	in := e.inbound(t, "INTERACTION_CREATE")
	route := mustRoute(t, in)
	require.NoError(t, e.api.AckInteraction(ctx, route.EventID, openapi.InteractionOK))
	require.NoError(t, e.api.AckInteraction(ctx, route.EventID, openapi.InteractionAdminOnly))
	acks := e.srv.InteractionACKs()
	require.Len(t, acks, 2)
	assert.Equal(t, route.EventID, acks[0].ID)
	assert.Equal(t, 0, acks[0].Code)
	assert.Equal(t, 5, acks[1].Code)
	assert.Equal(t, gatewaytest.DefaultAppID, acks[0].CallbackAppID)
	require.ErrorIs(t, e.api.AckInteraction(ctx, route.EventID, 6), openapi.ErrInvalidMessage)
}

func TestCreateDMSAndPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	dms, err := e.api.CreateDMS(ctx, "1442800000000000001", "7000000000000000001")
	require.NoError(t, err)
	assert.NotEmpty(t, dms.GuildID)
	assert.NotEmpty(t, dms.ChannelID)
	assert.NotEmpty(t, dms.CreateTime)
	again, err := e.api.CreateDMS(ctx, "1442800000000000001", "7000000000000000001")
	require.NoError(t, err)
	assert.Equal(t, dms.GuildID, again.GuildID, "the same session")

	// An active DM (no msg_id) goes through.
	_, err = e.api.PostDMMessage(ctx, dms.GuildID, openapi.Text("hello"))
	require.NoError(t, err)
	assert.Len(t, e.srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneDM, ID: dms.GuildID}), 1)

	_, err = e.api.CreateDMS(ctx, "", "1")
	require.ErrorIs(t, err, openapi.ErrInvalidMessage)
}

// Do: any request with the client's headers and token, decoded into out.
func TestDo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t)
	var gw struct {
		URL    string `json:"url"`
		Shards int    `json:"shards"`
	}
	require.NoError(t, e.api.Do(ctx, "GET", "/gateway/bot", nil, &gw))
	assert.Equal(t, e.srv.WebSocketURL(), gw.URL)
	assert.Equal(t, 1, gw.Shards)

	in := e.inbound(t, "GROUP_AT_MESSAGE_CREATE")
	route := mustRoute(t, in)
	var out struct {
		ID string `json:"id"`
	}
	body := map[string]any{"msg_type": 0, "content": "raw", "msg_id": route.MsgID, "msg_seq": 1}
	require.NoError(t, e.api.Do(ctx, "POST", "/v2/groups/"+route.ID+"/messages", body, &out))
	assert.NotEmpty(t, out.ID)
	// The same bytes again: the platform's answer, as an error.
	raw, _ := json.Marshal(body)
	err := e.api.Do(ctx, "POST", "/v2/groups/"+route.ID+"/messages", json.RawMessage(raw), nil)
	require.ErrorIs(t, err, openapi.ErrDuplicate)
	assert.Len(t, e.srv.Delivered(target(route)), 1)

	// A token refusal is handled as for the typed methods.
	e.srv.FailNextSends(1, gatewaytest.FaultTokenExpired)
	require.NoError(t, e.api.Do(ctx, "PUT", "/interactions/i1", []byte(`{"code":0}`), nil))

	// Do never sends the token to another host.
	for _, p := range []string{"https://evil.example/x", "//evil.example/x", "gateway", "/a b", ""} {
		require.ErrorIs(t, e.api.Do(ctx, "GET", p, nil, nil), openapi.ErrInvalidMessage, p)
	}
	require.ErrorIs(t, e.api.Do(ctx, "GE T", "/gateway", nil, nil), openapi.ErrInvalidMessage)
	require.Error(t, e.api.Do(ctx, "GET", "/nowhere", nil, nil))
}
