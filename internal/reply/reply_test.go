package reply_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/internal/reply"
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rig is a Sender on the fake platform.
type rig struct {
	srv    *gatewaytest.Server
	s      *reply.Sender
	counts *ops.SendCounter
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	api, err := openapi.New(openapi.Config{
		AppID:      gatewaytest.DefaultAppID,
		Tokens:     client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.TokenURL(), hc),
		BaseURL:    srv.URL(),
		HTTPClient: hc,
		Backoff:    func() backoff.BackOff { return &backoff.ZeroBackOff{} },
		MaxRetries: -1,
	})
	require.NoError(t, err)
	counts := &ops.SendCounter{}
	return &rig{srv: srv, s: reply.NewSender(api, "bot", counts, zerolog.Nop()), counts: counts}
}

// event makes an inbound event in the fake, as the client hands it over.
func (g *rig) event(t *testing.T, typ string) (event.Event, gatewaytest.SendTarget) {
	t.Helper()
	in, err := g.srv.NewInbound(typ)
	require.NoError(t, err)
	ev := event.Event{AccountID: "bot", Type: in.Type, ID: in.ID, Data: in.Data, Seq: 7}
	route, err := openapi.RouteOf(openapi.Inbound{Type: in.Type, ID: in.ID, Data: in.Data})
	require.NoError(t, err)
	return ev, gatewaytest.SendTarget{Scene: gatewaytest.Scene(route.Kind), ID: route.ID}
}

func contents(ds []gatewaytest.DeliveredMessage) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Content)
	}
	return out
}

func seqs(ds []gatewaytest.SentMessage) []int {
	var out []int
	for _, d := range ds {
		out = append(out, d.MsgSeq)
	}
	return out
}

func TestParseText(t *testing.T) {
	outs, err := reply.Text([]byte("  hello\nworld \n"))
	require.NoError(t, err)
	require.Len(t, outs, 1)
	assert.Equal(t, "hello\nworld", outs[0].Msg.Content)
	outs, err = reply.Text([]byte(" \n\t"))
	require.NoError(t, err)
	assert.Empty(t, outs, "an empty output is no reply")
	_, err = reply.Text([]byte("a\xffb"))
	assert.ErrorIs(t, err, reply.ErrBadOutput)
}

func TestParseJSONLines(t *testing.T) {
	outs, errs := reply.JSONLines([]byte(`{"content":"one"}

not json
{"msg_type":2,"markdown":{"content":"**two**"}}
{"content":"x","msg_seq":3}
{"contnet":"typo"}
{"media":{"url":"https://example.com/a.png"}}
{"media":{"url":"https://example.com/a.png","file_type":1},"content":" "}
[{"content":"array"}]
{}
`))
	require.Len(t, outs, 3)
	assert.Equal(t, "one", outs[0].Msg.Content)
	assert.Equal(t, openapi.MsgTypeMarkdown, outs[1].Msg.MsgType)
	assert.Equal(t, "**two**", outs[1].Msg.Markdown.Content)
	require.NotNil(t, outs[2].Upload)
	assert.Equal(t, openapi.FileImage, outs[2].Upload.FileType)
	assert.Equal(t, "https://example.com/a.png", outs[2].Upload.URL)

	require.Len(t, errs, 6)
	for _, err := range errs {
		assert.ErrorIs(t, err, reply.ErrBadOutput)
	}
	assert.Contains(t, errs[0].Error(), "line 3: ")
	assert.Contains(t, errs[1].Error(), "line 5: ")
	assert.Contains(t, errs[1].Error(), "msg_seq is set by qqgate")
	assert.Contains(t, errs[2].Error(), `unknown field "contnet"`)
	assert.Contains(t, errs[3].Error(), "file_type")
	assert.Contains(t, errs[4].Error(), "not a JSON object")
	assert.Contains(t, errs[5].Error(), "nothing to show")
}

func TestParseHTTP(t *testing.T) {
	outs, errs := reply.HTTP("application/json; charset=utf-8", []byte(`{"content":"one"}`))
	require.Empty(t, errs)
	require.Len(t, outs, 1)
	assert.Equal(t, "one", outs[0].Msg.Content)

	outs, errs = reply.HTTP("application/json", []byte(` [{"content":"a"}, 5, {"content":"b"}]`))
	require.Len(t, outs, 2)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "item 1")

	outs, errs = reply.HTTP("text/plain; charset=utf-8", []byte("hi there\n"))
	require.Empty(t, errs)
	require.Len(t, outs, 1)
	assert.Equal(t, "hi there", outs[0].Msg.Content)

	outs, errs = reply.HTTP("application/json", nil)
	assert.Empty(t, outs)
	assert.Empty(t, errs, "an empty body is no reply")

	outs, errs = reply.HTTP("text/html", []byte("<p>hi</p>"))
	assert.Empty(t, outs)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], reply.ErrBadOutput)
}

// Two replies to a C2C message get msg_seq 1 and 2; replying again for
// the same event (a handler run again) re-sends 1 and 2, the platform
// drops them, and the user sees each once.
func TestRepliesNumberedAndRerunDeduplicated(t *testing.T) {
	g := newRig(t)
	ev, target := g.event(t, wire.EventC2CMessageCreate)
	outs, errs := reply.JSONLines([]byte("{\"content\":\"one\"}\n{\"content\":\"two\"}\n"))
	require.Empty(t, errs)

	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil))
	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil), "the re-run")

	assert.Equal(t, []string{"one", "two"}, contents(g.srv.Delivered(target)), "what the user saw")
	sent := g.srv.Sent()
	assert.Equal(t, []int{1, 2, 1, 2}, seqs(sent))
	assert.Equal(t, openapi.CodeDuplicateSeq, sent[2].Code)
	st := g.counts.Snapshot()
	assert.Equal(t, uint64(2), st.ByOutcome[ops.SendKey{Endpoint: "c2c", Outcome: ops.OutcomeOK}])
	assert.Equal(t, uint64(2), st.ByOutcome[ops.SendKey{Endpoint: "c2c", Outcome: ops.OutcomeDuplicate}])
	assert.Equal(t, uint64(4), st.Latency.Count)
	assert.Empty(t, st.GivenUp)
}

// Each row of the reply table reaches its target.
func TestRepliesWhereTheEventCameFrom(t *testing.T) {
	g := newRig(t)
	for _, typ := range []string{
		wire.EventC2CMessageCreate, wire.EventGroupAtMessageCreate, wire.EventGroupMessageCreate,
		wire.EventAtMessageCreate, wire.EventMessageCreate, wire.EventDirectMessageCreate,
		wire.EventInteractionCreate, wire.EventFriendAdd, wire.EventC2CMsgReceive,
		wire.EventGroupAddRobot, wire.EventGroupMsgReceive,
	} {
		ev, target := g.event(t, typ)
		outs, err := reply.Text([]byte("re " + typ))
		require.NoError(t, err)
		require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil), typ)
		assert.Equal(t, []string{"re " + typ}, contents(g.srv.Delivered(target)), typ)
	}
}

// READY has no reply route: nothing is sent, the replies count as given
// up (no_route). Bad output lines count as bad_output.
func TestRepliesNoRouteAndBadOutput(t *testing.T) {
	g := newRig(t)
	ev := event.Event{AccountID: "bot", Type: "READY", Seq: 1, Data: []byte(`{"session_id":"s"}`)}
	outs, bad := reply.JSONLines([]byte("{\"content\":\"a\"}\nnope\n{\"content\":\"b\"}\n"))
	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, bad))
	assert.Empty(t, g.srv.Sent())
	st := g.counts.Snapshot()
	assert.Equal(t, map[string]uint64{reply.ClassNoRoute: 2, reply.ClassBadOutput: 1}, st.GivenUp)
}

// A reply refused for good (content) is given up and counted; the next
// one still goes out.
func TestRepliesPermanentFailureGivenUp(t *testing.T) {
	g := newRig(t)
	ev, target := g.event(t, wire.EventGroupAtMessageCreate)
	g.srv.FailNextSendsWith(1, http.StatusBadRequest, 304025, "content blocked")
	outs, _ := reply.JSONLines([]byte("{\"content\":\"bad\"}\n{\"content\":\"good\"}\n"))
	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil))
	assert.Equal(t, []string{"good"}, contents(g.srv.Delivered(target)))
	st := g.counts.Snapshot()
	assert.Equal(t, map[string]uint64{string(openapi.ClassContent): 1}, st.GivenUp)
	assert.Equal(t, uint64(1), st.ByOutcome[ops.SendKey{Endpoint: "group", Outcome: string(openapi.ClassContent)}])
}

// A transient failure of a c2c reply fails the attempt (an *Error) so the
// handler runs again; the re-run re-sends what was delivered with the
// same msg_seq and the user sees each reply once.
func TestRepliesTransientFailsAttemptThenRerun(t *testing.T) {
	g := newRig(t)
	ev, target := g.event(t, wire.EventC2CMessageCreate)
	outs, _ := reply.JSONLines([]byte("{\"content\":\"one\"}\n{\"content\":\"two\"}\n"))
	g.srv.FailNextSends(1, gatewaytest.FaultServerError)
	err := g.s.Replies(testCtx(t), ev, outs, nil)
	var re *reply.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, openapi.ClassTransient, re.Class)
	assert.ErrorIs(t, err, openapi.ErrTransient)
	assert.Empty(t, g.srv.Delivered(target))

	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil), "the handler's retry")
	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil), "a redelivery after a crash")
	assert.Equal(t, []string{"one", "two"}, contents(g.srv.Delivered(target)))
	assert.Equal(t, []int{1, 1, 2, 1, 2}, seqs(g.srv.Sent()))
}

// A channel reply that failed ambiguously is given up, never left to a
// re-run that could show it twice.
func TestRepliesChannelTransientGivenUp(t *testing.T) {
	g := newRig(t)
	ev, target := g.event(t, wire.EventAtMessageCreate)
	g.srv.FailNextSends(1, gatewaytest.FaultServerError)
	outs, _ := reply.Text([]byte("hi"))
	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil))
	assert.Empty(t, g.srv.Delivered(target))
	assert.Equal(t, map[string]uint64{string(openapi.ClassTransient): 1}, g.counts.Snapshot().GivenUp)
}

// Media by URL is uploaded for the event's target, then sent with the
// file_info the upload returned.
func TestRepliesMediaUpload(t *testing.T) {
	g := newRig(t)
	ev, target := g.event(t, wire.EventGroupAtMessageCreate)
	outs, errs := reply.JSONLines([]byte(`{"media":{"url":"https://example.com/cat.png","file_type":1},"content":" "}`))
	require.Empty(t, errs)
	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil))
	ups := g.srv.Uploads()
	require.Len(t, ups, 1)
	assert.Equal(t, "https://example.com/cat.png", ups[0].URL)
	got := g.srv.Delivered(target)
	require.Len(t, got, 1)
	assert.Equal(t, ups[0].FileInfo, got[0].FileInfo)
	assert.Equal(t, int(openapi.MsgTypeMedia), got[0].MsgType)
	st := g.counts.Snapshot()
	assert.Equal(t, uint64(1), st.ByOutcome[ops.SendKey{Endpoint: "group_files", Outcome: ops.OutcomeOK}])

	// A channel message cannot take media by URL: given up, invalid.
	ev, _ = g.event(t, wire.EventAtMessageCreate)
	require.NoError(t, g.s.Replies(testCtx(t), ev, outs, nil))
	assert.Equal(t, uint64(1), g.counts.Snapshot().GivenUp[string(openapi.ClassInvalid)])
}

// Reply turns a handler's output into replies by its mode.
func TestReplyFromHandlerOutput(t *testing.T) {
	g := newRig(t)
	ev, target := g.event(t, wire.EventC2CMessageCreate)
	require.NoError(t, g.s.Reply(testCtx(t), ev, handler.Output{Mode: handler.ReplyText, From: handler.TypeExec, Body: []byte("echo: hi\n")}))
	require.NoError(t, g.s.Reply(testCtx(t), ev, handler.Output{Mode: handler.ReplyJSON, From: handler.TypeExec, Body: []byte(`{"content":"json"}`)}))
	require.NoError(t, g.s.Reply(testCtx(t), ev, handler.Output{Mode: handler.ReplyText, From: handler.TypeHTTP,
		ContentType: "application/json", Body: []byte(`[{"content":"http"}]`)}))
	require.NoError(t, g.s.Reply(testCtx(t), ev, handler.Output{Mode: handler.ReplyJSON, From: handler.TypeExec,
		Body: []byte(`{"content":"cut"}`), Truncated: true}))
	// Each call is its own scope, as each is its own attempt: here three
	// different outputs for one message, so the second and third re-use
	// msg_seq 1 and count as already delivered.
	assert.Equal(t, []string{"echo: hi"}, contents(g.srv.Delivered(target)))
	assert.Equal(t, uint64(1), g.counts.Snapshot().GivenUp[reply.ClassBadOutput], "the truncated output")
}

// A send whose context ends returns the context's error, not an *Error.
func TestRepliesCanceled(t *testing.T) {
	g := newRig(t)
	ev, _ := g.event(t, wire.EventC2CMessageCreate)
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	outs, _ := reply.Text([]byte("hi"))
	err := g.s.Replies(ctx, ev, outs, nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	var re *reply.Error
	assert.False(t, errors.As(err, &re))
}
