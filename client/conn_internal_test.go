package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/resume"
	"github.com/qqgate/qqgate/wire"
)

// A failed write waits for the reader's reason on the connection's clock:
// with a fake clock, the wait is a timer of that clock and ends when the
// clock passes it, not after wall time.
func TestFailedWriteWaitsOnTheConnectionClock(t *testing.T) {
	t.Parallel()
	c, err := New(Config{AppID: "1", ClientSecret: "s"})
	require.NoError(t, err)
	clk := NewFakeClock()
	c.clock = clk
	// A reader that learns nothing more: it neither ends nor queues a frame.
	k := &connection{c: c, ctx: context.Background(), cn: &conn{ctrl: make(chan wire.Frame, 16), done: make(chan struct{})}}
	got := make(chan resume.Signal, 1)
	go func() { got <- k.failed(errors.New("write: broken pipe")) }()

	deadline := time.NewTimer(queueWait) // a bound on the test, not a timing assertion
	defer deadline.Stop()
	for changed := clk.Changed(); clk.Pending(failedWait) == 0; changed = clk.Changed() {
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatal("failed's wait is not a timer of the connection's clock")
		}
	}
	select {
	case <-got:
		t.Fatal("failed returned before its wait ended")
	default:
	}
	clk.Advance(failedWait)
	select {
	case sig := <-got:
		assert.Equal(t, resume.SigNetwork, sig.Kind)
		assert.Equal(t, "write: broken pipe", sig.Reason)
	case <-deadline.C:
		t.Fatal("failed did not return when the clock passed its wait")
	}
}
