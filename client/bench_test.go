package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"sort"
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
// as fast as the server can write: the same stream for every reader, and
// for every RESUME of it (the server replays its whole log each time).
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

// run is one timed pass over the replayed stream: its wall time and the
// CPU time of the whole process (the fake gateway's share included, the
// same for every reader).
type run struct {
	wall, cpu time.Duration
	mallocs   uint64 // heap allocations in the process, the fake gateway's included
}

// measure starts timing a run; its result ends it.
func measure() func() run {
	start, cpu, mallocs := time.Now(), processCPU(), heapMallocs()
	return func() run {
		return run{wall: time.Since(start), cpu: processCPU() - cpu, mallocs: heapMallocs() - mallocs}
	}
}

func heapMallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// runClient resumes sess from seq 1 with a client.Client and a no-op
// handler, and times Run until the handler sees RESUMED (after the n
// replayed events).
func runClient(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) run {
	b.Helper()
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
	end := measure()
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-done:
	case err := <-errc:
		b.Fatalf("Run ended: %v", err)
	}
	r := end()
	b.StopTimer()
	cancel()
	<-errc
	require.EqualValues(b, n+1, handled.Load(), "every event and RESUMED handled once") // +1: RESUMED
	return r
}

// envelope is the bare loop's frame: the five fields, d kept raw.
type envelope struct {
	Op int             `json:"op"`
	S  uint64          `json:"s"`
	T  string          `json:"t"`
	ID string          `json:"id"`
	D  json.RawMessage `json:"d"`
}

// runBare resumes sess from seq 1 with the bare loop: coder/websocket's
// Read and encoding/json into the five-field envelope, no dispatch, dedupe
// or handler. It times the dial to RESUMED.
func runBare(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) run {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	frame, err := wire.EncodeFrame(wire.OpResume, wire.Resume{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), SessionID: sess.ID(), Seq: 1})
	require.NoError(b, err)
	end := measure()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(b, err)
	defer ws.CloseNow()
	ws.SetReadLimit(client.DefaultMaxMessageBytes)
	require.NoError(b, ws.Write(ctx, websocket.MessageText, frame))
	events := 0
	for {
		_, data, err := ws.Read(ctx)
		require.NoError(b, err)
		var f envelope
		require.NoError(b, json.Unmarshal(data, &f))
		if f.Op != int(wire.OpDispatch) {
			continue
		}
		if f.T == wire.EventResumed {
			break
		}
		events++
	}
	r := end()
	b.StopTimer()
	require.Equal(b, n, events)
	return r
}

// runFloor resumes sess from seq 1 and reads the frames without decoding
// them, into one reused buffer, with a context coder/websocket arms no
// timer for: what the fake gateway and the socket cost by themselves, to
// tell the client path's own allocations from theirs.
func runFloor(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) run {
	b.Helper()
	ctx := context.Background()
	frame, err := wire.EncodeFrame(wire.OpResume, wire.Resume{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), SessionID: sess.ID(), Seq: 1})
	require.NoError(b, err)
	dialCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(dialCtx, srv.WebSocketURL(), nil)
	require.NoError(b, err)
	defer ws.CloseNow()
	ws.SetReadLimit(client.DefaultMaxMessageBytes)
	require.NoError(b, ws.Write(dialCtx, websocket.MessageText, frame))
	resumed := []byte(`"t":"` + wire.EventResumed + `"`)
	var buf bytes.Buffer
	end := measure()
	for frames := 0; ; frames++ {
		_, r, err := ws.Reader(ctx)
		require.NoError(b, err)
		buf.Reset()
		_, err = buf.ReadFrom(r)
		require.NoError(b, err)
		if bytes.Contains(buf.Bytes(), resumed) {
			require.GreaterOrEqual(b, frames, n)
			break
		}
	}
	r := end()
	b.StopTimer()
	return r
}

// BenchmarkClientEvents measures events per second and allocations per
// event from the fake gateway through the client to a no-op handler.
// The allocations include the fake gateway's: compare with
// BenchmarkBareReadDecode, which reads the same stream.
func BenchmarkClientEvents(b *testing.B) {
	srv, sess := replayFixture(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	r := runClient(b, srv, sess, b.N)
	r.report(b, b.N)
}

// BenchmarkBareReadDecode is the yardstick: the same replay stream read by
// a bare coder/websocket loop (conn.Read, then encoding/json into the
// five-field envelope {op,s,t,id,d}).
func BenchmarkBareReadDecode(b *testing.B) {
	srv, sess := replayFixture(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	r := runBare(b, srv, sess, b.N)
	r.report(b, b.N)
}

// report gives events/s and the process's CPU µs per event.
func (r run) report(b *testing.B, n int) {
	b.ReportMetric(float64(n)/r.wall.Seconds(), "events/s")
	if r.cpu > 0 {
		b.ReportMetric(float64(r.cpu.Microseconds())/float64(n), "cpu-µs/event")
	}
}

// BenchmarkGatewayFloor is what the fake gateway and the socket cost by
// themselves (frames read, not decoded): the allocations per event of the
// other benchmarks less this one's are their path's own.
func BenchmarkGatewayFloor(b *testing.B) {
	srv, sess := replayFixture(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	r := runFloor(b, srv, sess, b.N)
	r.report(b, b.N)
}

// BenchmarkClientVsBare runs the bare loop and the client alternately over
// the same replayed stream, a few rounds each, and reports both rates and
// the process's CPU time per event (the median round of each) and the
// ratio of the rates: side by side in one run, so the load of a shared
// machine weighs on both alike. CPU time includes the fake gateway's
// writes, the same for both. The allocations per event are each path's
// own: the process's, less those of a floor run that only reads frames.
func BenchmarkClientVsBare(b *testing.B) {
	const rounds = 5
	srv, sess := replayFixture(b, b.N)
	b.ResetTimer()
	b.StopTimer()
	var bare, lib, bareCPU, libCPU, bareAllocs, libAllocs []float64
	floor := runFloor(b, srv, sess, b.N)
	floorAllocs := float64(floor.mallocs) / float64(b.N)
	for range rounds {
		b.StartTimer()
		r := runBare(b, srv, sess, b.N)
		bare = append(bare, float64(b.N)/r.wall.Seconds())
		bareCPU = append(bareCPU, float64(r.cpu.Microseconds())/float64(b.N))
		bareAllocs = append(bareAllocs, float64(r.mallocs)/float64(b.N)-floorAllocs)
		b.StartTimer()
		r = runClient(b, srv, sess, b.N)
		lib = append(lib, float64(b.N)/r.wall.Seconds())
		libCPU = append(libCPU, float64(r.cpu.Microseconds())/float64(b.N))
		libAllocs = append(libAllocs, float64(r.mallocs)/float64(b.N)-floorAllocs)
	}
	mb, ml := median(bare), median(lib)
	b.ReportMetric(mb, "bare-events/s")
	b.ReportMetric(ml, "client-events/s")
	b.ReportMetric(ml/mb, "client/bare")
	if mc := median(bareCPU); mc > 0 {
		b.ReportMetric(mc, "bare-cpu-µs/event")
		b.ReportMetric(median(libCPU), "client-cpu-µs/event")
	}
	b.ReportMetric(median(bareAllocs), "bare-path-allocs/event")
	b.ReportMetric(median(libAllocs), "client-path-allocs/event")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
