package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
)

// waitFor is how long a test waits for an asynchronous condition before
// failing; conditions are checked on events or every millisecond.
const waitFor = 15 * time.Second

// recorder is a Handler that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
	hook   func(ctx context.Context, ev event.Event) error
}

func (r *recorder) HandleEvent(ctx context.Context, ev event.Event) error {
	var err error
	if r.hook != nil {
		err = r.hook(ctx, ev)
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return err
}

func (r *recorder) all() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

func (r *recorder) seqs() []uint64 {
	var out []uint64
	for _, ev := range r.all() {
		out = append(out, ev.Seq)
	}
	return out
}

func (r *recorder) types() []string {
	var out []string
	for _, ev := range r.all() {
		out = append(out, ev.Type)
	}
	return out
}

func (r *recorder) has(typ string) bool {
	for _, ev := range r.all() {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

func (r *recorder) count(typ string) int {
	n := 0
	for _, ev := range r.all() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// harness runs one client against a fake gateway.
type harness struct {
	t      testing.TB
	srv    *gatewaytest.Server
	c      *client.Client
	rec    *recorder
	cfg    client.Config
	cancel context.CancelFunc
	errc   chan error

	msgs testutil.SyncBuffer // the client's log messages, one a line, when a test hooks them

	mu    sync.Mutex
	waits []time.Duration // every wait the client asked for
	gate  chan struct{}   // when set, waits block until it is closed
}

// holdReconnects makes the client's next waits block until the returned
// function is called.
func (h *harness) holdReconnects() (release func()) {
	g := make(chan struct{})
	h.mu.Lock()
	h.gate = g
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		h.gate = nil
		h.mu.Unlock()
		close(g)
	}
}

// baseConfig points a config at srv with tiny waits.
func baseConfig(srv *gatewaytest.Server, h event.Handler) client.Config {
	return client.Config{
		AppID:        gatewaytest.DefaultAppID,
		ClientSecret: gatewaytest.DefaultSecret,
		APIBase:      srv.URL(),
		TokenURL:     srv.TokenURL(),
		Handler:      h,
	}
}

// newHarness builds the client; mutate may change the config first.
func newHarness(t testing.TB, srv *gatewaytest.Server, mutate func(*client.Config)) *harness {
	t.Helper()
	h := &harness{t: t, srv: srv, rec: &recorder{}}
	cfg := baseConfig(srv, h.rec)
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := client.New(cfg)
	require.NoError(t, err)
	client.SetMinHeartbeat(c, time.Millisecond) // tests heartbeat every few ms
	client.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		h.mu.Lock()
		h.waits = append(h.waits, d)
		gate := h.gate
		h.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		return ctx.Err()
	})
	h.c, h.cfg = c, cfg
	return h
}

// start runs the client until the test ends.
func (h *harness) start() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.errc = make(chan error, 1)
	go func() { h.errc <- h.c.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-h.errc:
		case <-time.After(waitFor):
			h.t.Errorf("Run did not return after cancel")
		}
	})
	return h
}

// stop cancels Run and returns its error.
func (h *harness) stop() error {
	h.cancel()
	select {
	case err := <-h.errc:
		h.errc <- err // for the cleanup
		return err
	case <-time.After(waitFor):
		h.t.Fatal("Run did not return after cancel")
		return nil
	}
}

// runErr waits for Run to return by itself.
func (h *harness) runErr() error {
	h.t.Helper()
	select {
	case err := <-h.errc:
		h.errc <- err
		return err
	case <-time.After(waitFor):
		h.t.Fatal("Run did not return")
		return nil
	}
}

func (h *harness) recordedWaits() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.waits...)
}

// session waits for the next session to reach READY on the server.
func (h *harness) session() *gatewaytest.Session {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := h.srv.WaitSession(ctx)
	require.NoError(h.t, err)
	return s
}

// serverWait waits for a condition over the fake gateway's state.
func (h *harness) serverWait(cond func() bool, msg string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.srv.Wait(ctx, cond); err != nil {
		h.t.Fatalf("waiting for %s: %v", msg, err)
	}
}

// eventually waits for a client-side condition.
func (h *harness) eventually(cond func() bool, msg string) {
	h.t.Helper()
	if !assert.Eventually(h.t, cond, waitFor, time.Millisecond, msg) {
		h.t.FailNow()
	}
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }
