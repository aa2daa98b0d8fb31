package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/qqgate/qqgate/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait of a test; nothing sleeps.
const testTimeout = 10 * time.Second

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	tb.Cleanup(cancel)
	return ctx
}

// httpClient keeps no idle connections, so no goroutine outlives a test.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testTimeout}

// client is a raw gateway client over coder/websocket.
type client struct {
	tb testing.TB
	ws *websocket.Conn
}

func dial(tb testing.TB, srv *Server) *client {
	tb.Helper()
	ws, _, err := websocket.Dial(testCtx(tb), srv.WebSocketURL(), nil)
	require.NoError(tb, err)
	ws.SetReadLimit(4 * MaxMessageBytes)
	tb.Cleanup(func() { _ = ws.CloseNow() })
	return &client{tb: tb, ws: ws}
}

// read returns the next frame.
func (c *client) read() wire.Frame {
	c.tb.Helper()
	_, data, err := c.ws.Read(testCtx(c.tb))
	require.NoError(c.tb, err)
	f, err := wire.DecodeFrame(data)
	require.NoError(c.tb, err, "frame %s", data)
	return f
}

// readOp returns the next frame and checks its op.
func (c *client) readOp(op wire.Opcode) wire.Frame {
	c.tb.Helper()
	f := c.read()
	require.Equal(c.tb, op, f.Op, "frame %+v", f)
	return f
}

// readDispatch returns the next frame and checks it is a dispatch of type t.
func (c *client) readDispatch(t string) wire.Frame {
	c.tb.Helper()
	f := c.readOp(wire.OpDispatch)
	require.Equal(c.tb, t, f.T)
	return f
}

// readEnd reads until the connection ends, failing on any frame, and
// returns the close status (-1 for a drop) and reason.
func (c *client) readEnd() (int, string) {
	c.tb.Helper()
	_, data, err := c.ws.Read(testCtx(c.tb))
	require.Error(c.tb, err, "unexpected frame %s", data)
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason
	}
	require.NotErrorIs(c.tb, err, context.DeadlineExceeded)
	return -1, ""
}

func (c *client) expectClose(code int, reason string) {
	c.tb.Helper()
	gotCode, gotReason := c.readEnd()
	require.Equal(c.tb, code, gotCode)
	if reason != "" {
		require.Equal(c.tb, reason, gotReason)
	}
}

func (c *client) sendRaw(b []byte) {
	c.tb.Helper()
	require.NoError(c.tb, c.ws.Write(testCtx(c.tb), websocket.MessageText, b))
}

func (c *client) send(op wire.Opcode, d any) {
	c.tb.Helper()
	b, err := wire.EncodeFrame(op, d)
	require.NoError(c.tb, err)
	c.sendRaw(b)
}

func (c *client) identify(token string, intents uint32, shard [2]int) {
	c.tb.Helper()
	c.send(wire.OpIdentify, wire.Identify{Token: token, Intents: intents, Shard: shard})
}

func (c *client) resume(token, sessionID string, seq uint64) {
	c.tb.Helper()
	c.send(wire.OpResume, wire.Resume{Token: token, SessionID: sessionID, Seq: seq})
}

// ready dials, reads HELLO, identifies with the default app and returns the
// client, its READY and the session.
func ready(tb testing.TB, srv *Server) (*client, wire.Ready, *Session) {
	tb.Helper()
	c := dial(tb, srv)
	c.readOp(wire.OpHello)
	c.identify(wire.TokenPrefix+srv.Token(DefaultAppID), 1<<30, [2]int{0, 1})
	f := c.readDispatch(wire.EventReady)
	require.Equal(tb, uint64(1), f.S)
	var r wire.Ready
	require.NoError(tb, json.Unmarshal(f.D, &r))
	sess := srv.SessionByID(r.SessionID)
	require.NotNil(tb, sess)
	return c, r, sess
}

// postToken calls the token endpoint.
func postToken(tb testing.TB, srv *Server, contentType string, body []byte) (int, map[string]any) {
	tb.Helper()
	req, err := http.NewRequestWithContext(testCtx(tb), http.MethodPost, srv.TokenURL(), bytes.NewReader(body))
	require.NoError(tb, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(tb, req)
}

func getGateway(tb testing.TB, srv *Server, path, auth string) (int, map[string]any) {
	tb.Helper()
	req, err := http.NewRequestWithContext(testCtx(tb), http.MethodGet, srv.URL()+path, nil)
	require.NoError(tb, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(tb, req)
}

func do(tb testing.TB, req *http.Request) (int, map[string]any) {
	tb.Helper()
	resp, err := httpClient.Do(req)
	require.NoError(tb, err)
	defer func() { _ = resp.Body.Close() }()
	var m map[string]any
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&m))
	return resp.StatusCode, m
}

func tokenBody(appID, secret string) []byte {
	b, _ := json.Marshal(wire.TokenRequest{AppID: appID, ClientSecret: secret})
	return b
}
