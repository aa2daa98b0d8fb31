// Package replay holds the fixture the benchmarks share: a fake gateway
// session that replays a logged stream, and the bare read-and-decode loop
// qqgate is measured against. It is apart from testutil because it uses
// gatewaytest, whose own tests use testutil.
package replay

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// Stream makes a session on a fresh fake gateway and logs n message
// events on it while no connection carries it, so a RESUME from seq 1
// streams them all (seqs 2 to n+1, then RESUMED) as fast as the server can
// write: the same stream for every reader, and for every RESUME of it (the
// server replays its whole log each time). It is the benchmarks' fixture.
func Stream(tb testing.TB, n int) (*gatewaytest.Server, *gatewaytest.Session) {
	tb.Helper()
	srv := gatewaytest.NewTestServer(tb, gatewaytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(tb, err)
	frame, err := wire.EncodeFrame(wire.OpIdentify, wire.Identify{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), Intents: 1 << 25, Shard: [2]int{0, 1}})
	require.NoError(tb, err)
	require.NoError(tb, ws.Write(ctx, websocket.MessageText, frame))
	sess, err := srv.WaitSession(ctx)
	require.NoError(tb, err)
	sess.Drop()
	ws.CloseNow()
	for i := 0; i < n; i++ {
		_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
		require.NoError(tb, err)
	}
	return srv, sess
}

// bareEnvelope is the bare loop's frame: the five fields, d kept raw.
type bareEnvelope struct {
	Op int             `json:"op"`
	S  uint64          `json:"s"`
	T  string          `json:"t"`
	ID string          `json:"id"`
	D  json.RawMessage `json:"d"`
}

// BareRead is the bare loop the benchmarks compare against: it resumes
// sess from seq 1 and reads the replay with nothing but coder/websocket's
// conn.Read and encoding/json into the five-field envelope (no dispatch,
// dedupe or handler) until RESUMED. first, when set, is called as the
// first event arrives. It returns the number of events read.
func BareRead(tb testing.TB, srv *gatewaytest.Server, sess *gatewaytest.Session, first func()) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(tb, err)
	defer ws.CloseNow()
	ws.SetReadLimit(wire.MaxFrameBytes)
	frame, err := wire.EncodeFrame(wire.OpResume, wire.Resume{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), SessionID: sess.ID(), Seq: 1})
	require.NoError(tb, err)
	require.NoError(tb, ws.Write(ctx, websocket.MessageText, frame))
	events := 0
	for {
		_, data, err := ws.Read(ctx)
		require.NoError(tb, err)
		var env bareEnvelope
		require.NoError(tb, json.Unmarshal(data, &env))
		if env.Op != int(wire.OpDispatch) {
			continue
		}
		if env.T == wire.EventResumed {
			return events
		}
		if events == 0 && first != nil {
			first()
		}
		events++
	}
}
