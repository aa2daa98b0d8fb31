package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
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
func (c *Client) connectLoop(ctx context.Context, d *dispatcher, mode resume.Mode) error {
	r := &reconnects{c: c, bo: c.newBackOff(),
		delays: resume.Delays{InvalidSession: c.cfg.InvalidSessionDelay, RateLimit: c.cfg.RateLimitDelay},
		st:     resume.NewState(mode == resume.Resume, c.level(), len(c.cfg.IntentLevels))}
	r.st.MaxAuthFailures = c.cfg.MaxAuthFailures
	r.st.MaxAttempts = c.cfg.Backoff.MaxAttempts
	for n := 0; ; n++ {
		if n > 0 {
			c.update(func(s *Status) { s.Reconnects++ })
		}
		c.setState(StateConnecting)
		r.expire(ctx)
		r.st = resume.NewConnection(r.st, r.st.Mode)
		a := c.attempt(ctx, d, &r.st, r.bo)
		if ctx.Err() != nil {
			return nil
		}
		wait, reason, err := r.decide(ctx, a)
		if err != nil {
			return err
		}
		c.update(func(s *Status) { s.State = StateWaiting; s.NextRetry = wait })
		c.log.Warn().Int("failures", r.st.Failures).Dur("delay", wait).Stringer("next", r.st.Mode).
			Msg("disconnected: " + reason)
		if err := c.sleep(ctx, wait); err != nil {
			return nil
		}
		c.update(func(s *Status) { s.NextRetry = 0 })
	}
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
func (c *Client) attempt(ctx context.Context, d *dispatcher, st *resume.State, bo *backoff.ExponentialBackOff) attempt {
	token, err := c.tokens.Token(ctx)
	if err != nil {
		return c.preFailure(err)
	}
	gw, err := c.discover(ctx, token)
	if err != nil {
		var ge *GatewayError
		if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized {
			c.tokens.Invalidate()
		}
		return c.preFailure(err)
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
				return attempt{err: err}
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
		return c.preFailure(fmt.Errorf("dial gateway: %w", redactErr(err)))
	}
	ws.SetReadLimit(c.cfg.MaxMessageBytes)
	c.update(func(s *Status) { s.Connects++ })
	return c.runConn(ctx, ws, token, d, st, bo)
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

// conn is one WebSocket connection: the reader goroutine's side.
//
// The reader hands dispatch events to the queue itself, rather than
// passing them through the loop: when the queue is full the reader waits
// (backpressure), and only the reader, so the loop still sends heartbeats,
// answers op 1 and watches its timers. A handler slower than the gateway
// pauses reading, never the heartbeat that keeps the session alive.
// Everything else (HELLO, ACKs, op 7, op 9, and READY/RESUMED once queued)
// goes to the loop on ctrl.
type conn struct {
	ws      *websocket.Conn
	ctrl    chan wire.Frame // non-dispatch frames, READY and RESUMED, for the loop
	done    chan struct{}   // closed when the reader exits
	err     error           // why the reader exited; read after done
	frames  atomic.Uint64   // frames read
	blocked atomic.Bool     // the reader waits on a full queue
	// progress counts dispatches that moved the session on (a new seq):
	// what the READY/RESUMED timeout accepts as progress, unlike
	// heartbeat ACKs or replays of seqs already received.
	progress atomic.Uint64
	// replaying is true from a RESUME until RESUMED: the events between
	// are replays. Set before the reader starts, then owned by it.
	replaying bool
}

// ctrlQueue is the room for control frames the reader has read and the
// loop not yet handled: a few (HELLO, an ACK, op 7/9) are all a
// connection sees at once; past that the reader waits for the loop.
const ctrlQueue = 4

// connection runs the protocol on one open WebSocket: HELLO, IDENTIFY or
// RESUME, heartbeats, control ops, and the end. It is owned by the loop
// goroutine (the one that calls runConn); every field but cn is touched
// by it alone. cn is shared with the reader goroutine as documented on
// conn.
type connection struct {
	c     *Client
	ctx   context.Context // Run's: its end is a graceful shutdown
	ws    *websocket.Conn
	cn    *conn
	d     *dispatcher
	st    *resume.State
	bo    *backoff.ExponentialBackOff
	token string
	// writeCtx bounds writes. It is not Run's context: a write cut by
	// cancellation would drop the TCP connection without the close frame
	// of a graceful shutdown.
	writeCtx context.Context
	stop     func() // cancels the reader's contexts

	a        attempt // the outcome so far
	graceful bool    // shutdown sent a close frame: no CloseNow

	interval     time.Duration // the heartbeat interval, from HELLO
	beatT        timer         // the next heartbeat
	beaten       bool          // a beat went out on this connection
	lastBeat     time.Time     // when the last beat went out, for the RTT
	framesAtBeat uint64        // cn.frames at the last beat, for the zombie check

	readyT          timer  // from IDENTIFY/RESUME to READY/RESUMED
	progressAtReady uint64 // cn.progress when readyT was last armed
	stableT         timer  // from READY/RESUMED to StableAfter
	stableC         <-chan time.Time
	refreshT        timer // the savedAt refresh while connected
}

// runConn runs the protocol on an open WebSocket until it ends. The loop
// goroutine (this one) owns the connection's protocol state; a reader
// goroutine decodes frames, feeds dispatches to the queue and control
// frames to the loop.
func (c *Client) runConn(ctx context.Context, ws *websocket.Conn, token string, d *dispatcher, st *resume.State, bo *backoff.ExponentialBackOff) (a attempt) {
	k := c.openConnection(ctx, ws, token, d, st, bo)
	defer func() { a = k.end() }()
	k.run()
	return
}

// openConnection starts the reader goroutine of ws.
func (c *Client) openConnection(ctx context.Context, ws *websocket.Conn, token string, d *dispatcher, st *resume.State, bo *backoff.ExponentialBackOff) *connection {
	connCtx, cancel := context.WithCancel(ctx)
	// The reader reads with a context of its own: cancelling a blocked read
	// makes coder/websocket drop the TCP connection, and a graceful close
	// must still send its close frame and read the answer.
	readCtx, cancelRead := context.WithCancel(context.WithoutCancel(ctx))
	cn := &conn{ws: ws, ctrl: make(chan wire.Frame, ctrlQueue), done: make(chan struct{})}
	cn.replaying = st.Mode == resume.Resume && c.sess.held() != ""
	go c.read(connCtx, readCtx, cn, d)
	return &connection{c: c, ctx: ctx, ws: ws, cn: cn, d: d, st: st, bo: bo, token: token,
		writeCtx: readCtx, stop: func() { cancel(); cancelRead() }, a: attempt{opened: true}}
}

// run goes through the phases of the connection: HELLO, IDENTIFY or
// RESUME, then the loop.
func (k *connection) run() {
	hello, ok := k.awaitHello()
	if !ok {
		return
	}
	k.startHeartbeat(hello)
	if err := k.handshake(); err != nil {
		k.a.sig = k.failed(err)
		return
	}
	k.loop()
}

// end closes the connection (at once, unless shutdown closed it
// gracefully), waits for the reader and gives the attempt's outcome.
//
// A connection that ends after Run's context did is closed gracefully
// all the same: the reader stops on that cancellation too (when it waits
// on a full queue, or hands a frame to the loop), so the loop may see the
// reader's end, or handle another frame, before the cancellation itself.
// Dropping the socket then would skip the close frame a stop must send.
func (k *connection) end() attempt {
	for _, t := range []timer{k.beatT, k.readyT, k.stableT, k.refreshT} {
		if t != nil {
			t.Stop()
		}
	}
	if !k.graceful && k.ctx.Err() != nil {
		k.shutdown()
	}
	if !k.graceful {
		k.ws.CloseNow()
	}
	k.stop()
	<-k.cn.done
	k.a.tooBig = errors.Is(k.cn.err, websocket.ErrMessageTooBig)
	if k.a.established {
		k.c.alive() // the session's last sign of life is the end of this connection
	}
	return k.a
}

// finish ends the connection with sig; it reports true, for the loop's
// handlers to return.
func (k *connection) finish(sig resume.Signal) bool {
	k.a.sig = sig
	return true
}

// send writes one frame.
func (k *connection) send(op wire.Opcode, payload any) error {
	b, err := wire.EncodeFrame(op, payload)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(k.writeCtx, 10*time.Second)
	defer cancel()
	return k.ws.Write(wctx, websocket.MessageText, b)
}

// ended is the signal of the reader's end.
func (k *connection) ended() resume.Signal { return k.c.signalOf(k.cn.err) }

// awaitHello waits for HELLO, within HelloTimeout; frames before it are
// ignored. false: the connection ended (k.a says how).
func (k *connection) awaitHello() (wire.Hello, bool) {
	t := k.c.clock.NewTimer(k.c.cfg.HelloTimeout)
	defer t.Stop()
	var hello wire.Hello
	for {
		select {
		case <-k.ctx.Done():
			k.shutdown()
			return hello, false
		case <-k.cn.done:
			k.a.sig = k.ended()
			return hello, false
		case <-t.C():
			k.a.sig = resume.Signal{Kind: resume.SigNetwork, Reason: "no HELLO within " + k.c.cfg.HelloTimeout.String()}
			return hello, false
		case f := <-k.cn.ctrl:
			if f.Op != wire.OpHello {
				k.c.log.Debug().Stringer("op", f.Op).Msg("frame before HELLO ignored")
				continue
			}
			if err := json.Unmarshal(f.D, &hello); err != nil || hello.HeartbeatInterval <= 0 || hello.HeartbeatInterval > maxHeartbeatMillis {
				k.a.sig = resume.Signal{Kind: resume.SigNetwork, Reason: "HELLO without a heartbeat interval"}
				return hello, false
			}
			return hello, true
		}
	}
}

// startHeartbeat starts the heartbeat clock at HELLO. The first beat goes
// out when READY/RESUMED arrives or one interval after HELLO, whichever
// comes first, never earlier: the docs say to heartbeat once
// authenticated, and a beat between IDENTIFY/RESUME and its answer may be
// refused (4003). Then one every interval.
func (k *connection) startHeartbeat(hello wire.Hello) {
	k.interval = time.Duration(hello.HeartbeatInterval) * time.Millisecond
	if k.interval < k.c.minHeartbeat {
		k.c.log.Warn().Dur("asked", k.interval).Dur("used", k.c.minHeartbeat).Msg("HELLO's heartbeat interval is below the floor; using the floor")
		k.interval = k.c.minHeartbeat
	}
	k.beatT = k.c.clock.NewTimer(k.interval)
}

// beat schedules the next beat one interval from now, then sends this one
// (in that order, so a test that saw the beat arrive knows the next one is
// scheduled). Its d is the highest seq received, null before any.
func (k *connection) beat() error {
	k.beatT.Reset(k.interval)
	var payload json.RawMessage = []byte("null")
	if seq := k.c.sess.highest(); seq > 0 {
		payload = json.RawMessage(fmt.Appendf(nil, "%d", seq))
	}
	k.beaten = true
	k.lastBeat = k.c.clock.Now()
	k.framesAtBeat = k.cn.frames.Load()
	return k.send(wire.OpHeartbeat, payload)
}

// handshake sends RESUME when the policy says so and a session is held,
// IDENTIFY otherwise, then arms the READY/RESUMED timeout and the savedAt
// refresh.
func (k *connection) handshake() error {
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
	k.readyT = c.clock.NewTimer(c.cfg.ReadyTimeout)
	k.progressAtReady = k.cn.progress.Load()
	// The record's savedAt is refreshed while connected, so its expiry
	// counts from when the connection was last known alive, whatever the
	// heartbeat interval.
	k.refreshT = c.clock.NewTimer(c.refreshEvery)
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

// loop runs the established protocol until the connection ends: each
// case's handler reports whether it ended it (k.a says how).
func (k *connection) loop() {
	for {
		var ended bool
		select {
		case <-k.ctx.Done():
			k.shutdown()
			return
		case <-k.cn.done:
			ended = k.finish(k.readerEnded())
		case <-k.readyT.C():
			ended = k.onReadyTimeout()
		case <-k.stableC:
			k.onStable()
		case <-k.beatT.C():
			ended = k.onBeatDue()
		case <-k.refreshT.C():
			k.onRefresh()
		case f := <-k.cn.ctrl:
			ended = k.onControl(f)
		}
		if ended {
			return
		}
	}
}

// readerEnded gives the signal of a reader that ended, after the control
// frames it queued before the end.
func (k *connection) readerEnded() resume.Signal {
	if sig, ok := k.drain(); ok {
		return sig
	}
	return k.ended()
}

// drain handles the control frames the reader queued before it ended:
// those come first. Op 7 or op 9 and the close that follows (4009, 4903,
// 4006) are one event, so the op decides what comes next (the 4903 after
// an intent rejection must not hide its op 9); a READY read before a close
// still establishes the connection. It gives the signal of an op 7 or op
// 9, if one was queued.
func (k *connection) drain() (resume.Signal, bool) {
	for len(k.cn.ctrl) > 0 {
		f := <-k.cn.ctrl
		if sig, ok := ctrlSignal(f); ok {
			return sig, true
		}
		switch f.Op {
		case wire.OpDispatch:
			k.onConnected(f)
		case wire.OpHeartbeatACK:
			k.onHeartbeatACK()
		}
	}
	return resume.Signal{}, false
}

// failedWait is how long a failed write waits for the reader's reason.
const failedWait = 2 * time.Second

// failed turns a write error into a signal. The reader usually knows the
// better reason: the close frame that ended the connection; it is given
// failedWait, on the connection's clock, to learn it.
func (k *connection) failed(err error) resume.Signal {
	if k.cn.blocked.Load() {
		// The reader waits on a full queue, not on the socket: it will
		// not learn more until this connection is given up.
		return k.c.signalOf(err)
	}
	t := k.c.clock.NewTimer(failedWait)
	defer t.Stop()
	select {
	case <-k.cn.done:
		if sig, ok := k.drain(); ok {
			return sig
		}
		var ce websocket.CloseError
		if errors.As(k.cn.err, &ce) {
			return k.ended()
		}
	case <-t.C():
	case <-k.ctx.Done():
	}
	return k.c.signalOf(err)
}

// onReadyTimeout: READY/RESUMED must come within ReadyTimeout of
// IDENTIFY/RESUME. A long replay in front of RESUMED is progress, not a
// stall, and so is a replay waiting on a full queue; heartbeat ACKs and
// anything else are not, or a server that answers heartbeats and never
// READY would hold the client forever.
func (k *connection) onReadyTimeout() bool {
	if n := k.cn.progress.Load(); n != k.progressAtReady || k.cn.blocked.Load() {
		k.progressAtReady = n
		k.readyT.Reset(k.c.cfg.ReadyTimeout)
		return false
	}
	return k.finish(resume.Signal{Kind: resume.SigNetwork, Reason: "no READY/RESUMED within " + k.c.cfg.ReadyTimeout.String()})
}

// onStable: the connection stayed up StableAfter, so the backoff starts
// over.
func (k *connection) onStable() {
	k.bo.Reset()
	k.st.Stable = true
	k.stableC = nil
}

// onBeatDue sends the beat that is due, unless the connection is a
// zombie: nothing at all arrived since the previous beat (a reader
// waiting on a full queue has frames in hand, so it is no zombie).
func (k *connection) onBeatDue() bool {
	if k.beaten && k.cn.frames.Load() == k.framesAtBeat && !k.cn.blocked.Load() {
		k.c.log.Warn().Dur("interval", k.interval).Msg("no frame since the last heartbeat; zombie connection")
		return k.finish(resume.Signal{Kind: resume.SigZombie, Reason: "no heartbeat ACK"})
	}
	return k.beatOrEnd()
}

// beatOrEnd sends a beat; a failed write ends the connection.
func (k *connection) beatOrEnd() bool {
	if err := k.beat(); err != nil {
		return k.finish(k.failed(err))
	}
	return false
}

// onRefresh keeps the record's savedAt fresh while connected.
func (k *connection) onRefresh() {
	k.refreshT.Reset(k.c.refreshEvery)
	if k.a.established {
		k.c.alive()
		k.c.persist(k.ctx, false)
	}
}

// onControl handles a frame the reader passed to the loop.
func (k *connection) onControl(f wire.Frame) bool {
	switch f.Op {
	case wire.OpHeartbeatACK:
		k.onHeartbeatACK()
	case wire.OpHeartbeat: // the server asks for a beat now
		return k.beatOrEnd()
	case wire.OpReconnect, wire.OpInvalidSession:
		sig, _ := ctrlSignal(f)
		return k.finish(sig)
	case wire.OpDispatch: // READY or RESUMED, already queued by the reader
		k.onConnected(f)
		if !k.beaten {
			return k.beatOrEnd()
		}
	default:
		k.c.log.Debug().Stringer("op", f.Op).Msg("unexpected frame ignored")
	}
	return false
}

// onHeartbeatACK records the ACK and the beat's round trip.
func (k *connection) onHeartbeatACK() {
	var rtt time.Duration
	if !k.lastBeat.IsZero() {
		rtt = k.c.clock.Now().Sub(k.lastBeat)
	}
	k.c.update(func(s *Status) { s.HeartbeatRTT = rtt; s.HeartbeatACKs++ })
}

// onConnected handles READY or RESUMED (the frame the reader passes on
// after queueing the event): the connection is established, the record
// written, and the stable timer started.
func (k *connection) onConnected(f wire.Frame) {
	c := k.c
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
	c.persist(k.ctx, true)
	if k.stableT == nil {
		k.stableT = c.clock.NewTimer(c.cfg.StableAfter)
		k.stableC = k.stableT.C()
	}
	c.log.Info().Str("event", f.T).Str("session", c.Status().SessionID).
		Uint64("seq", c.sess.highest()).Str("intent_level", c.cfg.IntentLevels[c.level()].Name).Msg("connected")
}

// shutdown is the graceful close: the handler finishes the event in hand,
// the record is written, then the connection is closed with 4000 (1000
// for a logout).
func (k *connection) shutdown() {
	k.graceful = true
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
func ctrlSignal(f wire.Frame) (resume.Signal, bool) {
	switch f.Op {
	case wire.OpReconnect:
		return resume.Signal{Kind: resume.SigReconnect, Reason: "server sent op 7 RECONNECT"}, true
	case wire.OpInvalidSession:
		var canResume bool
		_ = json.Unmarshal(f.D, &canResume)
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
