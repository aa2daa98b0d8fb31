package client

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
)

const (
	queueWait = 15 * time.Second
	queueTick = time.Millisecond
)

func testItem(seq uint64, data string) item {
	return item{Event: event.Event{Type: "T", Seq: seq, Data: []byte(data)}}
}

// A new client makes no room for events up front: the queue grows with a
// burst and lets its arrays go once the burst is handled and the queue is
// idle, in the queue and in the dispatcher's batch alike.
func TestQueueGrowsOnDemandAndShrinksWhenIdle(t *testing.T) {
	t.Parallel()
	c, err := New(Config{AppID: "1", ClientSecret: "s"})
	require.NoError(t, err)
	q := c.queue
	assert.Zero(t, cap(q.items), "nothing made up front")
	assert.Nil(t, q.freed)

	var blocked atomic.Bool
	const burst = 10 * keepBatch
	for i := range burst {
		require.True(t, q.put(context.Background(), testItem(uint64(i+1), "{}"), &blocked))
	}
	n, b := q.load()
	assert.Equal(t, burst, n)
	assert.EqualValues(t, burst*(2+1), b)

	d := newDispatcher(c, q)
	require.True(t, d.refill())
	assert.Len(t, d.batch, burst, "the whole burst in one batch")
	for i := 0; d.next < len(d.batch); i++ {
		assert.EqualValues(t, i+1, d.batch[d.next].Seq, "in order")
		ev := d.batch[d.next]
		d.next++
		q.release(ev.size())
	}
	n, b = q.load()
	assert.Zero(t, n)
	assert.Zero(t, b)

	assert.False(t, d.refill(), "idle")
	assert.Nil(t, d.batch, "the dispatcher let the burst's array go")
	assert.False(t, d.refill())
	assert.Nil(t, q.items, "so did the queue")
	assert.True(t, q.parked, "the next put wakes the dispatcher")
	require.True(t, q.put(context.Background(), testItem(1, "{}"), &blocked))
	select {
	case <-q.notify:
	default:
		t.Fatal("no wake-up for a parked dispatcher")
	}
}

// The queue holds QueueSize events, and QueueBytes of them unless it is
// empty; a put that does not fit waits (blocked is set) until the
// dispatcher takes an event, or its context ends.
func TestQueueBoundsByCountAndBytes(t *testing.T) {
	t.Parallel()
	q := newQueue(2, 10)
	var blocked atomic.Bool
	ctx := context.Background()
	require.True(t, q.put(ctx, testItem(1, "0123456789ab"), &blocked), "an empty queue takes an event over the byte budget")

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan bool)
	go func() { done <- q.put(cctx, testItem(2, "x"), &blocked) }()
	assert.Eventually(t, blocked.Load, queueWait, queueTick, "over the byte budget: waits")
	cancel()
	assert.False(t, <-done, "its context ended")
	assert.False(t, blocked.Load())

	batch := q.take(nil)
	require.Len(t, batch, 1)
	go func() { done <- q.put(ctx, testItem(2, "x"), &blocked) }()
	assert.Eventually(t, blocked.Load, queueWait, queueTick, "the batch taken but not started still counts")
	q.release(batch[0].size())
	assert.True(t, <-done, "room once the dispatcher starts on it")
	assert.False(t, blocked.Load())

	require.True(t, q.put(ctx, testItem(3, "y"), &blocked))
	go func() { done <- q.put(ctx, testItem(4, "z"), &blocked) }()
	assert.Eventually(t, blocked.Load, queueWait, queueTick, "QueueSize events: waits")
	batch = q.take(batch[:0])
	require.Len(t, batch, 2)
	q.release(batch[0].size())
	assert.True(t, <-done)
	n, b := q.load()
	assert.Equal(t, 2, n)
	assert.EqualValues(t, 2+2, b)
}
