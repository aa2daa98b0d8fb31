package client_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// replayFixture makes a session on srv and logs n message events on it
// while no connection carries it, so a RESUME from seq 1 streams them all
// as fast as the server can write: the same stream for every reader.
func replayFixture(b *testing.B, n int) (*gatewaytest.Server, *gatewaytest.Session) {
	b.Helper()
	srv := gatewaytest.NewTestServer(b, gatewaytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(b, err)
	frame, err := wire.EncodeFrame(wire.OpIdentify, wire.Identify{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), Intents: 1 << 25, Shard: [2]int{0, 1}})
	require.NoError(b, err)
	require.NoError(b, ws.Write(ctx, websocket.MessageText, frame))
	sess, err := srv.WaitSession(ctx)
	require.NoError(b, err)
	sess.Drop()
	ws.CloseNow()
	for i := 0; i < n; i++ {
		_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
		require.NoError(b, err)
	}
	return srv, sess
}

// BenchmarkClientEvents measures events per second and allocations per
// event from the fake gateway through the client to a no-op handler.
func BenchmarkClientEvents(b *testing.B) {
	srv, sess := replayFixture(b, b.N)
	store := sessionstore.NewMemoryStore()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(b, store.SaveNow(ctx, sessionstore.Record{AccountID: gatewaytest.DefaultAppID, AppID: gatewaytest.DefaultAppID,
		SessionID: sess.ID(), LastSeq: 1, HasSeq: true}))
	var handled atomic.Uint64
	done := make(chan struct{})
	c, err := client.New(client.Config{
		AppID: gatewaytest.DefaultAppID, ClientSecret: gatewaytest.DefaultSecret,
		APIBase: srv.URL(), TokenURL: srv.TokenURL(), Store: store,
		Handler: event.HandlerFunc(func(_ context.Context, ev event.Event) error {
			handled.Add(1)
			if ev.Type == wire.EventResumed { // after the last replayed event
				close(done)
			}
			return nil
		}),
	})
	require.NoError(b, err)
	errc := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-done:
	case err := <-errc:
		b.Fatalf("Run ended: %v", err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	cancel()
	<-errc
	require.EqualValues(b, b.N+1, handled.Load()-0, "every event and RESUMED handled once") // +1: RESUMED
}

// BenchmarkBareReadDecode is the limit: the same replay stream read and
// decoded by a bare loop with no dispatch, dedupe or handler.
func BenchmarkBareReadDecode(b *testing.B) {
	srv, sess := replayFixture(b, b.N)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(b, err)
	defer ws.CloseNow()
	ws.SetReadLimit(client.DefaultMaxMessageBytes)
	frame, err := wire.EncodeFrame(wire.OpResume, wire.Resume{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), SessionID: sess.ID(), Seq: 1})
	require.NoError(b, err)
	require.NoError(b, ws.Write(ctx, websocket.MessageText, frame))
	var buf bytes.Buffer
	events := 0
	for {
		_, r, err := ws.Reader(ctx)
		require.NoError(b, err)
		buf.Reset()
		_, err = buf.ReadFrom(r)
		require.NoError(b, err)
		f, err := wire.DecodeFrame(buf.Bytes())
		require.NoError(b, err)
		if f.Op != wire.OpDispatch {
			continue
		}
		if f.T == wire.EventResumed {
			break
		}
		events++
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	require.Equal(b, b.N, events)
}
