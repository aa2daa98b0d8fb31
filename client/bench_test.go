package client_test

import (
	"bytes"
	"context"
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
	"github.com/qqgate/qqgate/internal/testutil/replay"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

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

// runBare times the bare loop (replay.BareRead) from the dial to
// RESUMED.
func runBare(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) run {
	b.Helper()
	end := measure()
	events := replay.BareRead(b, srv, sess, nil)
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
	srv, sess := replay.Stream(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	r := runClient(b, srv, sess, b.N)
	r.report(b, b.N)
}

// BenchmarkBareReadDecode is the yardstick: the same replay stream read by
// a bare coder/websocket loop (conn.Read, then encoding/json into the
// five-field envelope {op,s,t,id,d}).
func BenchmarkBareReadDecode(b *testing.B) {
	srv, sess := replay.Stream(b, b.N)
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
	srv, sess := replay.Stream(b, b.N)
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
	srv, sess := replay.Stream(b, b.N)
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
