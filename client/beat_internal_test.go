package client

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/resume"
)

// beatConn opens a connection to a fake gateway whose heartbeat runs on a
// fake clock every second, as after HELLO, with no reader: the test plays
// the reader. runs gets a value each time the beat timer's callback returns.
func beatConn(t *testing.T) (k *connection, clk *FakeClock, runs chan struct{}) {
	t.Helper()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	c, err := New(Config{AppID: "1", ClientSecret: "s"})
	require.NoError(t, err)
	clk = NewFakeClock()
	c.clock = clk
	ctx, cancel := context.WithTimeout(context.Background(), queueWait) // a bound on the test, not a timing assertion
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(t, err)
	k = c.openConnection(ctx, ws, "t", newDispatcher(c, c.queue), &resume.State{}, c.newBackOff())
	t.Cleanup(func() {
		k.abort()
		k.read()
		k.end()
	})
	runs = make(chan struct{}, 8)
	k.mu.Lock()
	k.helloed = true
	k.helloT.Stop()
	k.interval = time.Second
	k.beatT = k.afterLocked(k.interval, func() {
		k.onBeatDue()
		runs <- struct{}{}
	})
	k.mu.Unlock()
	return k, clk, runs
}

// A beat sent by another path (the server's op 1, the first beat at
// READY) while the beat timer has fired and its callback waits for the
// lock re-arms the timer; the waiting run is then stale and must not take
// the beat just sent, with no frame since, for a zombie connection.
func TestAStaleBeatRunFindsNoZombie(t *testing.T) {
	t.Parallel()
	k, clk, runs := beatConn(t)

	clk.Advance(time.Second) // the first beat
	<-runs
	k.frames.Add(1) // its ACK

	// The reader handles the server's op 1 as the beat timer fires.
	k.mu.Lock()
	clk.Advance(time.Second) // the timer's run now waits for the lock
	k.frames.Add(1)          // the op 1 frame
	require.False(t, k.beatLocked())
	k.mu.Unlock()
	<-runs // the stale run

	k.mu.Lock()
	assert.False(t, k.sigSet, "a stale beat run ended a live connection as a zombie: %+v", k.a.sig)
	k.mu.Unlock()

	// The timer the op 1 beat re-armed still detects a real zombie.
	clk.Advance(time.Second)
	<-runs
	k.mu.Lock()
	assert.True(t, k.sigSet, "no zombie detected a whole interval after a beat with no frame since")
	assert.Equal(t, resume.SigZombie, k.a.sig.Kind)
	k.mu.Unlock()
}
