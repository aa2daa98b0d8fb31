package client_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// idleConns is the connection count of the idle-memory benchmarks.
const idleConns = 500

// idleMemory is what the process holds after two collections.
type idleMemory struct {
	stack, heap uint64
	goroutines  int
}

func readIdleMemory() idleMemory {
	for range 6 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return idleMemory{stack: m.StackInuse, heap: m.HeapAlloc, goroutines: runtime.NumGoroutine()}
}

// report gives what each of n connections added between before and
// after: goroutines, KiB of goroutine stacks, KiB of live heap.
func (after idleMemory) report(b *testing.B, before idleMemory, n int) {
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/conn")
	b.ReportMetric(float64(int64(after.stack)-int64(before.stack))/float64(n)/1024, "KiB-stack/conn")
	b.ReportMetric(float64(int64(after.heap)-int64(before.heap))/float64(n)/1024, "KiB-heap/conn")
}

// idleServer is a fake gateway admitting n apps, each of which may
// IDENTIFY at once.
func idleServer(b *testing.B, n int) (*gatewaytest.Server, []string) {
	apps := make(map[string]string, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(5000 + i)
		apps[ids[i]] = "s"
	}
	srv := gatewaytest.NewTestServer(b, gatewaytest.Options{Apps: apps,
		SessionStartLimit: wire.SessionStartLimit{Total: 1 << 20, Remaining: 1 << 20, ResetAfter: 86_400_000, MaxConcurrency: n}})
	return srv, ids
}

// BenchmarkIdleClients connects 500 clients (each its own app) to one
// fake gateway in this process, waits until all are connected, and
// reports what each connection holds once idle, after two collections:
// goroutines, stack and live heap, the fake gateway's side of the
// connection included. BenchmarkIdleBareConns is the same for a bare
// coder/websocket connection with one goroutine blocked reading it: the
// difference is what the client adds.
func BenchmarkIdleClients(b *testing.B) {
	for range b.N {
		srv, ids := idleServer(b, idleConns)
		before := readIdleMemory()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, len(ids))
		connected := make(chan struct{}, len(ids))
		for _, id := range ids {
			var once sync.Once
			c, err := client.New(client.Config{AppID: id, ClientSecret: "s", APIBase: srv.URL(), TokenURL: srv.TokenURL(),
				OnStateChange: func(s client.Status) {
					if s.State == client.StateConnected {
						once.Do(func() { connected <- struct{}{} })
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = c.Run(ctx); done <- struct{}{} }()
		}
		for range ids {
			<-connected
		}
		readIdleMemory().report(b, before, len(ids))
		cancel()
		for range ids {
			<-done
		}
	}
}

// BenchmarkIdleBareConns: see BenchmarkIdleClients. Each bare connection
// does what the gateway needs for a session (HELLO, IDENTIFY, READY), so
// the fake gateway's side is the same as for a client.
func BenchmarkIdleBareConns(b *testing.B) {
	for range b.N {
		srv, ids := idleServer(b, idleConns)
		before := readIdleMemory()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, len(ids))
		for _, id := range ids {
			ws := bareSession(ctx, b, srv, id)
			go func() {
				defer func() { done <- struct{}{} }()
				defer ws.CloseNow()
				for {
					if _, _, err := ws.Read(ctx); err != nil {
						return
					}
				}
			}()
		}
		readIdleMemory().report(b, before, len(ids))
		cancel()
		for range ids {
			<-done
		}
	}
}

// bareSession dials the gateway with coder/websocket alone and
// identifies app id: HELLO, IDENTIFY, READY.
func bareSession(ctx context.Context, b *testing.B, srv *gatewaytest.Server, id string) *websocket.Conn {
	tokens := client.NewAppTokenSource(id, "s", srv.TokenURL(), nil)
	token, err := tokens.Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil { // HELLO
		b.Fatal(err)
	}
	frame, err := wire.EncodeFrame(wire.OpIdentify, wire.Identify{Token: wire.TokenPrefix + token, Intents: 1 << 30, Shard: [2]int{0, 1}})
	if err != nil {
		b.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
		b.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil { // READY
		b.Fatal(err)
	}
	return ws
}
