package client_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// The connection ends, again and again, while the reader holds an event
// it could not queue (the queue is full behind a slow handler). That event
// must come back on the RESUME: every seq is handled, once, in order, and
// the committed seq reaches the last one.
func TestConnectionLostUnderBackpressureLosesNothing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var gate chan struct{} // while set, message events wait on it
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.QueueSize = 1 })
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		mu.Lock()
		g := gate
		mu.Unlock()
		if g != nil && ev.Type == wire.EventC2CMessageCreate {
			select {
			case <-g:
			case <-ctx.Done():
			}
		}
		return nil
	}
	h.start()
	sess := h.session()
	var last uint64
	const rounds = 5
	for round := 1; round <= rounds; round++ {
		g := make(chan struct{})
		mu.Lock()
		gate = g
		mu.Unlock()
		// One in the handler, one in the queue, one in the reader's hand,
		// one behind it on the socket.
		last = emit(t, sess, 4)
		h.eventually(func() bool { return h.c.Status().LastSeqReceived >= last-1 }, "the reader holding an event it cannot queue")
		sess.Drop()
		// Heartbeats find the dead connection (a blocked reader is no
		// zombie). Time moves only while that connection lasts: the
		// session stays valid for the RESUME.
		h.eventually(func() bool {
			if h.c.Status().State == client.StateConnected {
				clk.Advance(fakeInterval)
			}
			return len(srv.Resumes()) >= round
		}, "the RESUME")
		mu.Lock()
		gate = nil
		mu.Unlock()
		close(g)
		h.eventually(func() bool { return h.rec.count(wire.EventResumed) == round }, "RESUMED handled")
		h.handledUpTo(last)
	}

	seen := map[uint64]int{}
	var msgs []uint64
	for _, ev := range h.rec.all() {
		if ev.Type == wire.EventC2CMessageCreate {
			seen[ev.Seq]++
			msgs = append(msgs, ev.Seq)
		}
	}
	assertIncreasing(t, msgs)
	for _, f := range sess.Frames() {
		if f.T == wire.EventC2CMessageCreate {
			assert.Equal(t, 1, seen[f.S], "seq %d handled once", f.S)
		}
	}
	assert.Len(t, srv.Identifies(), 1, "RESUME every time")
	st := h.c.Status()
	assert.Equal(t, sess.LastSeq(), st.LastSeqHandled, "the committed seq reached the last one")
	assert.Equal(t, sess.LastSeq(), st.LastSeqReceived)
}
