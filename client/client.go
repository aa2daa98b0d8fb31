package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/internal/resume"
	"github.com/qqgate/qqgate/sessionstore"
)

// Client keeps one bot account connected to the gateway and hands its
// events to a Handler. Create it with New, call Run once, stop it by
// cancelling Run's context or with Close (keeps the session resumable) or
// Logout (ends it). All methods are safe for concurrent use.
type Client struct {
	cfg      Config
	log      zerolog.Logger
	tokens   TokenSource
	store    SessionStore
	ownStore *sessionstore.MemoryStore // the store New made, when Config.Store is nil; closed by Run and Close
	limiter  *IdentifyLimiter

	// sleep waits d or until ctx ends; tests replace it.
	sleep        func(ctx context.Context, d time.Duration) error
	clock        clock         // the connections' time; tests replace it
	refreshEvery time.Duration // savedAt refresh while connected; tests shorten it
	minHeartbeat time.Duration // the heartbeat interval's floor; tests lower it
	dialTimeout  time.Duration // bounds the WebSocket dial and upgrade, and discovery without an HTTPClient timeout; tests shorten it

	running   atomic.Bool
	closed    atomic.Bool
	logout    atomic.Bool
	cancelMu  sync.Mutex
	cancelRun context.CancelCauseFunc
	runDone   chan struct{} // closed when the current Run returns

	mu     sync.Mutex // guards status
	status Status

	sess    *session      // the session's identity, seqs, dedupe window and record; its own lock
	handled atomic.Uint64 // Status.Handled
	queue   *queue

	dupMu     sync.Mutex // guards the duplicate report
	dupSince  int        // duplicates dropped since the last warning
	dupWarnAt time.Time  // the last warning
}

// errShutdown is the cancel cause Close uses.
var errShutdown = errors.New("client shutdown")

// New validates cfg and returns a Client. It does no I/O.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:          cfg,
		tokens:       cfg.TokenSource,
		store:        cfg.Store,
		limiter:      cfg.IdentifyLimiter,
		sleep:        sleepCtx,
		clock:        systemClock{},
		refreshEvery: savedAtRefresh,
		minHeartbeat: MinHeartbeatInterval,
		dialTimeout:  DefaultHTTPTimeout,
	}
	c.log = cfg.Logger.With().Str("account", cfg.AccountID).Logger()
	if cfg.Shard[1] > 1 {
		c.log = c.log.With().Ints("shard", cfg.Shard[:]).Logger()
	}
	if c.tokens == nil {
		c.tokens = NewAppTokenSource(cfg.AppID, cfg.ClientSecret, cfg.TokenURL, cfg.HTTPClient)
	}
	if c.store == nil {
		c.ownStore = sessionstore.NewMemoryStore()
		c.store = c.ownStore
	}
	if c.limiter == nil {
		c.limiter = NewIdentifyLimiter()
	}
	c.sess = newSession(c.store, cfg.AccountID, cfg.AppID, cfg.DedupeWindow)
	c.queue = newQueue(cfg.QueueSize, cfg.QueueBytes)
	c.status = Status{AccountID: cfg.AccountID, State: StateIdle}
	c.setLevel(0)
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns a snapshot of the client's state and counters.
func (c *Client) Status() Status {
	id, highest, committed := c.sess.view()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.SessionID = id
	s.LastSeqReceived = highest
	s.LastSeqHandled = committed
	s.QueueLength, s.QueueBytes = c.queue.load()
	s.Events = c.queue.puts.Load()
	s.Handled = c.handled.Load()
	return s
}

// update changes the status under the lock and reports a state change to
// OnStateChange.
func (c *Client) update(f func(*Status)) {
	c.mu.Lock()
	before := c.status.State
	f(&c.status)
	changed := c.status.State != before
	c.mu.Unlock()
	if changed && c.cfg.OnStateChange != nil {
		c.cfg.OnStateChange(c.Status())
	}
}

func (c *Client) setState(s State) { c.update(func(st *Status) { st.State = s }) }

// setLevel selects intent level i (clamped) and publishes it.
func (c *Client) setLevel(i int) {
	if i < 0 {
		i = 0
	}
	if i >= len(c.cfg.IntentLevels) {
		i = len(c.cfg.IntentLevels) - 1
	}
	l := c.cfg.IntentLevels[i]
	c.sess.setLevel(i)
	c.mu.Lock()
	c.status.IntentLevel = i
	c.status.IntentLevelName = l.Name
	c.status.Intents = uint32(l.Intents)
	c.status.Degraded = i > 0
	c.mu.Unlock()
}

func (c *Client) level() int { return c.sess.intentLevel() }

// Close shuts the client down gracefully and keeps the session resumable:
// the handler finishes the event in hand, the record is written,
// and the connection is closed with code 4000. It waits for Run to return
// or ctx to end. Close is idempotent; after it, Run returns ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	c.closed.Store(true)
	c.cancelMu.Lock()
	cancel, done := c.cancelRun, c.runDone
	c.cancelMu.Unlock()
	if cancel == nil {
		return c.closeOwnedStore()
	}
	cancel(errShutdown)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Logout ends the session for good: it closes the connection with 1000
// and deletes the session record, so the next start IDENTIFYs.
func (c *Client) Logout(ctx context.Context) error {
	c.logout.Store(true)
	if err := c.Close(ctx); err != nil {
		return err
	}
	// Run (if any) has returned; clearing again is harmless and covers a
	// Run that ended before Logout was called.
	return c.clearRecord(ctx)
}

func (c *Client) closeOwnedStore() error {
	if c.ownStore != nil {
		return c.ownStore.Close()
	}
	return nil
}

// Run connects and keeps the client connected until ctx ends, Close is
// called, or a fatal error occurs. It returns ctx's error, ErrClosed after
// Close, or the fatal error (a *CloseError, a *TokenError for a refused
// secret, or an error wrapping ErrGaveUp). No goroutine it started
// outlives it. Run may be called once.
func (c *Client) Run(ctx context.Context) (err error) {
	if c.closed.Load() {
		return ErrClosed
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	c.cancelMu.Lock()
	c.cancelRun, c.runDone = cancel, done
	c.cancelMu.Unlock()
	defer func() {
		c.closed.Store(true) // Run may be called once
		cancel(nil)
		if cerr := c.closeOwnedStore(); cerr != nil && err == nil {
			err = cerr
		}
		c.cancelMu.Lock()
		c.cancelRun = nil
		c.cancelMu.Unlock()
		close(done)
	}()
	if c.closed.Load() { // Close raced with the start of Run
		return ErrClosed
	}

	d := newDispatcher(c, c.queue)

	mode := c.loadRecord(runCtx)
	err = c.connectLoop(runCtx, d, mode)

	// Shutdown: a fatal error drains the queue (the events are here; handle
	// them), a cancel stops after the event in hand.
	c.setState(StateClosing)
	c.finish(d, err != nil && runCtx.Err() == nil)
	d.wait()
	if err != nil && runCtx.Err() == nil {
		c.update(func(s *Status) { s.State = StateFailed; s.LastError = err.Error() })
		c.log.Error().Err(err).Msg("stopped")
		return err
	}
	c.setState(StateClosed)
	if context.Cause(runCtx) == errShutdown {
		return ErrClosed
	}
	return ctx.Err()
}

// finish stops the dispatcher (draining the queue first when drain is
// set), bounded by ShutdownTimeout, then writes the record at once. It is
// idempotent: the connection's graceful close calls it before sending the
// close frame, Run calls it again.
func (c *Client) finish(d *dispatcher, drain bool) {
	if !d.beginStop(drain) {
		return
	}
	t := time.NewTimer(c.cfg.ShutdownTimeout)
	select {
	case <-d.done:
	case <-t.C:
		c.log.Warn().Dur("timeout", c.cfg.ShutdownTimeout).Msg("handler did not finish in time; cancelling it")
		d.abort()
		<-d.done
	}
	t.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	if c.logout.Load() {
		if err := c.clearRecord(ctx); err != nil {
			c.log.Error().Err(err).Msg("logout: clear session record")
		}
		return
	}
	c.persist(ctx, true)
	if err := c.store.Flush(ctx); err != nil {
		c.storeError(err, "flush session record")
	}
}

// newBackOff builds the reconnect backoff from Config.Backoff: exponential
// from Initial, factor 2, capped at Max, jittered, never giving up by
// itself; zero fields take the policy's defaults.
func (c *Client) newBackOff() *backoff.ExponentialBackOff {
	b := c.cfg.Backoff
	return resume.Backoff{Initial: b.Initial, Max: b.Max, Jitter: b.Jitter}.New(resume.DefaultBackoff)
}

// String describes the client for logs without secrets.
func (c *Client) String() string {
	return fmt.Sprintf("qqgate client (account %s, app %s)", c.cfg.AccountID, c.cfg.AppID)
}
