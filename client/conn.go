package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"

	"github.com/qqgate/qqgate/internal/resume"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// maxHeartbeatMillis bounds HELLO's heartbeat_interval (an hour): a larger
// one is a hostile or broken HELLO, not a heartbeat plan.
const maxHeartbeatMillis = 3_600_000

// MinHeartbeatInterval is the floor of the heartbeat interval: a HELLO
// asking for less (QQ's gateway asks for about 41 s) is obeyed at this
// pace instead, so a broken or hostile gateway cannot make the client
// write a heartbeat every millisecond.
const MinHeartbeatInterval = time.Second

// savedAtRefresh is how often the record is rewritten while connected
// with no events (the record's savedAt must be refreshed at least once a
// minute).
const savedAtRefresh = 30 * time.Second

// closeGraceful is the code of our own graceful closes, meant to keep the
// session resumable on the server, where 1000/1001 may end it. This is an
// assumption carried over from Discord's gateway, which QQ's is modelled
// on: nothing in QQ's documentation says which client close code keeps a
// session (4000 is even the server's "unknown error" there). It is kept
// because it has caused no harm; see the comment where it is sent.
const closeGraceful = websocket.StatusCode(wire.CloseUnknownError)

// attempt is the outcome of one connection attempt.
type attempt struct {
	sig         resume.Signal // what ended the WebSocket, when one was open
	opened      bool          // a WebSocket was open (sig is meaningful)
	established bool          // READY or RESUMED arrived
	tooBig      bool          // it ended on a frame larger than MaxMessageBytes
	rateLimited bool          // the pre-connection failure asks to slow down
	err         error         // a pre-connection failure, or a fatal error
	fatal       bool
}

// reconnects is the state of the reconnect loop, owned by connectLoop's
// goroutine. The policy (resume) decides, counts included; the loop
// applies its decisions.
type reconnects struct {
	c      *Client
	st     resume.State
	bo     *backoff.ExponentialBackOff
	delays resume.Delays
}

// connectLoop connects, and reconnects per the reconnect policy, until ctx
// ends (nil) or a fatal error (returned).
//
// Its goroutine reads each connection (see connection), parked there for
// as long as the connection lives with every frame on the way on its
// stack: the work between attempts is in reconnects' methods, so that
// this frame stays small.
func (c *Client) connectLoop(ctx context.Context, d *dispatcher, mode resume.Mode) error {
	r := c.newReconnects(mode)
	for n := 0; ; n++ {
		r.begin(ctx, n)
		a := c.attempt(ctx, d, &r.st, r.bo)
		if done, err := r.end(ctx, a); done {
			return err
		}
	}
}

func (c *Client) newReconnects(mode resume.Mode) *reconnects {
	r := &reconnects{c: c, bo: c.newBackOff(),
		delays: resume.Delays{InvalidSession: c.cfg.InvalidSessionDelay, RateLimit: c.cfg.RateLimitDelay},
		st:     resume.NewState(mode == resume.Resume, c.level(), len(c.cfg.IntentLevels))}
	r.st.MaxAuthFailures = c.cfg.MaxAuthFailures
	r.st.MaxAttempts = c.cfg.Backoff.MaxAttempts
	return r
}

// begin prepares the n-th attempt (from 0).
func (r *reconnects) begin(ctx context.Context, n int) {
	c := r.c
	if n > 0 {
		c.update(func(s *Status) { s.Reconnects++ })
	}
	c.setState(StateConnecting)
	r.expire(ctx)
	r.st = resume.NewConnection(r.st, r.st.Mode)
}

// end applies the end of an attempt and waits before the next one; done
// ends the loop, with the error that ends Run (nil when ctx ended).
func (r *reconnects) end(ctx context.Context, a attempt) (done bool, err error) {
	c := r.c
	if ctx.Err() != nil {
		return true, nil
	}
	wait, reason, err := r.decide(ctx, a)
	if err != nil {
		return true, err
	}
	c.update(func(s *Status) { s.State = StateWaiting; s.NextRetry = wait })
	c.log.Warn().Int("failures", r.st.Failures).Dur("delay", wait).Stringer("next", r.st.Mode).
		Msg("disconnected: " + reason)
	if err := c.sleep(ctx, wait); err != nil {
		return true, nil
	}
	c.update(func(s *Status) { s.NextRetry = 0 })
	return false, nil
}

// expire drops a session no longer valid for RESUME before the next
// attempt. Resumes are retried while the session is valid, however often
// they are cut short; past that, the server has most likely dropped it.
func (r *reconnects) expire(ctx context.Context) {
	if r.st.Mode != resume.Resume || !r.c.sessionExpired() {
		return
	}
	r.c.log.Warn().Dur("expiry", sessionstore.Expiry).Msg("no connection of the session alive for too long; the session is dropped and a new one identified")
	r.c.clearSession(ctx)
	r.st.HasSession = false
}

// signal is what ended the attempt, for the policy.
func (r *reconnects) signal(a attempt) resume.Signal {
	switch {
	case a.opened:
		sig := a.sig
		if a.tooBig {
			sig.Oversized, sig.Seq = true, r.c.sess.highest()
		}
		return sig
	case a.rateLimited:
		return resume.Signal{Kind: resume.SigTooManyRequests, Reason: a.err.Error()}
	}
	return resume.Signal{Kind: resume.SigDialFailed, Reason: a.err.Error()}
}

// decide asks the policy what the end of an attempt leads to and applies
// the decision: it gives the wait before the next attempt and the reason
// for the log, or the error that ends Run.
func (r *reconnects) decide(ctx context.Context, a attempt) (time.Duration, string, error) {
	if a.fatal {
		return 0, "", a.err
	}
	resumed := r.st.Mode == resume.Resume
	dec, next := resume.End(r.st, r.signal(a))
	r.st = next
	if err := r.fatal(dec, a); err != nil {
		return 0, "", err
	}
	if !a.opened {
		r.c.update(func(s *Status) { s.LastError = a.err.Error() })
	} else if resumed && !a.established {
		r.c.update(func(s *Status) { s.FailedResumes++ })
	}
	r.apply(ctx, dec)
	wait := r.wait(dec.Wait)
	r.st.HasSession = r.c.sess.held() != ""
	if !r.st.HasSession {
		r.st.Mode = resume.Identify
	}
	return wait, dec.Reason, nil
}

// fatal gives the error of a fatal decision: a *ConnectError wrapping
// ErrGaveUp after Backoff.MaxAttempts failed attempts, a *CloseError for
// a close code that ends Run.
func (r *reconnects) fatal(dec resume.Decision, a attempt) error {
	switch {
	case dec.GaveUp:
		cause := a.err
		if cause == nil {
			cause = errors.New(a.sig.Reason)
		}
		// Both wrapped: errors.Is finds ErrGaveUp, errors.As the last
		// attempt's cause (a *TokenError, *GatewayError, ...).
		return &ConnectError{Attempt: r.st.Failures, Err: fmt.Errorf("%w after %d attempts: %w", ErrGaveUp, r.st.Failures, cause)}
	case dec.Action == resume.ActFatal:
		return &CloseError{Code: a.sig.Code, Reason: a.sig.Reason, Why: dec.Reason}
	}
	return nil
}

// apply carries out a decision's effects on the session, the token and
// the intent level.
func (r *reconnects) apply(ctx context.Context, dec resume.Decision) {
	c := r.c
	if dec.Oversized > 0 {
		r.oversized(dec)
	}
	if dec.ClearSession {
		c.clearSession(ctx)
	}
	if dec.RefreshToken {
		c.tokens.Invalidate()
	}
	if dec.StepDown {
		c.setLevel(r.st.IntentLevel)
		l := c.cfg.IntentLevels[r.st.IntentLevel]
		c.log.Warn().Int("intent_level", r.st.IntentLevel).Str("intent_level_name", l.Name).Stringer("intents", l.Intents).
			Msg("gateway rejected the intents; stepping down one intent level (degraded)")
	}
}

// oversized reports a connection that ended on a frame larger than
// MaxMessageBytes. The first time, the RESUME gets one more try; the
// second time in a row after the same seq, the policy drops the session
// (RESUME replays the same frame): loudly, since the events of the old
// session after that seq are lost.
func (r *reconnects) oversized(dec resume.Decision) {
	c := r.c
	c.update(func(s *Status) { s.OversizedFrames++ })
	seq := r.st.OversizedAt
	if dec.Oversized < 2 {
		c.log.Warn().Uint64("after_seq", seq).Int64("max_message_bytes", c.cfg.MaxMessageBytes).
			Msg("a gateway frame exceeds MaxMessageBytes; resuming once more")
		return
	}
	c.log.Error().Uint64("after_seq", seq).Int64("max_message_bytes", c.cfg.MaxMessageBytes).
		Msg("a frame over MaxMessageBytes came again after this seq: session dropped, a new one identified; its events after this seq are lost (raise MaxMessageBytes to keep them)")
}

// wait gives the wait a decision stands for, with the configured delays.
func (r *reconnects) wait(w resume.Wait) time.Duration {
	return w.Delay(r.bo, r.delays, rand.Float64())
}

// attempt fetches a token, discovers the gateway, dials and runs one
// connection until it ends.
//
// The token, discovery and dial run on a goroutine of their own, which
// this one waits for: HTTP and the WebSocket upgrade grow a deep stack,
// and this goroutine then reads the connection, parked for its whole life
// with whatever stack it grew before.
func (c *Client) attempt(ctx context.Context, d *dispatcher, st *resume.State, bo *backoff.ExponentialBackOff) attempt {
	var (
		ws    *websocket.Conn
		token string
		a     attempt
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ws, token, a = c.open(ctx, st)
	}()
	<-done
	if ws == nil {
		return a
	}
	return c.runConn(ctx, ws, token, d, st, bo)
}

// open fetches a token, discovers the gateway and dials it: a WebSocket
// and its token, or the attempt's failure.
func (c *Client) open(ctx context.Context, st *resume.State) (*websocket.Conn, string, attempt) {
	token, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, "", c.preFailure(err)
	}
	gw, err := c.discover(ctx, token)
	if err != nil {
		var ge *GatewayError
		if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized {
			c.tokens.Invalidate()
		}
		return nil, "", c.preFailure(err)
	}
	c.limiter.update(c.cfg.AppID, gw.SessionStartLimit)
	identify := st.Mode != resume.Resume || c.sess.held() == ""
	if identify {
		// Wait for the identify budget before dialing, not on an open and
		// silent socket the server would drop.
		maxConc := 1
		if gw.SessionStartLimit != nil {
			maxConc = gw.SessionStartLimit.MaxConcurrency
		}
		if wait := c.limiter.reserve(c.cfg.AppID, maxConc); wait > 0 {
			c.log.Info().Dur("wait", wait).Msg("waiting for the identify budget")
			if err := c.sleep(ctx, wait); err != nil {
				return nil, "", attempt{err: err}
			}
		}
	}
	// The dial and upgrade have a deadline of their own: a caller's
	// HTTPClient may have no Timeout, and a gateway that accepts the TCP
	// connection and never answers must not hang the client.
	dialCtx, cancelDial := context.WithTimeout(ctx, c.dialTimeout)
	ws, _, err := websocket.Dial(dialCtx, gw.URL, &websocket.DialOptions{
		HTTPClient: c.cfg.HTTPClient,
		HTTPHeader: http.Header{"User-Agent": {defaultUserAgent}},
	})
	cancelDial()
	if err != nil {
		return nil, "", c.preFailure(fmt.Errorf("dial gateway: %w", redactErr(err)))
	}
	ws.SetReadLimit(c.cfg.MaxMessageBytes)
	c.update(func(s *Status) { s.Connects++ })
	return ws, token, attempt{}
}

func (c *Client) preFailure(err error) attempt {
	var te *TokenError
	switch {
	case errors.Is(err, ErrRateLimited):
		return attempt{err: err, rateLimited: true}
	case errors.As(err, &te) && !te.Temporary():
		return attempt{err: err, fatal: true}
	case errors.Is(err, ErrConfig):
		return attempt{err: err, fatal: true}
	}
	return attempt{err: err}
}

// connection runs the protocol on one open WebSocket: HELLO, IDENTIFY or
// RESUME, heartbeats, control ops, and the end. It is event-driven, so an
// idle connection parks one goroutine, its reader:
//
//   - The reader is the goroutine that called runConn (Run's). It reads
//     frames, hands dispatches to the queue itself (waiting when it is
//     full: backpressure) and handles control frames inline, in the order
//     they arrived: those read before the end come first.
//   - The timers (the HELLO and READY/RESUMED timeouts, heartbeats, the
//     stable timer, the savedAt refresh, the wait after a failed write)
//     are callbacks of the connection's clock, each run on a goroutine of
//     its own. A heartbeat goes out from its callback: a handler slower
//     than the gateway pauses reading, never the heartbeat that keeps the
//     session alive.
//   - The end of Run's context runs the graceful shutdown on a goroutine
//     of its own (context.AfterFunc); the reader reads on until the close
//     answer, and end waits for the shutdown.
//
// The fields under mu are shared by these (and by READY's record write,
// see onConnected); mu is never held across a
// blocking wait other than a bounded write, nor while the dispatcher is
// stopped or the socket closed. A callback that ends the connection
// records its signal (the first one recorded wins) and aborts: it closes
// the socket, which ends the reader's blocked read, and ends queueCtx, a
// wait on a full queue; the reader then ends with the recorded signal.
// Once the shutdown began (closing) or the connection ended (sigSet,
// over), callbacks do nothing.
type connection struct {
	c     *Client
	ctx   context.Context // Run's: its end is a graceful shutdown
	ws    *websocket.Conn
	d     *dispatcher
	st    *resume.State // guarded by mu until end
	bo    *backoff.ExponentialBackOff
	token string
	// writeCtx bounds writes. It is not Run's context: a write cut by
	// cancellation would drop the TCP connection without the close frame
	// of a graceful shutdown.
	writeCtx     context.Context
	queueCtx     context.Context // ends a wait on a full queue: Run's end or an abort
	cancel       func()          // ends queueCtx
	stopShutdown func() bool     // unregisters the shutdown from Run's context
	shutdownDone chan struct{}   // closed once the shutdown has run

	// Owned by the reader.
	replaying bool  // from a RESUME until RESUMED: the events between are replays
	readErr   error // why reading ended

	frames  atomic.Uint64 // frames read
	blocked atomic.Bool   // the reader waits on a full queue
	// progress counts dispatches that moved the session on (a new seq):
	// what the READY/RESUMED timeout accepts as progress, unlike
	// heartbeat ACKs or replays of seqs already received.
	progress atomic.Uint64

	mu sync.Mutex
	bg sync.WaitGroup // record writes begun under mu; waited for by the shutdown and end
	// callbacks counts the timer callbacks armed or running; end waits for
	// it, so no callback outlives the connection (nor Run).
	callbacks sync.WaitGroup

	closing  bool    // the shutdown began
	over     bool    // end began
	a        attempt // the outcome so far
	sigSet   bool    // a.sig is recorded: the connection ends with it
	writeErr error   // a write failed: failT waits for the reader's reason
	failT    *callback

	helloT   *callback // from the upgrade to HELLO
	helloed  bool
	interval time.Duration // the heartbeat interval, from HELLO
	beatT    *callback     // the next heartbeat
	// lastBeat is when the last beat went out (zero before any): the
	// beat's RTT, and the beat timer it armed is due one interval later.
	lastBeat     time.Time
	framesAtBeat uint64 // frames at the last beat, for the zombie check
	// blockedAtBeat: the reader waited on a full queue at the last beat,
	// so that beat's ACK may still be unread; the next beat does not judge.
	blockedAtBeat bool

	readyT          *callback // from IDENTIFY/RESUME to READY/RESUMED
	progressAtReady uint64    // progress when readyT was last armed
	stableT         *callback // from READY/RESUMED to StableAfter
	refreshT        *callback // the savedAt refresh while connected

	// writing: a goroutine writes the record of READY/RESUMED (connected);
	// again: READY/RESUMED came again during that write, which the same
	// goroutine then writes too (the event's name), so repeats of them
	// never park a goroutine each.
	writing bool
	again   string
}

// runConn runs the protocol on an open WebSocket until it ends; the
// calling goroutine is the connection's reader (see connection).
func (c *Client) runConn(ctx context.Context, ws *websocket.Conn, token string, d *dispatcher, st *resume.State, bo *backoff.ExponentialBackOff) (a attempt) {
	k := c.openConnection(ctx, ws, token, d, st, bo)
	defer func() { a = k.end() }()
	k.read()
	return
}

// openConnection arms the HELLO timeout and registers the graceful
// shutdown on Run's context.
func (c *Client) openConnection(ctx context.Context, ws *websocket.Conn, token string, d *dispatcher, st *resume.State, bo *backoff.ExponentialBackOff) *connection {
	queueCtx, cancel := context.WithCancel(ctx)
	k := &connection{c: c, ctx: ctx, ws: ws, d: d, st: st, bo: bo, token: token,
		writeCtx: context.WithoutCancel(ctx), queueCtx: queueCtx, cancel: cancel,
		shutdownDone: make(chan struct{}), a: attempt{opened: true}}
	k.replaying = st.Mode == resume.Resume && c.sess.held() != ""
	k.mu.Lock()
	k.helloT = k.afterLocked(c.cfg.HelloTimeout, k.onHelloTimeout)
	k.mu.Unlock()
	k.stopShutdown = context.AfterFunc(ctx, k.shutdown)
	return k
}

// end runs on the reader once reading ended: it stops the callbacks, gives
// the attempt's outcome, and closes the connection at once unless the
// shutdown closes it gracefully, which end waits for.
//
// A connection that ends after Run's context did is closed gracefully
// all the same: the reader stops on that cancellation too (when it waits
// on a full queue), so it may end before the shutdown is done. Dropping
// the socket then would skip the close frame a stop must send.
func (k *connection) end() attempt {
	k.mu.Lock()
	k.over = true
	for _, t := range []*callback{k.helloT, k.beatT, k.readyT, k.stableT, k.refreshT, k.failT} {
		if t != nil {
			t.Stop()
		}
	}
	if !k.sigSet && !k.closing {
		k.a.sig = k.readerSignal()
	}
	k.mu.Unlock()
	k.callbacks.Wait() // those already running see over and return
	k.bg.Wait()
	if k.stopShutdown() {
		k.ws.CloseNow()
	} else {
		<-k.shutdownDone
	}
	k.cancel()
	k.a.tooBig = errors.Is(k.readErr, websocket.ErrMessageTooBig)
	if k.a.established {
		k.c.alive() // the session's last sign of life is the end of this connection
	}
	return k.a
}

// readerSignal gives the signal of the reader's end, when no callback
// recorded one: the close frame that ended the connection, or else the
// failed write that ended it, or else the read error.
func (k *connection) readerSignal() resume.Signal {
	var ce websocket.CloseError
	if k.writeErr != nil && !errors.As(k.readErr, &ce) {
		return k.c.signalOf(k.writeErr)
	}
	return k.c.signalOf(k.readErr)
}

// activeLocked reports whether the connection still runs: callbacks act
// only then.
func (k *connection) activeLocked() bool { return !k.closing && !k.over && !k.sigSet }

// recordLocked records sig as the connection's end, unless it no longer
// runs; true if recorded, when a callback must abort.
func (k *connection) recordLocked(sig resume.Signal) bool {
	if !k.activeLocked() {
		return false
	}
	k.a.sig, k.sigSet = sig, true
	return true
}

// abort ends the reader's wait, on the socket or on a full queue, after a
// callback recorded the connection's end. Called without mu.
func (k *connection) abort() {
	k.cancel()
	k.ws.CloseNow()
}

// callback is a timer of the connection's clock whose runs are counted
// in connection.callbacks: one count while it is armed, held by the run
// once it fires, given back by a Stop that disarms it. It is armed (made,
// reset) only under mu while the connection runs, so every count is
// taken before end waits for them.
type callback struct {
	t  timer
	wg *sync.WaitGroup
}

// afterLocked arms f to run d from now, counted.
func (k *connection) afterLocked(d time.Duration, f func()) *callback {
	k.callbacks.Add(1)
	return &callback{wg: &k.callbacks, t: k.c.clock.AfterFunc(d, func() {
		defer k.callbacks.Done()
		f()
	})}
}

// Reset arms the callback to run d from now; a callback that had run or
// was stopped is counted again.
func (cb *callback) Reset(d time.Duration) {
	if !cb.t.Reset(d) {
		cb.wg.Add(1)
	}
}

// Stop disarms the callback; a run already started goes on (end waits
// for it).
func (cb *callback) Stop() {
	if cb.t.Stop() {
		cb.wg.Done()
	}
}

// send writes one frame, within a bounded time.
func (k *connection) send(op wire.Opcode, payload any) error {
	b, err := wire.EncodeFrame(op, payload)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(k.writeCtx, 10*time.Second)
	defer cancel()
	return k.ws.Write(wctx, websocket.MessageText, b)
}

// onHelloTimeout, a callback: HELLO must come within HelloTimeout.
func (k *connection) onHelloTimeout() {
	k.mu.Lock()
	first := !k.helloed && k.recordLocked(resume.Signal{Kind: resume.SigNetwork, Reason: "no HELLO within " + k.c.cfg.HelloTimeout.String()})
	k.mu.Unlock()
	if first {
		k.abort()
	}
}

// onHelloLocked handles HELLO, on the reader: it starts the heartbeat and
// sends IDENTIFY or RESUME. false: a HELLO without a usable interval ends
// the connection.
func (k *connection) onHelloLocked(d json.RawMessage) bool {
	var hello wire.Hello
	if err := json.Unmarshal(d, &hello); err != nil || hello.HeartbeatInterval <= 0 || hello.HeartbeatInterval > maxHeartbeatMillis {
		k.recordLocked(resume.Signal{Kind: resume.SigNetwork, Reason: "HELLO without a heartbeat interval"})
		return false
	}
	k.helloed = true
	k.helloT.Stop()
	k.startHeartbeatLocked(hello)
	if err := k.handshakeLocked(); err != nil {
		k.writeFailedLocked(err)
	}
	return true
}

// startHeartbeatLocked starts the heartbeat clock at HELLO. The first beat
// goes out when READY/RESUMED arrives or one interval after HELLO,
// whichever comes first, never earlier: the docs say to heartbeat once
// authenticated, and a beat between IDENTIFY/RESUME and its answer may be
// refused (4003). Then one every interval.
func (k *connection) startHeartbeatLocked(hello wire.Hello) {
	k.interval = time.Duration(hello.HeartbeatInterval) * time.Millisecond
	if k.interval < k.c.minHeartbeat {
		k.c.log.Warn().Dur("asked", k.interval).Dur("used", k.c.minHeartbeat).Msg("HELLO's heartbeat interval is below the floor; using the floor")
		k.interval = k.c.minHeartbeat
	}
	k.beatT = k.afterLocked(k.interval, k.onBeatDue)
}

// beatLocked schedules the next beat one interval from now, then sends
// this one (in that order, so a test that saw the beat arrive knows the
// next one is scheduled). Its d is the highest seq received, null before
// any. true: the failed write ended the connection, the caller aborts.
func (k *connection) beatLocked() bool {
	now := k.c.clock.Now() // before the timer is armed: it is due no earlier than lastBeat+interval
	k.beatT.Reset(k.interval)
	var payload json.RawMessage = []byte("null")
	if seq := k.c.sess.highest(); seq > 0 {
		payload = json.RawMessage(fmt.Appendf(nil, "%d", seq))
	}
	k.lastBeat = now
	k.framesAtBeat = k.frames.Load()
	k.blockedAtBeat = k.blocked.Load()
	if err := k.send(wire.OpHeartbeat, payload); err != nil {
		return k.writeFailedLocked(err)
	}
	return false
}

// beatenLocked reports whether a beat went out on this connection.
func (k *connection) beatenLocked() bool { return !k.lastBeat.IsZero() }

// onBeatDue, a callback, sends the beat that is due, unless the
// connection is a zombie: nothing at all arrived since the previous beat
// (a reader waiting on a full queue has frames in hand, so it is no
// zombie; nor is one that waited through the previous beat, whose ACK it
// may not have read yet). A run that finds a beat sent since the timer
// fired (the server's op 1, the first beat at READY, each re-arming the
// timer while this run waited for mu) is stale: that beat is too recent
// to judge, and the timer it armed runs again.
func (k *connection) onBeatDue() {
	k.mu.Lock()
	if !k.activeLocked() || k.c.clock.Now().Before(k.lastBeat.Add(k.interval)) {
		k.mu.Unlock()
		return
	}
	var abort bool
	if k.beatenLocked() && k.frames.Load() == k.framesAtBeat && !k.blocked.Load() && !k.blockedAtBeat {
		k.c.log.Warn().Dur("interval", k.interval).Msg("no frame since the last heartbeat; zombie connection")
		abort = k.recordLocked(resume.Signal{Kind: resume.SigZombie, Reason: "no heartbeat ACK"})
	} else {
		abort = k.beatLocked()
	}
	k.mu.Unlock()
	if abort {
		k.abort()
	}
}

// handshakeLocked sends RESUME when the policy says so and a session is
// held, IDENTIFY otherwise, then arms the READY/RESUMED timeout and the
// savedAt refresh.
func (k *connection) handshakeLocked() error {
	c := k.c
	sessionID := c.sess.held()
	var err error
	if k.st.Mode == resume.Resume && sessionID != "" {
		err = k.sendResume(sessionID)
	} else {
		k.st.Mode = resume.Identify
		err = k.sendIdentify()
	}
	if err != nil {
		return err
	}
	k.readyT = k.afterLocked(c.cfg.ReadyTimeout, k.onReadyTimeout)
	k.progressAtReady = k.progress.Load()
	// The record's savedAt is refreshed while connected, so its expiry
	// counts from when the connection was last known alive, whatever the
	// heartbeat interval.
	k.refreshT = k.afterLocked(c.refreshEvery, k.onRefresh)
	return nil
}

func (k *connection) sendResume(sessionID string) error {
	seq := k.c.sess.highest()
	k.c.setState(StateResuming)
	if err := k.send(wire.OpResume, wire.Resume{Token: wire.TokenPrefix + k.token, SessionID: sessionID, Seq: seq}); err != nil {
		return err
	}
	k.c.log.Info().Str("session", sessionID).Uint64("seq", seq).Msg("RESUME sent")
	return nil
}

func (k *connection) sendIdentify() error {
	c := k.c
	l := c.cfg.IntentLevels[c.level()]
	c.update(func(s *Status) { s.State = StateIdentifying; s.Identifies++ }) // counted before READY can race in
	if err := k.send(wire.OpIdentify, wire.Identify{Token: wire.TokenPrefix + k.token, Intents: uint32(l.Intents), Shard: c.cfg.Shard}); err != nil {
		return err
	}
	c.log.Info().Str("intent_level", l.Name).Stringer("intents", l.Intents).Msg("IDENTIFY sent")
	return nil
}

// failedWait is how long a failed write waits for the reader's reason.
const failedWait = 2 * time.Second

// writeFailedLocked handles a failed write. The reader usually knows the
// better reason: the close frame that ended the connection; it is given
// failedWait, on the connection's clock, to learn it (then the write's
// error ends the connection). A reader waiting on a full queue, not on
// the socket, will learn nothing more: the write's error ends the
// connection at once, and true says the caller must abort.
func (k *connection) writeFailedLocked(err error) bool {
	if k.writeErr != nil || !k.activeLocked() {
		return false
	}
	if k.blocked.Load() {
		return k.recordLocked(k.c.signalOf(err))
	}
	k.writeErr = err
	k.failT = k.afterLocked(failedWait, k.onFailedWait)
	return false
}

// onFailedWait, a callback: the reader learned no better reason for a
// failed write within failedWait, so the write's error ends the
// connection.
func (k *connection) onFailedWait() {
	k.mu.Lock()
	first := k.activeLocked() && k.recordLocked(k.c.signalOf(k.writeErr))
	k.mu.Unlock()
	if first {
		k.abort()
	}
}

// onReadyTimeout, a callback: READY/RESUMED must come within ReadyTimeout
// of IDENTIFY/RESUME. A long replay in front of RESUMED is progress, not
// a stall, and so is a replay waiting on a full queue; heartbeat ACKs and
// anything else are not, or a server that answers heartbeats and never
// READY would hold the client forever.
func (k *connection) onReadyTimeout() {
	k.mu.Lock()
	if !k.activeLocked() || k.a.established {
		k.mu.Unlock()
		return
	}
	if n := k.progress.Load(); n != k.progressAtReady || k.blocked.Load() {
		k.progressAtReady = n
		k.readyT.Reset(k.c.cfg.ReadyTimeout)
		k.mu.Unlock()
		return
	}
	first := k.recordLocked(resume.Signal{Kind: resume.SigNetwork, Reason: "no READY/RESUMED within " + k.c.cfg.ReadyTimeout.String()})
	k.mu.Unlock()
	if first {
		k.abort()
	}
}

// onStable, a callback: the connection stayed up StableAfter, so the
// backoff starts over.
func (k *connection) onStable() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.activeLocked() {
		k.bo.Reset()
		k.st.Stable = true
	}
}

// onRefresh, a callback, keeps the record's savedAt fresh while
// connected. The write runs outside mu, counted in bg, so the shutdown's
// own record write comes after it.
func (k *connection) onRefresh() {
	k.mu.Lock()
	if !k.activeLocked() {
		k.mu.Unlock()
		return
	}
	k.refreshT.Reset(k.c.refreshEvery)
	write := k.a.established
	if write {
		k.bg.Add(1)
	}
	k.mu.Unlock()
	if write {
		defer k.bg.Done()
		k.c.alive()
		k.c.persist(k.ctx, false)
	}
}

// onControlLocked handles a control frame, on the reader, in the order
// read. false ends reading. During the shutdown, control frames are
// ignored: the reader reads on until the close answer.
func (k *connection) onControlLocked(op wire.Opcode, d json.RawMessage) bool {
	if !k.activeLocked() {
		return true
	}
	if !k.helloed {
		if op != wire.OpHello {
			k.c.log.Debug().Stringer("op", op).Msg("frame before HELLO ignored")
			return true
		}
		return k.onHelloLocked(d)
	}
	switch op {
	case wire.OpHeartbeatACK:
		k.onHeartbeatACKLocked()
	case wire.OpHeartbeat: // the server asks for a beat now
		return !k.beatLocked()
	case wire.OpReconnect, wire.OpInvalidSession:
		// Op 7 or op 9 and the close that follows (4009, 4903, 4006)
		// are one event: the op decides what comes next (the 4903 after
		// an intent rejection must not hide its op 9), so reading stops.
		sig, _ := ctrlSignal(op, d)
		k.recordLocked(sig)
		return false
	default:
		k.c.log.Debug().Stringer("op", op).Msg("unexpected frame ignored")
	}
	return true
}

// onHeartbeatACKLocked records the ACK and the beat's round trip.
func (k *connection) onHeartbeatACKLocked() {
	var rtt time.Duration
	if !k.lastBeat.IsZero() {
		rtt = k.c.clock.Now().Sub(k.lastBeat)
	}
	k.c.update(func(s *Status) { s.HeartbeatRTT = rtt; s.HeartbeatACKs++ })
}

// onConnected handles READY or RESUMED on the reader, once the event is
// queued: the connection is established and the stable timer started.
// The record write and then the first beat (if none went out yet) run on
// a goroutine of their own, counted in bg, so reading goes on during the
// write, as does the rest of the connection. Ignored once the connection
// no longer runs.
func (k *connection) onConnected(event string) {
	c := k.c
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.activeLocked() {
		return
	}
	if !k.helloed { // queued all the same, but no handshake was made
		c.log.Debug().Str("event", event).Msg("frame before HELLO ignored")
		return
	}
	if k.readyT != nil {
		k.readyT.Stop()
	}
	k.a.established = true
	*k.st = resume.Established(*k.st, k.st.Mode)
	now := c.clock.Now()
	c.sess.markConnected(now)
	c.update(func(s *Status) {
		s.State = StateConnected
		s.ConnectedSince = now
		s.LastError = ""
	})
	if k.stableT == nil {
		k.stableT = k.afterLocked(c.cfg.StableAfter, k.onStable)
	}
	if k.writing {
		k.again = event
		return
	}
	k.writing = true
	k.bg.Add(1)
	go k.connected(event)
}

// connected writes the record of an established connection, again for
// each READY/RESUMED that came during the write, then sends the first
// beat if none went out yet (see onConnected).
func (k *connection) connected(event string) {
	defer k.bg.Done()
	c := k.c
	var abort bool
	for event != "" {
		c.persist(k.ctx, true)
		c.log.Info().Str("event", event).Str("session", c.Status().SessionID).
			Uint64("seq", c.sess.highest()).Str("intent_level", c.cfg.IntentLevels[c.level()].Name).Msg("connected")
		k.mu.Lock()
		event, k.again = k.again, ""
		if !k.activeLocked() {
			event = ""
		}
		if event == "" {
			k.writing = false
			abort = k.activeLocked() && !k.beatenLocked() && k.beatLocked()
		}
		k.mu.Unlock()
	}
	if abort {
		k.abort()
	}
}

// shutdown is the graceful close, run on a goroutine of its own when
// Run's context ends: from then on callbacks do nothing and the reader
// ignores control frames. The handler finishes the event in hand, the
// record is written, then the connection is closed with 4000 (1000 for a
// logout).
func (k *connection) shutdown() {
	defer close(k.shutdownDone)
	k.mu.Lock()
	k.closing = true
	k.mu.Unlock()
	k.bg.Wait()
	k.c.setState(StateClosing)
	k.c.finish(k.d, false)
	// 4000 to keep the session resumable is a Discord-derived assumption:
	// QQ's docs do not say which client close code keeps a session, and
	// its SDKs close with 1000 or just drop the socket. If 4000 ever turns
	// out to end the session, the next start's RESUME is refused and the
	// client identifies a new session, as after any expired one.
	code, reason := closeGraceful, "qqgate shutting down"
	if k.c.logout.Load() {
		code, reason = websocket.StatusNormalClosure, "qqgate logout"
	}
	if err := k.ws.Close(code, reason); err != nil {
		k.c.log.Debug().Err(err).Msg("close handshake")
	}
}

// ctrlSignal gives the signal of op 7 RECONNECT or op 9 INVALID_SESSION;
// false for any other frame.
func ctrlSignal(op wire.Opcode, d json.RawMessage) (resume.Signal, bool) {
	switch op {
	case wire.OpReconnect:
		return resume.Signal{Kind: resume.SigReconnect, Reason: "server sent op 7 RECONNECT"}, true
	case wire.OpInvalidSession:
		var canResume bool
		_ = json.Unmarshal(d, &canResume)
		return resume.Signal{Kind: resume.SigInvalidSession, CanResume: canResume,
			Reason: fmt.Sprintf("server sent op 9 INVALID_SESSION d=%v", canResume)}, true
	}
	return resume.Signal{}, false
}

// signalOf turns a read or write error into the signal for the policy.
func (c *Client) signalOf(err error) resume.Signal {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		code := wire.CloseCode(ce.Code)
		c.update(func(s *Status) { s.LastCloseCode = code; s.LastCloseReason = ce.Reason })
		return resume.Signal{Kind: resume.SigClose, Code: code, Reason: ce.Reason}
	}
	c.update(func(s *Status) { s.LastCloseCode = wire.CloseAbnormal; s.LastCloseReason = "" })
	reason := "connection lost"
	if err != nil {
		reason = err.Error()
	}
	return resume.Signal{Kind: resume.SigNetwork, Code: wire.CloseAbnormal, Reason: reason}
}

// maxSeqJump is how far above the highest seq seen a dispatch's seq may
// be and still be taken as the session's seq. The gateway numbers
// dispatches one by one, so a larger jump is a forged or broken frame.
const maxSeqJump = 1_000_000

// seqTooFar reports a dispatch whose seq is more than maxSeqJump above
// the highest seen.
func (c *Client) seqTooFar(f wire.Frame, highest uint64) {
	c.update(func(s *Status) { s.ProtocolErrors++ })
	c.log.Error().Uint64("seq", f.S).Uint64("highest", highest).Str("type", f.T).Str("id", f.ID).
		Msgf("protocol error: dispatch seq %d is more than %d above the highest seen (%d); the event is delivered, its seq is not taken", f.S, maxSeqJump, highest)
}

// Duplicate reports: each drop at debug level, and a warning with a count
// once at least dupWarnMin were dropped since the last one, at most every
// dupWarnEvery.
const (
	dupWarnMin   = 100
	dupWarnEvery = time.Minute
)

// duplicate counts and logs a dropped replay or duplicate.
func (c *Client) duplicate(f wire.Frame, why string) {
	c.update(func(s *Status) { s.DuplicatesDropped++ })
	c.log.Debug().Str("id", f.ID).Uint64("seq", f.S).Msg(why)
	now := c.clock.Now()
	c.dupMu.Lock()
	c.dupSince++
	n := 0
	if c.dupSince >= dupWarnMin && (c.dupWarnAt.IsZero() || now.Sub(c.dupWarnAt) >= dupWarnEvery) {
		n, c.dupSince, c.dupWarnAt = c.dupSince, 0, now
	}
	c.dupMu.Unlock()
	if n > 0 {
		c.log.Warn().Int("dropped", n).Uint64("last_seq", f.S).
			Msgf("%d replayed or duplicate events dropped since the last report (the gateway keeps resending events already received)", n)
	}
}
