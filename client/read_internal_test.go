package client

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/resume"
)

// readFrame reads a whole message into the buffer it is given, growing it
// as needed, whatever sizes the reads come in, and passes a read error on.
func TestReadFrameReusesAndGrowsItsBuffer(t *testing.T) {
	t.Parallel()
	var buf []byte
	for _, n := range []int{0, 1, 600, minFrameBuffer, minFrameBuffer + 1, 5 * maxKeptFrameBuffer, 10} {
		msg := bytes.Repeat([]byte{'x'}, n)
		for _, r := range []func() []byte{
			func() []byte { b, _ := readFrame(bytes.NewReader(msg), buf); return b },
			func() []byte { b, _ := readFrame(iotest.OneByteReader(bytes.NewReader(msg)), buf); return b },
			func() []byte { b, _ := readFrame(iotest.DataErrReader(bytes.NewReader(msg)), buf); return b },
		} {
			got := r()
			require.Equal(t, msg, got)
			if n > 0 && cap(buf) > n {
				assert.Same(t, &buf[:1][0], &got[:1][0], "the buffer is reused when it has room")
			}
			buf = got
		}
	}
	boom := errors.New("boom")
	_, err := readFrame(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader("ab"))), nil)
	assert.ErrorIs(t, err, iotest.ErrTimeout)
	_, err = readFrame(iotest.ErrReader(boom), nil)
	assert.ErrorIs(t, err, boom)
}

// Common event types are one shared string, not one per event.
func TestEventTypeInterned(t *testing.T) {
	b := []byte("GROUP_AT_MESSAGE_CREATE")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = eventType(b) }))
	assert.Equal(t, "GROUP_AT_MESSAGE_CREATE", eventType(b))
	assert.Equal(t, "SOMETHING_NEW", eventType([]byte("SOMETHING_NEW")))
}

// A callback that ends the connection ends a read blocked on a silent
// gateway, though the reads themselves run with a context that never
// ends, and the connection ends with the callback's signal.
func TestEndingCallbackEndsABlockedRead(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	c, err := New(Config{AppID: "1", ClientSecret: "s"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	k := c.openConnection(ctx, ws, srv.Token(gatewaytest.DefaultAppID), newDispatcher(c, c.queue), &resume.State{}, c.newBackOff())
	ended := make(chan attempt, 1)
	go func() {
		k.read()
		ended <- k.end()
	}()
	require.Eventually(t, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.a.established
	}, queueWait, time.Millisecond, "no READY")
	// Nothing more comes: the reader waits on the socket.
	sig := resume.Signal{Kind: resume.SigZombie, Reason: "test"}
	k.mu.Lock()
	first := k.recordLocked(sig)
	k.mu.Unlock()
	require.True(t, first, "the connection ended before the callback")
	k.abort()
	select {
	case a := <-ended:
		assert.Error(t, k.readErr)
		assert.Equal(t, sig, a.sig)
	case <-ctx.Done():
		t.Fatal("the reader did not end")
	}
}
