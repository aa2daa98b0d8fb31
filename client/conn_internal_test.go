package client

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/resume"
)

// A failed write waits for the reader's reason on the connection's clock:
// with a fake clock, the wait is a timer of that clock, and the write's
// error ends the connection when the clock passes it, not after wall time.
func TestFailedWriteWaitsOnTheConnectionClock(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	c, err := New(Config{AppID: "1", ClientSecret: "s"})
	require.NoError(t, err)
	clk := NewFakeClock()
	c.clock = clk
	ctx, cancel := context.WithTimeout(context.Background(), queueWait) // a bound on the test, not a timing assertion
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	k := c.openConnection(ctx, ws, "t", newDispatcher(c, c.queue), &resume.State{}, c.newBackOff())

	// A write fails while the reader learns nothing more.
	k.mu.Lock()
	k.writeFailedLocked(errors.New("write: broken pipe"))
	k.mu.Unlock()
	require.Equal(t, 1, clk.Pending(failedWait), "the failed write's wait is not a timer of the connection's clock")
	k.mu.Lock()
	assert.False(t, k.sigSet, "the failed write ended the connection before its wait ended")
	k.mu.Unlock()

	clk.Advance(failedWait)
	select {
	case <-k.queueCtx.Done(): // the wait's callback ended the connection
	case <-ctx.Done():
		t.Fatal("the connection did not end when the clock passed the failed write's wait")
	}
	k.read() // the socket is closed: reading ends at once
	a := k.end()
	assert.Equal(t, resume.SigNetwork, a.sig.Kind)
	assert.Equal(t, "write: broken pipe", a.sig.Reason)
}

// The connection counts its timer callbacks, armed or running, and end
// waits for them: a Stop that disarms one gives its count back, a Reset
// of one that ran counts it again, and a run in progress holds the wait
// until it returns, so no callback outlives the connection. (In a
// synctest bubble, so "the wait has not ended" is checked once every
// goroutine is blocked, not after some time.)
func TestConnectionWaitsForItsCallbacks(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{AppID: "1", ClientSecret: "s"})
		require.NoError(t, err)
		clk := NewFakeClock()
		c.clock = clk
		k := &connection{c: c}
		waited := func() <-chan struct{} {
			ch := make(chan struct{})
			go func() { k.callbacks.Wait(); close(ch) }()
			return ch
		}

		k.mu.Lock()
		stopped := k.afterLocked(time.Second, func() { t.Error("a stopped callback ran") })
		k.mu.Unlock()
		stopped.Stop()
		stopped.Stop() // a second Stop gives nothing back twice
		<-waited()

		release, running := make(chan struct{}), make(chan struct{})
		runs := 0
		k.mu.Lock()
		cb := k.afterLocked(time.Second, func() {
			runs++
			if runs == 1 {
				close(running)
				<-release
			}
		})
		k.mu.Unlock()
		w := waited()
		synctest.Wait()
		select {
		case <-w:
			t.Fatal("the wait ended while a callback was armed")
		default:
		}
		clk.Advance(time.Second)
		<-running
		k.mu.Lock()
		cb.Reset(time.Second) // armed again while its first run is in progress
		k.mu.Unlock()
		cb.Stop()
		synctest.Wait()
		select {
		case <-w:
			t.Fatal("the wait ended while a callback was running")
		default:
		}
		close(release)
		<-w
		assert.Equal(t, 1, runs, "the stopped second arming never ran")
	})
}
