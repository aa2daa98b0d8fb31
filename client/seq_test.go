package client_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// A dispatch whose seq is far beyond the highest seen is delivered, but
// its seq is never taken: not as received, committed, in heartbeats or in
// the RESUME; it is logged as a protocol error. The events after it flow.
func TestSeqFarAheadIsDeliveredButNotTaken(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	emit(t, sess, 1) // seq 2
	const huge = uint64(18446744073709551615)
	require.NoError(t, sess.EmitRaw(fmt.Appendf(nil, `{"op":0,"s":%d,"t":"C2C_MESSAGE_CREATE","id":"jump","d":{"content":"jump"}}`, huge)))
	last := emit(t, sess, 4) // seqs 3..6
	h.handledUpTo(last)
	h.eventually(func() bool { return h.rec.count(wire.EventC2CMessageCreate) == 6 }, "every message, the forged one included")

	assert.Equal(t, []uint64{1, 2, huge, 3, 4, 5, 6}, h.rec.seqs())
	st := h.c.Status()
	assert.EqualValues(t, 6, st.LastSeqReceived)
	assert.EqualValues(t, 6, st.LastSeqHandled)
	assert.Zero(t, st.DuplicatesDropped)
	assert.EqualValues(t, 1, st.ProtocolErrors)
	assert.Contains(t, h.msgs.String(), fmt.Sprintf("error protocol error: dispatch seq %d", huge))

	h.eventually(func() bool { return h.c.Status().HeartbeatACKs == 1 }, "the READY beat's ACK read")
	waitClock(t, clk, func() bool { return clk.Pending(fakeInterval) == 1 }, "the next beat scheduled")
	clk.Advance(fakeInterval)
	h.serverWait(func() bool { return len(srv.Heartbeats()) == 2 }, "a heartbeat")
	assert.EqualValues(t, 6, srv.Heartbeats()[1].Seq)

	sess.Drop()
	h.serverWait(func() bool { return len(srv.Resumes()) == 1 }, "the RESUME")
	assert.EqualValues(t, 6, srv.Resumes()[0].Seq)
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED")
}

// Many duplicates dropped are reported above debug level, with a count.
func TestManyDuplicatesDroppedAreReported(t *testing.T) {
	t.Parallel()
	h, _, _ := clockHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	first := emit(t, sess, 1)
	for range 150 {
		_, err := sess.EmitDuplicate(first)
		require.NoError(t, err)
	}
	last := emit(t, sess, 1)
	h.handledUpTo(last)
	assert.EqualValues(t, 150, h.c.Status().DuplicatesDropped)
	var warned []string
	for _, l := range strings.Split(h.msgs.String(), "\n") {
		if strings.HasPrefix(l, "warn ") && strings.Contains(l, "duplicate") {
			warned = append(warned, l)
		}
	}
	require.Len(t, warned, 1, "one warning, rate-limited")
	assert.Contains(t, warned[0], "100 replayed or duplicate events dropped")
}
