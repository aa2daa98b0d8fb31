package client_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/wire"
)

// Durations of the fake-clock tests, distinct so a test can tell the
// client's timers apart.
const (
	fakeInterval     = 20 * time.Second // HELLO's heartbeat_interval
	fakeReadyTimeout = 31 * time.Second
)

// clockHarness is a harness whose connection loop runs on a fake clock.
func clockHarness(t *testing.T, opts gatewaytest.Options, mutate func(*client.Config)) (*harness, *gatewaytest.Server, *client.FakeClock) {
	t.Helper()
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = fakeInterval
	}
	var msgs *testutil.SyncBuffer
	h, srv, _ := policyHarness(t, opts, func(c *client.Config) {
		c.ReadyTimeout = fakeReadyTimeout
		c.Logger = c.Logger.Hook(zerolog.HookFunc(func(_ *zerolog.Event, level zerolog.Level, msg string) {
			fmt.Fprintf(msgs, "%s %s\n", level, msg)
		}))
		if mutate != nil {
			mutate(c)
		}
	})
	msgs = &h.msgs
	clk := client.NewFakeClock()
	client.SetClock(h.c, clk)
	return h, srv, clk
}

// waitClock waits for a condition over the fake clock's timers.
func waitClock(t *testing.T, clk *client.FakeClock, cond func() bool, msg string) {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		ch := clk.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waiting for %s", msg)
		}
	}
}

// awaitingAuth waits until the client has sent its n-th IDENTIFY or RESUME
// and waits for the answer: its READY timeout is armed.
func awaitingAuth(t *testing.T, clk *client.FakeClock, n int) {
	t.Helper()
	waitClock(t, clk, func() bool {
		return clk.Created(fakeReadyTimeout) >= n && clk.Pending(fakeReadyTimeout) == 1
	}, "the READY timeout armed")
}

// heartbeatsOn returns the heartbeats received on connection conn.
func heartbeatsOn(srv *gatewaytest.Server, conn int) []gatewaytest.Heartbeat {
	var out []gatewaytest.Heartbeat
	for _, hb := range srv.Heartbeats() {
		if hb.Conn == conn {
			out = append(out, hb)
		}
	}
	return out
}

// noClientCloseWith checks that no connection ended on the server's 4003.
func notRejected(t *testing.T, h *harness) {
	t.Helper()
	assert.NotEqual(t, wire.CloseNotAuthenticated, h.c.Status().LastCloseCode, "a heartbeat went out before READY/RESUMED")
}

// No heartbeat between IDENTIFY and a slow READY: the first one goes out
// when READY arrives, carrying READY's seq; then one every interval.
func TestNoHeartbeatBetweenIdentifyAndReady(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{RejectEarlyHeartbeat: true}, nil)
	release := srv.HoldAuth()
	h.start()
	awaitingAuth(t, clk, 1)
	clk.Advance(fakeInterval - time.Millisecond) // READY comes late, but within the interval
	release()                                    // every frame sent before READY is handled first
	h.eventually(func() bool { return h.c.Status().State == client.StateConnected }, "connected")
	h.serverWait(func() bool { return len(srv.Heartbeats()) >= 1 }, "the heartbeat at READY")

	notRejected(t, h)
	assert.Equal(t, 1, srv.Connections(), "no reconnect")
	hb := srv.Heartbeats()
	require.Len(t, hb, 1)
	assert.True(t, hb[0].HasSeq && hb[0].Seq == 1, "the beat at READY carries READY's seq, got %s", hb[0].D)

	h.eventually(func() bool { return h.c.Status().HeartbeatACKs == 1 }, "its ACK read") // or the next beat finds a zombie
	waitClock(t, clk, func() bool { return clk.Pending(fakeInterval) == 1 }, "the next beat scheduled")
	clk.Advance(fakeInterval)
	h.serverWait(func() bool { return len(srv.Heartbeats()) >= 2 }, "the beat one interval later")
	assert.Equal(t, 1, srv.Connections())
}

// The same on RESUME: nothing between RESUME and a slow RESUMED.
func TestNoHeartbeatBetweenResumeAndResumed(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{RejectEarlyHeartbeat: true}, nil)
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 2))
	awaitingAuthDone := func() bool { return clk.Pending(fakeReadyTimeout) == 0 }
	waitClock(t, clk, awaitingAuthDone, "the READY timeout stopped")

	release := srv.HoldAuth()
	sess.Drop()
	h.serverWait(func() bool { return len(srv.Resumes()) == 1 }, "the RESUME")
	awaitingAuth(t, clk, 2)
	emit(t, sess, 2) // replayed
	release()
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")
	h.serverWait(func() bool { return len(heartbeatsOn(srv, 2)) >= 1 }, "the heartbeat at RESUMED")

	notRejected(t, h)
	assert.Equal(t, 2, srv.Connections(), "one reconnect, no more")
	hb := heartbeatsOn(srv, 2)
	require.Len(t, hb, 1)
	assert.EqualValues(t, 6, hb[0].Seq, "the beat at RESUMED carries RESUMED's seq")
	assert.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, h.rec.seqs())
}

// A READY slower than one interval: the first beat goes out one interval
// after HELLO (d null: nothing received yet), and READY adds none.
func TestHeartbeatOneIntervalAfterHelloWhenReadyIsLate(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, nil)
	release := srv.HoldAuth()
	defer release()
	h.start()
	awaitingAuth(t, clk, 1)
	clk.Advance(fakeInterval)
	h.serverWait(func() bool { return len(srv.Heartbeats()) == 1 }, "the beat one interval after HELLO")
	assert.Equal(t, "null", string(srv.Heartbeats()[0].D))
	h.eventually(func() bool { return h.c.Status().HeartbeatACKs == 1 }, "its ACK read")
	release()
	h.eventually(func() bool { return h.c.Status().State == client.StateConnected }, "connected")
	clk.Advance(fakeInterval - time.Millisecond)
	assert.Len(t, srv.Heartbeats(), 1, "READY brings no extra beat when one already went out")
	clk.Advance(time.Millisecond)
	h.serverWait(func() bool { return len(srv.Heartbeats()) == 2 }, "the next beat, one interval after the first")
	assert.EqualValues(t, 1, srv.Heartbeats()[1].Seq)
	assert.Equal(t, 1, srv.Connections())
}

// Zombie detection: with the server silent, the connection is dropped at
// the first beat due with nothing received since the previous one.
func TestZombieDetectedWithinTwoIntervals(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, nil)
	h.start()
	h.session()
	h.serverWait(func() bool { return len(srv.Heartbeats()) == 1 }, "the beat at READY")
	h.eventually(func() bool { return h.c.Status().HeartbeatACKs == 1 }, "its ACK read")
	srv.WithholdACKs(true)
	waitClock(t, clk, func() bool { return clk.Pending(fakeInterval) == 1 }, "the next beat scheduled")
	clk.Advance(fakeInterval) // a beat, unanswered
	h.serverWait(func() bool { return len(srv.Heartbeats()) == 2 }, "the second beat")
	assert.Equal(t, 1, srv.Connections())
	waitClock(t, clk, func() bool { return clk.Pending(fakeInterval) == 1 }, "the next beat scheduled")
	clk.Advance(fakeInterval) // nothing since the last beat: zombie
	h.serverWait(func() bool { return len(srv.Resumes()) == 1 }, "a RESUME after the zombie close")
	// The new connection beats at RESUMED, which may already have come.
	onZombie := 0
	for _, hb := range srv.Heartbeats() {
		if hb.Conn == 1 {
			onZombie++
		}
	}
	assert.Equal(t, 2, onZombie, "no third beat on the zombie connection")
}

// A reader that waited on a full queue through a beat has that beat's ACK
// unread: when it is let go just before the next beat is due, the next
// beat must not find "no frame since the previous beat" and end a live
// connection as a zombie. (OnReceive holds the reader at that point.)
func TestAReaderJustLetGoFromAFullQueueIsNoZombie(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var holdSeq atomic.Uint64
	held, unhold := make(chan struct{}), make(chan struct{})
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, func(c *client.Config) {
		c.QueueSize = 1
		c.OnReceive = func(ev event.Event) {
			if ev.Seq != 0 && ev.Seq == holdSeq.Load() {
				close(held)
				<-unhold
			}
		}
	})
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		if ev.Type == wire.EventC2CMessageCreate {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	h.start()
	defer close(unhold)
	sess := h.session()
	h.eventually(func() bool { return h.c.Status().HeartbeatACKs == 1 }, "the beat at READY and its ACK")

	var last uint64
	for range 3 {
		seq, err := sess.EmitMessage(wire.EventC2CMessageCreate)
		require.NoError(t, err)
		last = seq
	}
	h.eventually(func() bool {
		st := h.c.Status()
		return st.QueueLength == 1 && st.LastSeqReceived == last && st.Events == 3
	}, "the reader waits on a full queue")
	clk.Advance(fakeInterval) // a beat while the reader waits; its ACK stays unread
	h.serverWait(func() bool { return len(heartbeatsOn(srv, 1)) == 2 }, "the beat while the reader waits")

	holdSeq.Store(last)
	close(release) // room: the reader queues the last event and is held in OnReceive
	<-held
	clk.Advance(fakeInterval)
	h.serverWait(func() bool { return len(heartbeatsOn(srv, 1)) == 3 || srv.LiveConnections() == 0 }, "the next beat, or the connection's end")
	assert.Len(t, heartbeatsOn(srv, 1), 3, "a live connection whose reader was just let go was ended as a zombie")
	assert.Equal(t, 1, srv.LiveConnections())
}
