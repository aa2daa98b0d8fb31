package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// READY must come within ReadyTimeout of IDENTIFY: heartbeat ACKs in the
// meantime are not progress.
func TestReadyTimeoutFiresDespiteHeartbeatACKs(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, nil)
	release := srv.HoldAuth() // READY never comes
	defer release()
	h.start()
	awaitingAuth(t, clk, 1)
	clk.Advance(fakeInterval)
	h.serverWait(func() bool { return len(srv.Heartbeats()) == 1 }, "a heartbeat while READY is late")
	h.eventually(func() bool { return h.c.Status().HeartbeatACKs == 1 }, "its ACK read")
	clk.Advance(fakeReadyTimeout - fakeInterval)
	h.serverWait(func() bool { return len(srv.Identifies()) == 2 }, "a new connection after the READY timeout")
	assert.Equal(t, 2, srv.Connections())
	assert.Contains(t, h.msgs.String(), "no READY/RESUMED within")
}

// A replay in front of RESUMED is progress, even when the handler is slow
// and the replay waits on a full queue for longer than ReadyTimeout.
func TestReadyTimeoutSparesASlowReplay(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.QueueSize = 1 })
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		if ev.Seq == 3 {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		return nil
	}
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 1))
	release := srv.HoldAuth()
	sess.Drop()
	h.serverWait(func() bool { return len(srv.Resumes()) == 1 }, "the RESUME")
	last := emit(t, sess, 6) // replayed: 3 blocks the handler, the queue fills, the reader waits
	awaitingAuth(t, clk, 2)
	release()
	h.eventually(func() bool { return h.c.Status().LastSeqReceived >= 5 }, "the reader waiting on a full queue")
	clk.Advance(fakeReadyTimeout)
	clk.Advance(fakeReadyTimeout)
	close(gate)
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")
	h.handledUpTo(last)
	assert.Equal(t, 2, srv.Connections(), "the slow replay was not cut")
	assert.Len(t, srv.Resumes(), 1)
}
