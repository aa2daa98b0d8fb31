package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/wire"
)

// apiReq is one raw request to the send API.
type apiReq struct {
	method, path string
	body         any    // encoded as JSON; nil sends no body
	token        string // "" means a valid token of the default app
	noAuth       bool
	appID        *string // nil means the default app
	contentType  *string // nil means application/json
}

type apiResp struct {
	status int
	body   map[string]any
	trace  string
}

func callAPI(tb testing.TB, srv *Server, r apiReq) apiResp {
	tb.Helper()
	var body *bytes.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		require.NoError(tb, err)
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(testCtx(tb), r.method, srv.URL()+r.path, body)
	require.NoError(tb, err)
	if !r.noAuth {
		tok := r.token
		if tok == "" {
			tok = srv.Token(DefaultAppID)
		}
		req.Header.Set("Authorization", wire.TokenPrefix+tok)
	}
	app := DefaultAppID
	if r.appID != nil {
		app = *r.appID
	}
	if app != "" {
		req.Header.Set("X-Union-Appid", app)
	}
	ct := "application/json"
	if r.contentType != nil {
		ct = *r.contentType
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := httpClient.Do(req)
	require.NoError(tb, err)
	defer func() { _ = resp.Body.Close() }()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return apiResp{status: resp.StatusCode, body: m, trace: resp.Header.Get("X-Tps-trace-ID")}
}

func code(r apiResp) int {
	c, _ := r.body["code"].(float64)
	return int(c)
}

// inbound makes an event and returns its target path and d.id.
func newInbound(tb testing.TB, srv *Server, eventType string) (InboundEvent, string) {
	tb.Helper()
	ev, err := srv.NewInbound(eventType)
	require.NoError(tb, err)
	var d struct {
		ID string `json:"id"`
	}
	require.NoError(tb, json.Unmarshal(ev.Data, &d))
	return ev, d.ID
}

func groupOf(tb testing.TB, ev InboundEvent) string {
	var d struct {
		GroupOpenID string `json:"group_openid"`
	}
	require.NoError(tb, json.Unmarshal(ev.Data, &d))
	return d.GroupOpenID
}

func TestAPITokenCheck(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	ev, id := newInbound(t, srv, "GROUP_AT_MESSAGE_CREATE")
	path := "/v2/groups/" + groupOf(t, ev) + "/messages"
	msg := map[string]any{"msg_type": 0, "content": "hi", "msg_id": id, "msg_seq": 1}

	revoked := srv.Token(DefaultAppID)
	srv.RevokeTokens()
	for name, r := range map[string]apiReq{
		"no header":   {noAuth: true},
		"wrong token": {token: "nope"},
		"revoked":     {token: revoked},
	} {
		r.method, r.path, r.body = http.MethodPost, path, msg
		resp := callAPI(t, srv, r)
		assert.Equal(t, http.StatusUnauthorized, resp.status, name)
		assert.Equal(t, map[string]any{"message": "token not exist or expire", "code": float64(11244),
			"err_code": float64(11244), "trace_id": resp.trace}, resp.body, name)
		assert.Len(t, resp.trace, 32, name)
	}
	// The bare token, or another scheme, is refused too.
	for _, auth := range []string{srv.Token(DefaultAppID), "Bearer " + srv.Token(DefaultAppID)} {
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, srv.URL()+path, bytes.NewReader([]byte(`{}`)))
		require.NoError(t, err)
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Union-Appid", DefaultAppID)
		req.Header.Set("Content-Type", "application/json")
		status, body := do(t, req)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, float64(CodeTokenInvalid), body["code"])
	}
	assert.Empty(t, srv.Delivered(SendTarget{SceneGroup, groupOf(t, ev)}))
	assert.Len(t, srv.Sent(), 5, "refused requests are recorded too")

	ok := callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: msg})
	assert.Equal(t, http.StatusOK, ok.status)
	assert.NotEmpty(t, ok.trace, "success carries a trace id too")
}

func TestAPIHeaderChecks(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{Apps: map[string]string{DefaultAppID: DefaultSecret, "999": "s"}})
	ev, id := newInbound(t, srv, "GROUP_AT_MESSAGE_CREATE")
	path := "/v2/groups/" + groupOf(t, ev) + "/messages"
	msg := map[string]any{"msg_type": 0, "content": "hi", "msg_id": id}
	empty, other, text := "", "999", "text/plain"
	for name, r := range map[string]apiReq{
		"no app id":    {appID: &empty},
		"other app id": {appID: &other},
		"no type":      {contentType: &empty},
		"text type":    {contentType: &text},
	} {
		r.method, r.path, r.body = http.MethodPost, path, msg
		resp := callAPI(t, srv, r)
		assert.Equal(t, http.StatusBadRequest, resp.status, name)
		assert.Equal(t, float64(CodeBadRequest), resp.body["code"], name)
		assert.Equal(t, resp.trace, resp.body["trace_id"], name)
	}
	// Another app's token with its own app id passes the header checks.
	resp := callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: msg, token: srv.Token("999"), appID: &other})
	assert.Equal(t, http.StatusOK, resp.status)
}

func TestAPIDedupAndDefaults(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	ev, id := newInbound(t, srv, "C2C_MESSAGE_CREATE")
	var d wire.Message
	require.NoError(t, json.Unmarshal(ev.Data, &d))
	target := SendTarget{SceneC2C, d.Author.UserOpenID}
	path := "/v2/users/" + target.ID + "/messages"

	first := callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: map[string]any{"msg_type": 0, "content": "a", "msg_id": id}})
	require.Equal(t, http.StatusOK, first.status)
	assert.NotEmpty(t, first.body["id"])
	assert.IsType(t, float64(0), first.body["timestamp"])

	dup := callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: map[string]any{"msg_type": 0, "content": "b", "msg_id": id, "msg_seq": 1}})
	assert.Equal(t, http.StatusBadRequest, dup.status, "msg_seq defaults to 1")
	assert.Equal(t, CodeDuplicateMsgSeq, code(dup))
	assert.Equal(t, float64(CodeDuplicateMsgSeq), dup.body["err_code"])

	second := callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: map[string]any{"msg_type": 0, "content": "c", "msg_id": id, "msg_seq": 2}})
	assert.Equal(t, http.StatusOK, second.status)

	got := srv.Delivered(target)
	require.Len(t, got, 2)
	assert.Equal(t, "a", got[0].Content)
	assert.Equal(t, "c", got[1].Content)
	sent := srv.Sent()
	require.Len(t, sent, 3)
	assert.False(t, sent[0].HasMsgSeq)
	assert.True(t, sent[1].HasMsgSeq)
	assert.False(t, sent[1].Delivered)
	assert.Equal(t, CodeDuplicateMsgSeq, sent[1].Code)
}

func TestAPIPassiveIDs(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	ev, id := newInbound(t, srv, "GROUP_AT_MESSAGE_CREATE")
	group := "/v2/groups/" + groupOf(t, ev) + "/messages"

	active := callAPI(t, srv, apiReq{method: http.MethodPost, path: group, body: map[string]any{"msg_type": 0, "content": "x"}})
	assert.Equal(t, CodeActiveDenied, code(active))
	unknown := callAPI(t, srv, apiReq{method: http.MethodPost, path: group, body: map[string]any{"msg_type": 0, "content": "x", "msg_id": "made-up"}})
	assert.Equal(t, CodeBadMsgID, code(unknown))
	elsewhere := callAPI(t, srv, apiReq{method: http.MethodPost, path: "/v2/groups/GOTHER/messages", body: map[string]any{"msg_type": 0, "content": "x", "msg_id": id}})
	assert.Equal(t, CodeBadMsgID, code(elsewhere), "a msg_id answers its own target only")
	envelope := callAPI(t, srv, apiReq{method: http.MethodPost, path: group, body: map[string]any{"msg_type": 0, "content": "x", "event_id": ev.ID}})
	assert.Equal(t, CodeBadMsgID, code(envelope), "a message is answered by msg_id d.id, not the envelope id")

	srv.AllowActiveSends(true)
	active = callAPI(t, srv, apiReq{method: http.MethodPost, path: group, body: map[string]any{"msg_type": 0, "content": "x"}})
	assert.Equal(t, http.StatusOK, active.status)

	// Events emitted on a session are known too.
	_, _, sess := ready(t, srv)
	seq, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	var m wire.Message
	for _, f := range sess.Frames() {
		if f.S == seq {
			require.NoError(t, json.Unmarshal(f.D, &m))
		}
	}
	resp := callAPI(t, srv, apiReq{method: http.MethodPost, path: "/v2/users/" + m.Author.UserOpenID + "/messages",
		body: map[string]any{"msg_type": 0, "content": "x", "msg_id": m.ID}})
	assert.Equal(t, http.StatusOK, resp.status)
}

func TestAPIReplyRules(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv.SetSendClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	ev, id := newInbound(t, srv, "GROUP_AT_MESSAGE_CREATE")
	path := "/v2/groups/" + groupOf(t, ev) + "/messages"
	send := func(seq int) apiResp {
		return callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: map[string]any{"msg_type": 0, "content": "x", "msg_id": id, "msg_seq": seq}})
	}
	for seq := 1; seq <= 5; seq++ {
		require.Equal(t, http.StatusOK, send(seq).status)
	}
	assert.Equal(t, CodeMsgLimit, code(send(6)))

	ev2, id2 := newInbound(t, srv, "GROUP_AT_MESSAGE_CREATE")
	path2 := "/v2/groups/" + groupOf(t, ev2) + "/messages"
	advance(5*time.Minute + time.Second)
	late := callAPI(t, srv, apiReq{method: http.MethodPost, path: path2, body: map[string]any{"msg_type": 0, "content": "x", "msg_id": id2}})
	assert.Equal(t, CodeMsgExpired, code(late))

	srv.SetReplyLimits(ReplyLimits{Group: ReplyLimit{Window: time.Hour, Replies: -1}})
	ok := callAPI(t, srv, apiReq{method: http.MethodPost, path: path2, body: map[string]any{"msg_type": 0, "content": "x", "msg_id": id2}})
	assert.Equal(t, http.StatusOK, ok.status)
	assert.Equal(t, http.StatusOK, send(6).status, "no count")
	sent := srv.Sent()
	assert.Equal(t, now, sent[len(sent)-1].At, "times are the send clock's")
}

func TestAPIBodyRules(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	ev, id := newInbound(t, srv, "GROUP_AT_MESSAGE_CREATE")
	group := "/v2/groups/" + groupOf(t, ev) + "/messages"
	ch, chID := newInbound(t, srv, "AT_MESSAGE_CREATE")
	var chd wire.Message
	require.NoError(t, json.Unmarshal(ch.Data, &chd))
	channel := "/channels/" + chd.ChannelID + "/messages"
	cases := []struct {
		name string
		path string
		body any
		code int
	}{
		{"no msg_type", group, map[string]any{"content": "x", "msg_id": id}, CodeBadRequest},
		{"empty text", group, map[string]any{"msg_type": 0, "msg_id": id}, CodeEmptyMessage},
		{"embed type", group, map[string]any{"msg_type": 4, "embed": map[string]any{"title": "t"}, "msg_id": id}, CodeBadRequest},
		{"embed field", group, map[string]any{"msg_type": 0, "content": "x", "embed": map[string]any{"title": "t"}, "msg_id": id}, CodeBadRequest},
		{"markdown both", group, map[string]any{"msg_type": 2, "markdown": map[string]any{"content": "a", "custom_template_id": "t"}, "msg_id": id}, CodeMarkdownBoth},
		{"media unknown", group, map[string]any{"msg_type": 7, "media": map[string]any{"file_info": "nope"}, "msg_id": id}, CodeBadRequest},
		{"msg_seq string", group, map[string]any{"msg_type": 0, "content": "x", "msg_id": id, "msg_seq": "1"}, CodeBadRequest},
		{"both ids", group, map[string]any{"msg_type": 0, "content": "x", "msg_id": id, "event_id": "e"}, CodeBadRequest},
		{"empty channel", channel, map[string]any{"msg_id": chID}, CodeEmptyMessage},
	}
	for _, tc := range cases {
		resp := callAPI(t, srv, apiReq{method: http.MethodPost, path: tc.path, body: tc.body})
		assert.Equal(t, tc.code, code(resp), tc.name)
	}
	resp := callAPI(t, srv, apiReq{method: http.MethodPost, path: channel, body: map[string]any{"image": "https://example.com/a.png", "msg_id": chID}})
	require.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, chd.ChannelID, resp.body["channel_id"])
	assert.Equal(t, true, resp.body["author"].(map[string]any)["bot"])
}

func TestAPIFaults(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	srv.AllowActiveSends(true)
	path := "/v2/users/U1/messages"
	body := map[string]any{"msg_type": 0, "content": "x"}
	for _, tc := range []struct {
		fault  SendFault
		status int
		code   int
	}{
		{FaultServerError, 500, 0},
		{FaultRateLimited, 429, 0},
		{FaultTokenExpired, 401, CodeTokenInvalid},
		{FaultPendingAudit, 202, CodeAuditPending},
	} {
		srv.FailNextSends(1, tc.fault)
		resp := callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: body})
		assert.Equal(t, tc.status, resp.status, tc.fault.String())
		assert.Equal(t, tc.code, code(resp), tc.fault.String())
	}
	srv.FailNextSendsWith(1, 400, 304003, "url not allowed")
	resp := callAPI(t, srv, apiReq{method: http.MethodPost, path: path, body: body})
	assert.Equal(t, 304003, code(resp))
	assert.Equal(t, "url not allowed", resp.body["message"])
	assert.Empty(t, srv.Delivered(SendTarget{SceneC2C, "U1"}))

	// A hang ends with the request; a lost answer still delivers.
	for _, f := range []SendFault{FaultHang, FaultLoseAnswer} {
		srv.FailNextSends(1, f)
		before := len(srv.Sent())
		ctx, cancel := context.WithCancel(testCtx(t))
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Authorization", wire.TokenPrefix+srv.Token(DefaultAppID))
		req.Header.Set("X-Union-Appid", DefaultAppID)
		req.Header.Set("Content-Type", "application/json")
		done := make(chan error, 1)
		go func() {
			resp, err := httpClient.Do(req)
			if err == nil {
				_ = resp.Body.Close()
			}
			done <- err
		}()
		sent, err := srv.WaitSent(testCtx(t), before+1)
		require.NoError(t, err)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		last := sent[len(sent)-1]
		assert.Zero(t, last.Status, f.String())
		assert.Equal(t, f, last.Fault)
		assert.Equal(t, f == FaultLoseAnswer, last.Delivered, f.String())
	}
	assert.Len(t, srv.Delivered(SendTarget{SceneC2C, "U1"}), 1)
}

func TestAPIRecallAndUpload(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	srv.AllowActiveSends(true)
	up := callAPI(t, srv, apiReq{method: http.MethodPost, path: "/v2/groups/G1/files",
		body: map[string]any{"file_type": 1, "file_data": "iVBORw==", "srv_send_msg": false}})
	require.Equal(t, http.StatusOK, up.status)
	info, _ := up.body["file_info"].(string)
	require.NotEmpty(t, info)
	assert.Equal(t, float64(3600), up.body["ttl"])
	assert.Equal(t, []byte{0x89, 'P', 'N', 'G'}, srv.Uploads()[0].FileData)

	bad := callAPI(t, srv, apiReq{method: http.MethodPost, path: "/v2/groups/G1/files",
		body: map[string]any{"file_type": 1, "file_data": "***"}})
	assert.Equal(t, CodeBadRequest, code(bad))

	sent := callAPI(t, srv, apiReq{method: http.MethodPost, path: "/v2/groups/G1/messages",
		body: map[string]any{"msg_type": 7, "media": map[string]any{"file_info": info}}})
	require.Equal(t, http.StatusOK, sent.status)
	msgID, _ := sent.body["id"].(string)

	wrong := callAPI(t, srv, apiReq{method: http.MethodDelete, path: "/v2/groups/G2/messages/" + msgID, contentType: new(string)})
	assert.Equal(t, http.StatusNotFound, wrong.status)
	ok := callAPI(t, srv, apiReq{method: http.MethodDelete, path: "/v2/groups/G1/messages/" + msgID, contentType: new(string)})
	assert.Equal(t, http.StatusOK, ok.status)
	again := callAPI(t, srv, apiReq{method: http.MethodDelete, path: "/v2/groups/G1/messages/" + msgID, contentType: new(string)})
	assert.Equal(t, http.StatusNotFound, again.status)
	assert.Empty(t, srv.Delivered(SendTarget{SceneGroup, "G1"}))
	assert.Len(t, srv.Recalls(), 3)
	assert.Equal(t, 1, srv.DeliveredCount(), "recalled messages still count as delivered")

	ack := callAPI(t, srv, apiReq{method: http.MethodPut, path: "/interactions/i1", body: map[string]any{"code": 9}})
	assert.Equal(t, CodeBadRequest, code(ack))
	dms := callAPI(t, srv, apiReq{method: http.MethodPost, path: "/users/@me/dms", body: map[string]any{"recipient_id": "1", "source_guild_id": "2"}})
	require.Equal(t, http.StatusOK, dms.status)
	assert.NotEmpty(t, dms.body["guild_id"])
}

func TestNewInbound(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	for _, typ := range []string{"C2C_MESSAGE_CREATE", "GROUP_AT_MESSAGE_CREATE", "GROUP_MESSAGE_CREATE", "AT_MESSAGE_CREATE",
		"MESSAGE_CREATE", "DIRECT_MESSAGE_CREATE", "INTERACTION_CREATE", "FRIEND_ADD", "C2C_MSG_RECEIVE",
		"GROUP_ADD_ROBOT", "GROUP_MSG_RECEIVE", "GROUP_DEL_ROBOT", "FRIEND_DEL"} {
		ev, err := srv.NewInbound(typ)
		require.NoError(t, err, typ)
		assert.Equal(t, typ, ev.Type)
		assert.Contains(t, ev.ID, typ+":")
		assert.True(t, json.Valid(ev.Data))
	}
	_, err := srv.NewInbound("NOPE")
	require.ErrorIs(t, err, ErrUnknownEvent)
	custom, err := srv.NewInboundWith("INTERACTION_CREATE", "", map[string]any{"id": "i9", "scene": "c2c", "user_openid": "U9"})
	require.NoError(t, err)
	assert.NotEmpty(t, custom.ID)
	resp := callAPI(t, srv, apiReq{method: http.MethodPost, path: "/v2/users/U9/messages",
		body: map[string]any{"msg_type": 0, "content": "x", "event_id": "i9"}})
	assert.Equal(t, http.StatusOK, resp.status)

	srv.Close()
	_, err = srv.NewInbound("FRIEND_ADD")
	require.ErrorIs(t, err, ErrClosed)
}
