package client_test

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// The queue is bounded in bytes as well as in count: behind a stuck
// handler, reading pauses once the queued events hold QueueBytes, and no
// event is dropped; one larger than the whole budget still goes through.
func TestQueueIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	gate := make(chan struct{})
	var maxBytes atomic.Int64
	h, _, _ := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) {
		c.QueueBytes = budget
		c.MaxMessageBytes = 1 << 20
	})
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		if ev.Seq == 2 {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		return nil
	}
	h.start()
	sess := h.session()
	body := strings.Repeat("x", 10<<10)
	var last uint64
	for range 20 { // 200 KiB, over three times the budget
		seq, err := sess.Emit(wire.EventC2CMessageCreate, map[string]string{"content": body})
		require.NoError(t, err)
		last = seq
	}
	h.eventually(func() bool {
		st := h.c.Status()
		maxBytes.Store(max(maxBytes.Load(), st.QueueBytes))
		return st.QueueBytes > budget-(12<<10) // the reader filled the budget, and waits
	}, "the queue filled up to its byte budget")
	st := h.c.Status()
	assert.LessOrEqual(t, st.QueueBytes, int64(budget))
	assert.Less(t, st.QueueLength, 10, "bounded by bytes long before QueueSize")
	assert.Less(t, st.LastSeqReceived, last, "reading paused")

	close(gate)
	h.handledUpTo(last)
	assert.Len(t, h.rec.seqs(), int(last), "nothing dropped")
	assertIncreasing(t, h.rec.seqs())

	// One event larger than the whole budget: queued all the same.
	big, err := sess.Emit(wire.EventC2CMessageCreate, map[string]string{"content": strings.Repeat("y", 2*budget)})
	require.NoError(t, err)
	h.handledUpTo(big)
	assert.Zero(t, h.c.Status().QueueBytes)
}

func TestQueueBytesValidated(t *testing.T) {
	t.Parallel()
	_, err := client.New(client.Config{AppID: "1", ClientSecret: "s", QueueBytes: -1})
	assert.ErrorIs(t, err, client.ErrConfig)
}

// A HELLO asking for a tiny heartbeat interval gets the floor instead.
func TestHeartbeatIntervalHasAFloor(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{HeartbeatInterval: time.Millisecond}, nil)
	client.SetMinHeartbeat(h.c, client.MinHeartbeatInterval)
	h.start()
	h.session()
	h.serverWait(func() bool { return len(srv.Heartbeats()) == 1 }, "the beat at READY")
	waitClock(t, clk, func() bool { return clk.Pending(client.MinHeartbeatInterval) == 1 }, "the next beat a second later")
	assert.Zero(t, clk.Created(time.Millisecond), "no 1 ms heartbeat timer")
	assert.Contains(t, h.msgs.String(), "heartbeat interval")
}

// session_start_limit's reset_after cannot make the client wait beyond
// MaxResetAfter (it asks /gateway/bot again after that), nor be negative.
func TestIdentifyWaitForResetAfterIsCapped(t *testing.T) {
	t.Parallel()
	l := client.NewIdentifyLimiter()
	now := time.Unix(1_800_000_000, 0)
	client.SetLimiterClock(l, func() time.Time { return now })
	client.LimiterUpdate(l, "app", &wire.SessionStartLimit{Total: 1000, Remaining: 0, ResetAfter: 1_000_000_000_000, MaxConcurrency: 1})
	assert.Equal(t, client.MaxResetAfter, client.LimiterReserve(l, "app", 1))
	client.LimiterUpdate(l, "huge", &wire.SessionStartLimit{Remaining: 0, ResetAfter: math.MaxInt64, MaxConcurrency: 1})
	assert.Equal(t, client.MaxResetAfter, client.LimiterReserve(l, "huge", 1), "no overflow into a negative wait")
	client.LimiterUpdate(l, "neg", &wire.SessionStartLimit{Remaining: 0, ResetAfter: -5, MaxConcurrency: 1})
	assert.Zero(t, client.LimiterReserve(l, "neg", 1))

	// Through a client: the wait it asks for is capped too.
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	srv.SetSessionStartLimit(wire.SessionStartLimit{Total: 1000, Remaining: 0, ResetAfter: 1_000_000_000_000, MaxConcurrency: 1})
	h := newHarness(t, srv, nil).start()
	h.eventually(func() bool { return len(h.recordedWaits()) > 0 }, "a wait")
	assert.LessOrEqual(t, h.recordedWaits()[0], client.MaxResetAfter)
}

// A frame the read limit lets through must decode: MaxMessageBytes may not
// exceed the decoder's own limit, or such a frame would be skipped as bad,
// silently losing its event.
func TestMaxMessageBytesBoundedByTheDecoder(t *testing.T) {
	t.Parallel()
	cfg := client.Config{AppID: "1", ClientSecret: "s", MaxMessageBytes: wire.MaxFrameBytes + 1}
	_, err := client.New(cfg)
	require.ErrorIs(t, err, client.ErrConfig)
	assert.Contains(t, err.Error(), "MaxMessageBytes")
	cfg.MaxMessageBytes = wire.MaxFrameBytes
	_, err = client.New(cfg)
	assert.NoError(t, err)
}
