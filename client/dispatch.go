package client

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/qqgate/qqgate/event"
)

// item is a queued event and the session epoch it arrived in: an event of
// an older session never commits.
type item struct {
	event.Event
	epoch uint64
}

// dispatcher calls the Handler, in order, on a goroutine of its own
// started on demand: the first event put on an idle queue starts it, and
// it exits when it finds the queue empty, so an idle connection keeps no
// dispatcher goroutine (nor its stack). At most one runs at a time. It
// lives for the whole of Run, so events queued before a reconnect are
// still handled in order after it.
type dispatcher struct {
	c        *Client
	q        *queue
	stopped  sync.Once
	stopping atomic.Bool // set before the queue is told, checked between events
	drain    atomic.Bool
	done     chan struct{} // closed when stopped: no handler runs
	wg       sync.WaitGroup
	hctx     context.Context
	hcancel  context.CancelFunc

	// b is the events taken from the queue in one go; owned by the
	// running dispatcher goroutine, handed to the next one under q.mu.
	b batch

	sem      chan struct{}  // nil: one call at a time on the dispatcher goroutine
	inflight sync.WaitGroup // concurrent calls, when sem is set
}

// batch is events taken from the queue, items[next:] not yet started.
type batch struct {
	items []item
	next  int
}

func newDispatcher(c *Client, q *queue) *dispatcher {
	hctx, hcancel := context.WithCancel(context.Background())
	d := &dispatcher{c: c, q: q, done: make(chan struct{}), hctx: hctx, hcancel: hcancel}
	if n := c.cfg.HandlerConcurrency; n > 1 {
		d.sem = make(chan struct{}, n)
	}
	q.mu.Lock()
	q.wake, q.stopped = d.start, false
	start := q.len > 0 // events left by an earlier dispatcher
	q.parked = !start
	q.mu.Unlock()
	if start {
		d.start()
	}
	return d
}

// start starts a dispatcher goroutine; the queue calls it when an event
// arrives and none runs. wait waits for every one started.
func (d *dispatcher) start() {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.run()
	}()
}

// wait waits until no dispatcher goroutine is left; call it after done.
func (d *dispatcher) wait() { d.wg.Wait() }

// run handles events until the queue is empty (the goroutine exits; the
// next event starts another) or the dispatcher stops (after the queue is
// drained, if asked, or at abort).
func (d *dispatcher) run() {
	for {
		if d.stopping.Load() {
			d.stop()
			return
		}
		if d.b.next < len(d.b.items) {
			d.dispatchNext()
			continue
		}
		if d.q.take(&d.b) {
			return // parked: no field of d is touched after this
		}
	}
}

// stop ends the last dispatcher goroutine: the queue is drained when
// asked, concurrent calls are waited for, and done is closed.
func (d *dispatcher) stop() {
	if d.drain.Load() {
		d.drainQueue()
	}
	d.inflight.Wait()
	d.hcancel()
	close(d.done)
}

// dispatchNext hands the next event of the batch to the handler. It
// leaves the queue's count and bytes as the handler starts on it.
func (d *dispatcher) dispatchNext() {
	ev := d.b.items[d.b.next]
	d.b.items[d.b.next] = item{} // the batch's array must not keep the event alive
	d.b.next++
	d.q.release(ev.size())
	d.dispatch(ev)
}

// dispatch handles ev on this goroutine, or, with HandlerConcurrency above
// one, starts it on its own goroutine once a slot is free: calls start in
// seq order and the committed seq waits for the slowest.
func (d *dispatcher) dispatch(ev item) {
	if d.sem == nil {
		d.handle(ev)
		return
	}
	select {
	case d.sem <- struct{}{}:
	case <-d.hctx.Done():
		return
	}
	if d.stopping.Load() && !d.drain.Load() {
		// The stop came while ev waited for a slot: it was not in hand,
		// so, like the events still queued, it is left uncommitted.
		<-d.sem
		return
	}
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		defer func() { <-d.sem }()
		d.handle(ev)
	}()
}

func (d *dispatcher) drainQueue() {
	for d.hctx.Err() == nil {
		if d.b.next >= len(d.b.items) {
			d.q.take(&d.b) // stopped: it never parks
			if len(d.b.items) == 0 {
				return
			}
		}
		d.dispatchNext()
	}
}

// beginStop asks the dispatcher to stop after the event in hand (or after
// the queue, with drain). It reports whether this call was the first.
// With no dispatcher goroutine running, it starts one to do the stopping,
// so done is always closed by the last of them.
func (d *dispatcher) beginStop(drain bool) bool {
	first := false
	d.stopped.Do(func() {
		first = true
		d.drain.Store(drain)
		d.stopping.Store(true)
		d.q.mu.Lock()
		d.q.stopped = true
		idle := d.q.parked
		d.q.parked = false
		d.q.mu.Unlock()
		if idle {
			d.start()
		}
	})
	return first
}

// abort cancels the context of the handler in hand.
func (d *dispatcher) abort() { d.hcancel() }

// enqueue hands ev to the dispatcher, waiting while the queue is full, in
// count or in bytes (backpressure on the reader). It returns false if ctx
// ended first.
func (d *dispatcher) enqueue(ctx context.Context, ev item, blocked *atomic.Bool) bool {
	return d.q.put(ctx, ev, blocked)
}

// size is what an event counts against Config.QueueBytes.
func (e item) size() int64 { return int64(len(e.Data) + len(e.ID) + len(e.Type)) }

// keepBatch is the most events an idle queue keeps room for: a burst's
// larger arrays are let go once it is handled.
const keepBatch = 64

// queue holds the events received and not yet handed to the handler,
// bounded by count and by bytes. The reader puts events one by one; the
// dispatcher takes all that are waiting in one go, and a dispatcher
// goroutine is started only when an event arrives on an idle queue, so a
// busy stream costs no wake-up per event and an idle one no goroutine.
// Room is given back per event, as the handler starts on it. It grows on
// demand and shrinks back when idle. It is safe for concurrent use.
type queue struct {
	maxLen   int
	maxBytes int64
	// puts counts the events put, each as it is added, before the
	// dispatcher can take it (Status.Events): a handler done with an event
	// finds it counted.
	puts atomic.Uint64
	wake func() // starts a dispatcher goroutine; set by newDispatcher

	mu      sync.Mutex
	items   []item        // guarded by mu; waiting for the dispatcher, oldest first
	len     int           // guarded by mu; events counted, including a batch taken and not yet started
	bytes   int64         // guarded by mu; their bytes
	parked  bool          // guarded by mu; no dispatcher goroutine runs: put starts one
	stopped bool          // guarded by mu; the dispatcher stops: put starts none
	waiting bool          // guarded by mu; put waits on freed
	freed   chan struct{} // guarded by mu; closed (and dropped) by a release while waiting
}

func newQueue(maxLen int, maxBytes int64) *queue {
	return &queue{maxLen: maxLen, maxBytes: maxBytes}
}

// put adds ev, waiting while it does not fit: the queue holds maxLen
// events, and maxBytes of them unless it is empty (so an event larger than
// the budget still goes through). blocked is set while it waits. It
// returns false if ctx ended first.
func (q *queue) put(ctx context.Context, ev item, blocked *atomic.Bool) bool {
	n := ev.size()
	for waited := false; ; waited = true {
		q.mu.Lock()
		if q.len < q.maxLen && (q.bytes == 0 || q.bytes+n <= q.maxBytes) {
			q.items = append(q.items, ev)
			q.puts.Add(1)
			q.len++
			q.bytes += n
			wake := q.parked && !q.stopped && q.wake != nil
			if wake {
				q.parked = false
			}
			q.mu.Unlock()
			if waited {
				blocked.Store(false)
			}
			if wake {
				q.wake()
			}
			return true
		}
		q.waiting = true
		if q.freed == nil {
			q.freed = make(chan struct{})
		}
		freed := q.freed
		q.mu.Unlock()
		if !waited {
			blocked.Store(true)
		}
		select {
		case <-freed:
		case <-ctx.Done():
			blocked.Store(false)
			return false
		}
	}
}

// take swaps every event waiting, oldest first, into b (whose emptied
// array becomes the queue's for the next ones). With none waiting it
// empties b, lets a burst's arrays go, and parks: it reports true, and
// the calling dispatcher goroutine must exit without touching b again
// (the next put starts another, which takes b over). A stopped queue
// never parks.
func (q *queue) take(b *batch) (parked bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b.next = 0
	if len(q.items) == 0 {
		b.items = b.items[:0]
		if cap(b.items) > keepBatch {
			b.items = nil // idle: let a burst's array go
		}
		if cap(q.items) > keepBatch {
			q.items = nil
		}
		if q.stopped {
			return false
		}
		q.parked = true
		return true
	}
	b.items, q.items = q.items, b.items[:0]
	return false
}

// release gives back the room of one event of n bytes, taken by the
// dispatcher.
func (q *queue) release(n int64) {
	q.mu.Lock()
	q.len--
	q.bytes -= n
	if q.waiting {
		q.waiting = false
		close(q.freed)
		q.freed = nil
	}
	q.mu.Unlock()
}

// load gives the events and bytes in the queue.
func (q *queue) load() (n int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.len, q.bytes
}

func (d *dispatcher) handle(ev item) {
	c := d.c
	err, panicked := d.call(ev)
	if panicked || err != nil {
		c.update(func(s *Status) {
			if panicked {
				s.HandlerPanics++
			} else {
				s.HandlerErrors++
			}
		})
	}
	if d.hctx.Err() != nil {
		// Aborted at shutdown: the handler did not get to finish, so the
		// event is not committed and a restart redelivers it.
		c.log.Warn().Str("type", ev.Type).Uint64("seq", ev.Seq).Msg("handler aborted at shutdown; event left uncommitted")
		return
	}
	if err != nil {
		c.log.Error().Err(err).Str("type", ev.Type).Uint64("seq", ev.Seq).Str("id", ev.ID).Msg("handler failed; event counted as handled")
	}
	c.commit(ev)
	c.handled.Add(1) // last: once Handled counts it, its commit is done
}

func (d *dispatcher) call(ev item) (err error, panicked bool) {
	h := d.c.cfg.Handler
	if h == nil {
		return nil, false
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
			panicked = true
		}
	}()
	return h.HandleEvent(d.hctx, ev.Event), false
}

// commit marks ev handled and writes the committed seq (throttled) if ev
// belongs to the current session (see session.commit).
func (c *Client) commit(ev item) {
	if err := c.sess.commit(context.Background(), ev); err != nil {
		c.storeError(err, "save session record")
	}
}
