package client

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
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

// Cancelling the reader's read context ends a read blocked on a silent
// gateway, though the reads themselves run with a context that never ends.
func TestReadEndsWhenReadContextEnds(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	c, err := New(Config{AppID: "1", ClientSecret: "s"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	cn := &conn{ws: ws, ctrl: make(chan wire.Frame, 16), done: make(chan struct{})}
	readCtx, cancelRead := context.WithCancel(context.Background())
	go c.read(ctx, readCtx, cn, newDispatcher(c, c.queue))
	select {
	case f := <-cn.ctrl:
		require.Equal(t, wire.OpHello, f.Op)
	case <-ctx.Done():
		t.Fatal("no HELLO")
	}
	// Nothing more comes: the reader waits on the socket.
	cancelRead()
	select {
	case <-cn.done:
		assert.Error(t, cn.err)
	case <-ctx.Done():
		t.Fatal("the reader did not end")
	}
}
