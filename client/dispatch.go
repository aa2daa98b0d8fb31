package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// dispatcher owns the goroutine that calls the Handler. It lives for the
// whole of Run, so events queued before a reconnect are still handled in
// order after it.
type dispatcher struct {
	c       *Client
	queue   chan item
	stopCh  chan struct{}
	stopped sync.Once
	drain   atomic.Bool
	done    chan struct{}
	hctx    context.Context
	hcancel context.CancelFunc

	sem      chan struct{}  // nil: one call at a time on the dispatcher goroutine
	inflight sync.WaitGroup // concurrent calls, when sem is set
	bytes    *byteBudget    // the queue's bytes, shared with the client
}

func newDispatcher(c *Client, queue chan item) *dispatcher {
	hctx, hcancel := context.WithCancel(context.Background())
	d := &dispatcher{c: c, queue: queue, stopCh: make(chan struct{}), done: make(chan struct{}), hctx: hctx, hcancel: hcancel, bytes: c.queueBytes}
	if n := c.cfg.HandlerConcurrency; n > 1 {
		d.sem = make(chan struct{}, n)
	}
	return d
}

// run handles events until stopped. Exit: beginStop was called (after the
// queue is drained, if asked) or abort.
func (d *dispatcher) run() {
	defer close(d.done)
	defer d.hcancel()
	defer d.inflight.Wait()
	for {
		select {
		case <-d.stopCh:
			if d.drain.Load() {
				d.drainQueue()
			}
			return
		default:
		}
		select {
		case <-d.stopCh:
		case ev := <-d.queue:
			d.bytes.release(ev.size())
			d.dispatch(ev)
		}
	}
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
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		defer func() { <-d.sem }()
		d.handle(ev)
	}()
}

func (d *dispatcher) drainQueue() {
	for d.hctx.Err() == nil {
		select {
		case ev := <-d.queue:
			d.bytes.release(ev.size())
			d.dispatch(ev)
		default:
			return
		}
	}
}

// beginStop asks the dispatcher to stop after the event in hand (or after
// the queue, with drain). It reports whether this call was the first.
func (d *dispatcher) beginStop(drain bool) bool {
	first := false
	d.stopped.Do(func() {
		first = true
		d.drain.Store(drain)
		close(d.stopCh)
	})
	return first
}

// abort cancels the context of the handler in hand.
func (d *dispatcher) abort() { d.hcancel() }

// enqueue hands ev to the dispatcher, waiting while the queue is full, in
// count or in bytes (backpressure on the reader). It returns false if ctx
// ended first.
func (d *dispatcher) enqueue(ctx context.Context, ev item, blocked *atomic.Bool) bool {
	n := ev.size()
	if !d.bytes.acquire(ctx, n, blocked) {
		return false
	}
	select {
	case d.queue <- ev:
		return true
	default:
	}
	blocked.Store(true)
	defer blocked.Store(false)
	select {
	case d.queue <- ev:
		return true
	case <-ctx.Done():
		d.bytes.release(n)
		return false
	}
}

// size is what an event counts against Config.QueueBytes.
func (e item) size() int64 { return int64(len(e.Data) + len(e.ID) + len(e.Type)) }

// byteBudget bounds the bytes of the events in the queue. It is safe for
// concurrent use.
type byteBudget struct {
	mu      sync.Mutex
	max     int64
	used    int64         // guarded by mu
	waiting bool          // guarded by mu; acquire waits on freed
	freed   chan struct{} // guarded by mu; closed (and replaced) by a release while waiting
}

func newByteBudget(max int64) *byteBudget {
	return &byteBudget{max: max, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting while they do not fit. An empty queue
// takes anything, so an event larger than the budget still goes through.
// It returns false if ctx ended first.
func (b *byteBudget) acquire(ctx context.Context, n int64, blocked *atomic.Bool) bool {
	for waited := false; ; waited = true {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			if waited {
				blocked.Store(false)
			}
			return true
		}
		b.waiting = true
		freed := b.freed
		b.mu.Unlock()
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

// release gives n bytes back.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.waiting {
		b.waiting = false
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

// load gives the bytes in use.
func (b *byteBudget) load() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
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
// belongs to the current session.
func (c *Client) commit(ev item) {
	if ev.Seq == 0 {
		return
	}
	// The epoch check and Handled are one step under c.mu, as is the
	// epoch bump and Set in startSession: an event of an older session
	// never marks a seq of the new one.
	c.mu.Lock()
	current := ev.epoch == c.sess.epoch
	if current {
		c.wm.Handled(ev.Seq)
	}
	c.mu.Unlock()
	if !current {
		return
	}
	// A throttled save only records the state; the store's timer writes it.
	c.persist(context.Background(), false)
}

// dedupe remembers the ids of recent events in a ring that grows up to its
// size, so an idle client costs next to nothing.
type dedupe struct {
	mu   sync.Mutex
	size int
	ring []string
	next int
	seen map[string]struct{}
}

func newDedupe(n int) *dedupe {
	return &dedupe{size: n, seen: map[string]struct{}{}}
}

// maxDedupeKey bounds the bytes the window keeps per id: longer ids (the
// gateway's are well under 100 bytes) are kept as their SHA-256.
const maxDedupeKey = 128

func dedupeKey(id string) string {
	if len(id) <= maxDedupeKey {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "\x00sha256:" + hex.EncodeToString(sum[:])
}

// add records id and reports whether it was new.
func (d *dedupe) add(id string) bool {
	id = dedupeKey(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.seen[id]; ok {
		return false
	}
	if len(d.ring) < d.size {
		d.ring = append(d.ring, id)
	} else {
		delete(d.seen, d.ring[d.next])
		d.ring[d.next] = id
		d.next = (d.next + 1) % d.size
	}
	d.seen[id] = struct{}{}
	return true
}

// remove forgets id, for an event that was never handed over. The ring
// slot stays until it is reused; a later add of the same id is new.
func (d *dedupe) remove(id string) {
	id = dedupeKey(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, id)
}

func (d *dedupe) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = map[string]struct{}{}
	d.ring = nil
	d.next = 0
}
