package client

import (
	"context"
	"sync"
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

	var bt batch
	require.False(t, q.take(&bt), "events waiting: not parked")
	assert.Len(t, bt.items, burst, "the whole burst in one batch")
	for i := 0; bt.next < len(bt.items); i++ {
		assert.EqualValues(t, i+1, bt.items[bt.next].Seq, "in order")
		ev := bt.items[bt.next]
		bt.next++
		q.release(ev.size())
	}
	n, b = q.load()
	assert.Zero(t, n)
	assert.Zero(t, b)

	assert.True(t, q.take(&bt), "idle: the dispatcher goroutine parks (exits)")
	assert.Nil(t, bt.items, "the dispatcher let the burst's array go")
	assert.True(t, q.take(&bt))
	assert.Nil(t, q.items, "so did the queue")
	assert.True(t, q.parked, "the next put starts a dispatcher goroutine")
	started := 0
	q.wake = func() { started++ }
	require.True(t, q.put(context.Background(), testItem(1, "{}"), &blocked))
	assert.Equal(t, 1, started, "a put on a parked queue starts one")
	require.True(t, q.put(context.Background(), testItem(2, "{}"), &blocked))
	assert.Equal(t, 1, started, "one runs already: no second")
}

// The dispatcher runs a goroutine only while there are events: each burst
// starts one, which exits once the queue is empty, and the events of all
// bursts reach the handler once each, in order. Stopping an idle
// dispatcher still closes done.
func TestDispatcherGoroutineOnDemand(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []uint64
	c, err := New(Config{AppID: "1", ClientSecret: "s", Handler: event.HandlerFunc(func(_ context.Context, ev event.Event) error {
		mu.Lock()
		got = append(got, ev.Seq)
		mu.Unlock()
		return nil
	})})
	require.NoError(t, err)
	q := c.queue
	d := newDispatcher(c, q)
	parked := func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.parked
	}
	assert.True(t, parked(), "no goroutine before the first event")
	var blocked atomic.Bool
	seq := uint64(0)
	for burst := 0; burst < 20; burst++ {
		for range burst % 5 {
			seq++
			require.True(t, q.put(context.Background(), testItem(seq, "{}"), &blocked))
		}
		assert.Eventually(t, parked, queueWait, queueTick, "the goroutine exits once the queue is empty")
	}
	mu.Lock()
	require.Len(t, got, int(seq))
	for i, s := range got {
		assert.EqualValues(t, i+1, s, "in order")
	}
	mu.Unlock()
	require.True(t, d.beginStop(true))
	select {
	case <-d.done:
	case <-time.After(queueWait):
		t.Fatal("an idle dispatcher did not stop")
	}
	d.wait()
	require.True(t, q.put(context.Background(), testItem(seq+1, "{}"), &blocked))
	assert.False(t, parked(), "stopped: a put starts nothing")
	n, _ := q.load()
	assert.Equal(t, 1, n, "the event stays queued, unhandled")
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

	var bt batch
	q.take(&bt)
	require.Len(t, bt.items, 1)
	go func() { done <- q.put(ctx, testItem(2, "x"), &blocked) }()
	assert.Eventually(t, blocked.Load, queueWait, queueTick, "the batch taken but not started still counts")
	q.release(bt.items[0].size())
	assert.True(t, <-done, "room once the dispatcher starts on it")
	assert.False(t, blocked.Load())

	require.True(t, q.put(ctx, testItem(3, "y"), &blocked))
	go func() { done <- q.put(ctx, testItem(4, "z"), &blocked) }()
	assert.Eventually(t, blocked.Load, queueWait, queueTick, "QueueSize events: waits")
	q.take(&bt)
	require.Len(t, bt.items, 2)
	q.release(bt.items[0].size())
	assert.True(t, <-done)
	n, b := q.load()
	assert.Equal(t, 2, n)
	assert.EqualValues(t, 2+2, b)
}

// With HandlerConcurrency above one, a stop that is not a drain lets the
// calls in hand finish and starts no other: an event that was waiting for
// a free slot when the stop came is left unhandled (and uncommitted), as
// the events still queued are.
func TestStopStartsNoEventWaitingForASlot(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	in := make(chan uint64, 4)
	c, err := New(Config{AppID: "1", ClientSecret: "s", HandlerConcurrency: 2,
		Handler: event.HandlerFunc(func(_ context.Context, ev event.Event) error {
			in <- ev.Seq
			if ev.Seq <= 2 {
				<-release
			}
			return nil
		})})
	require.NoError(t, err)
	q := c.queue
	d := newDispatcher(c, q)
	var blocked atomic.Bool
	for seq := uint64(1); seq <= 3; seq++ {
		require.True(t, q.put(context.Background(), testItem(seq, "{}"), &blocked))
	}
	<-in
	<-in
	// The dispatcher took event 3 and waits for a slot.
	assert.Eventually(t, func() bool { n, _ := q.load(); return n == 0 }, queueWait, queueTick)
	require.True(t, d.beginStop(false))
	close(release)
	select {
	case <-d.done:
	case <-time.After(queueWait):
		t.Fatal("the dispatcher did not stop")
	}
	d.wait()
	close(in)
	for seq := range in {
		t.Errorf("event %d started after the stop", seq)
	}
}
