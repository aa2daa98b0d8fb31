package client

import (
	"bytes"
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

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/resume"
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
	stable      bool          // the connection stayed up StableAfter
	tooBig      bool          // it ended on a frame larger than MaxMessageBytes
	wait        time.Duration // a wait the pre-connection failure asks for
	err         error         // a pre-connection failure, or a fatal error
	fatal       bool
}

// connectLoop connects, and reconnects per the reconnect policy, until ctx
// ends (nil) or a fatal error (returned).
func (c *Client) connectLoop(ctx context.Context, d *dispatcher, mode resume.Mode) error {
	bo := c.newBackOff()
	st := resume.NewState(mode == resume.Resume, c.level(), len(c.cfg.IntentLevels))
	st.MaxAuthFailures = c.cfg.MaxAuthFailures
	failures := 0 // attempts in a row that did not reach READY/RESUMED
	quick := 0    // connections in a row that did not stay up StableAfter
	var tooBigAt uint64
	tooBigRepeats := 0 // connections in a row that ended on an oversized frame after tooBigAt
	for n := 0; ; n++ {
		if n > 0 {
			c.update(func(s *Status) { s.Reconnects++ })
		}
		c.setState(StateConnecting)
		if st.Mode == resume.Resume && c.sessionExpired() {
			// Resumes are retried while the session is valid, however
			// often they are cut short; past that, the server has most
			// likely dropped it.
			c.log.Warn().Dur("expiry", sessionstore.Expiry).Msg("no connection of the session alive for too long; the session is dropped and a new one identified")
			c.clearSession(ctx)
			st.HasSession = false
		}
		st = resume.NewConnection(st, st.Mode)
		a := c.attempt(ctx, d, &st, bo)
		if ctx.Err() != nil {
			return nil
		}
		if a.fatal {
			return a.err
		}
		if a.stable {
			quick = 0
		} else {
			quick++
		}
		if a.established {
			failures = 0
		} else {
			failures++
			if max := c.cfg.Backoff.MaxAttempts; max > 0 && failures >= max {
				cause := a.err
				if cause == nil {
					cause = errors.New(a.sig.Reason)
				}
				// Both wrapped: errors.Is finds ErrGaveUp, errors.As the
				// last attempt's cause (a *TokenError, *GatewayError, ...).
				return &ConnectError{Attempt: failures, Err: fmt.Errorf("%w after %d attempts: %w", ErrGaveUp, failures, cause)}
			}
		}

		var wait time.Duration
		reason := ""
		if !a.opened {
			// Token, discovery or dial failed: nothing to decide about the
			// session; retry with backoff (or the wait asked for).
			wait = a.wait
			if wait == 0 {
				wait = bo.NextBackOff()
			}
			reason = a.err.Error()
			c.update(func(s *Status) { s.LastError = a.err.Error() })
		} else {
			resumed := st.Mode == resume.Resume
			dec, next := resume.Next(st, a.sig)
			st = next
			reason = dec.Reason
			if dec.Action == resume.ActFatal {
				return &CloseError{Code: a.sig.Code, Reason: a.sig.Reason, Why: dec.Reason}
			}
			if resumed && !a.established {
				c.update(func(s *Status) { s.FailedResumes++ })
			}
			if dec.ClearSession {
				c.clearSession(ctx)
			}
			if dec.RefreshToken {
				c.tokens.Invalidate()
			}
			if dec.StepDown {
				c.setLevel(st.IntentLevel)
				l := c.cfg.IntentLevels[st.IntentLevel]
				c.log.Warn().Int("intent_level", st.IntentLevel).Str("intent_level_name", l.Name).Stringer("intents", l.Intents).
					Msg("gateway rejected the intents; stepping down one intent level (degraded)")
			}
			wait = c.waitFor(dec.Wait, bo)
			if dec.Wait == resume.WaitNone && quick > 1 {
				// "At once" twice in a row on connections that did not stay
				// up: a server that accepts and closes must not cause a
				// tight loop.
				wait = bo.NextBackOff()
			}
			st.Mode = dec.Action.Mode()
			if a.tooBig {
				c.oversized(ctx, &tooBigAt, &tooBigRepeats)
			} else {
				tooBigRepeats = 0
			}
		}
		c.mu.Lock()
		hasSession := c.sess.id != ""
		c.mu.Unlock()
		st.HasSession = hasSession
		if !hasSession {
			st.Mode = resume.Identify
		}
		c.update(func(s *Status) { s.State = StateWaiting; s.NextRetry = wait })
		c.log.Warn().Int("failures", failures).Dur("delay", wait).Stringer("next", st.Mode).
			Msg("disconnected: " + reason)
		if err := c.sleep(ctx, wait); err != nil {
			return nil
		}
		c.update(func(s *Status) { s.NextRetry = 0 })
	}
}

// oversized handles a connection that ended on a frame larger than
// MaxMessageBytes. RESUME replays the same frame, so the second time in a
// row after the same seq the session cannot go on: it is dropped, loudly,
// and the next connection IDENTIFYs. Without this the client would retry
// the unreadable frame forever and miss everything after it.
func (c *Client) oversized(ctx context.Context, at *uint64, repeats *int) {
	c.update(func(s *Status) { s.OversizedFrames++ })
	seq := c.wm.Highest()
	if *repeats > 0 && *at == seq {
		*repeats++
	} else {
		*at, *repeats = seq, 1
	}
	if *repeats < 2 {
		c.log.Warn().Uint64("after_seq", seq).Int64("max_message_bytes", c.cfg.MaxMessageBytes).
			Msg("a gateway frame exceeds MaxMessageBytes; resuming once more")
		return
	}
	c.log.Error().Uint64("after_seq", seq).Int64("max_message_bytes", c.cfg.MaxMessageBytes).
		Msg("the gateway keeps replaying a frame larger than MaxMessageBytes after this seq: it cannot be read, so the session is dropped and a new one identified; events of the old session after this seq are lost (raise MaxMessageBytes to keep them)")
	c.clearSession(ctx)
	*repeats = 0
}

func (c *Client) waitFor(w resume.Wait, bo *backoff.ExponentialBackOff) time.Duration {
	switch w {
	case resume.WaitBackoff:
		return bo.NextBackOff()
	case resume.WaitInvalidSession:
		return resume.Jitter(c.cfg.InvalidSessionDelay, rand.Float64())
	case resume.WaitRateLimit:
		return resume.Jitter(c.cfg.RateLimitDelay, rand.Float64())
	}
	return 0
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
	c.limiter.Update(c.cfg.AppID, gw.SessionStartLimit)
	c.mu.Lock()
	identify := st.Mode != resume.Resume || c.sess.id == ""
	c.mu.Unlock()
	if identify {
		// Wait for the identify budget before dialing, not on an open and
		// silent socket the server would drop.
		maxConc := 1
		if gw.SessionStartLimit != nil {
			maxConc = gw.SessionStartLimit.MaxConcurrency
		}
		if wait := c.limiter.Reserve(c.cfg.AppID, maxConc); wait > 0 {
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
	return c.runConn(ctx, ws, gw, token, d, st, bo)
}

func (c *Client) preFailure(err error) attempt {
	var te *TokenError
	switch {
	case errors.Is(err, ErrRateLimited):
		return attempt{err: err, wait: resume.Jitter(c.cfg.RateLimitDelay, rand.Float64())}
	case errors.As(err, &te) && !te.Temporary():
		return attempt{err: err, fatal: true}
	case errors.Is(err, ErrConfig):
		return attempt{err: err, fatal: true}
	}
	return attempt{err: err}
}

// conn is one WebSocket connection: the reader goroutine's side.
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

// runConn runs the protocol on an open WebSocket until it ends. The loop
// goroutine (this one) owns the connection's protocol state; a reader
// goroutine decodes frames, feeds dispatches to the queue and control
// frames to the loop.
func (c *Client) runConn(ctx context.Context, ws *websocket.Conn, gw wire.Gateway, token string, d *dispatcher, st *resume.State, bo *backoff.ExponentialBackOff) (a attempt) {
	a.opened = true
	connCtx, cancel := context.WithCancel(ctx)
	// The reader reads with a context of its own: cancelling a blocked read
	// makes coder/websocket drop the TCP connection, and a graceful close
	// must still send its close frame and read the answer.
	readCtx, cancelRead := context.WithCancel(context.WithoutCancel(ctx))
	cn := &conn{ws: ws, ctrl: make(chan wire.Frame, 16), done: make(chan struct{})}
	c.mu.Lock()
	cn.replaying = st.Mode == resume.Resume && c.sess.id != ""
	c.mu.Unlock()
	go c.read(connCtx, readCtx, cn, d)
	graceful := false
	defer func() {
		if !graceful {
			ws.CloseNow()
		}
		cancel()
		cancelRead()
		<-cn.done
		a.tooBig = errors.Is(cn.err, websocket.ErrMessageTooBig)
		if a.established {
			c.alive() // the session's last sign of life is the end of this connection
		}
	}()

	send := func(op wire.Opcode, payload any) error {
		b, err := wire.EncodeFrame(op, payload)
		if err != nil {
			return err
		}
		// Not bound to ctx: a write cut by cancellation would drop the TCP
		// connection without the close frame of a graceful shutdown.
		wctx, wcancel := context.WithTimeout(readCtx, 10*time.Second)
		defer wcancel()
		return ws.Write(wctx, websocket.MessageText, b)
	}
	ended := func() resume.Signal { return c.signalOf(cn.err) }
	var readyT timer  // from IDENTIFY/RESUME to READY/RESUMED
	var stableT timer // from READY/RESUMED to StableAfter
	var stableC <-chan time.Time
	defer func() {
		if stableT != nil {
			stableT.Stop()
		}
	}()
	// connected handles READY or RESUMED (the frame the reader passes on
	// after queueing the event).
	connected := func(f wire.Frame) {
		if readyT != nil {
			readyT.Stop()
		}
		a.established = true
		*st = resume.Established(*st, st.Mode)
		now := c.clock.Now()
		c.mu.Lock()
		c.sess.connectedAt = now
		c.sess.aliveAt = now
		c.mu.Unlock()
		c.update(func(s *Status) {
			s.State = StateConnected
			s.ConnectedSince = now
			s.LastError = ""
		})
		c.persist(ctx, true)
		if stableT == nil {
			stableT = c.clock.NewTimer(c.cfg.StableAfter)
			stableC = stableT.C()
		}
		c.log.Info().Str("event", f.T).Str("session", c.Status().SessionID).
			Uint64("seq", c.wm.Highest()).Str("intent_level", c.cfg.IntentLevels[c.level()].Name).Msg("connected")
	}
	// failed turns a write error into a signal. The reader usually knows
	// the better reason: the close frame that ended the connection.
	failed := func(err error) resume.Signal {
		if cn.blocked.Load() {
			// The reader waits on a full queue, not on the socket: it
			// will not learn more until this connection is given up.
			return c.signalOf(err)
		}
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		select {
		case <-cn.done:
			// Frames read before the end come first: a READY still
			// establishes the connection, and an op 7 or op 9 decides
			// what comes next: the 4903 after an intent rejection must
			// not hide its op 9.
			for len(cn.ctrl) > 0 {
				f := <-cn.ctrl
				if sig, ok := ctrlSignal(f); ok {
					return sig
				}
				if f.Op == wire.OpDispatch {
					connected(f)
				}
			}
			var ce websocket.CloseError
			if errors.As(cn.err, &ce) {
				return ended()
			}
		case <-t.C:
		case <-ctx.Done():
		}
		return c.signalOf(err)
	}

	// shutdown is the graceful close: the handler finishes the event in
	// hand, the record is written, then we close with 4000 (1000 for a
	// logout).
	shutdown := func() attempt {
		graceful = true
		c.setState(StateClosing)
		c.finish(d, false)
		// 4000 to keep the session resumable is a Discord-derived
		// assumption: QQ's docs do not say which client close code keeps
		// a session, and its SDKs close with 1000 or just drop the
		// socket. If 4000 ever turns out to end the session, the next
		// start's RESUME is refused and the client identifies a new
		// session, as after any expired one.
		code, reason := closeGraceful, "qqgate shutting down"
		if c.logout.Load() {
			code, reason = websocket.StatusNormalClosure, "qqgate logout"
		}
		if err := ws.Close(code, reason); err != nil {
			c.log.Debug().Err(err).Msg("close handshake")
		}
		return a
	}

	// HELLO first, within HelloTimeout.
	helloT := c.clock.NewTimer(c.cfg.HelloTimeout)
	var hello wire.Hello
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			helloT.Stop()
			return shutdown()
		case <-cn.done:
			helloT.Stop()
			a.sig = ended()
			return a
		case <-helloT.C():
			a.sig = resume.Signal{Kind: resume.SigNetwork, Reason: "no HELLO within " + c.cfg.HelloTimeout.String()}
			return a
		case f := <-cn.ctrl:
			if f.Op != wire.OpHello {
				c.log.Debug().Stringer("op", f.Op).Msg("frame before HELLO ignored")
				continue
			}
			if err := json.Unmarshal(f.D, &hello); err != nil || hello.HeartbeatInterval <= 0 || hello.HeartbeatInterval > maxHeartbeatMillis {
				helloT.Stop()
				a.sig = resume.Signal{Kind: resume.SigNetwork, Reason: "HELLO without a heartbeat interval"}
				return a
			}
			waiting = false
		}
	}
	helloT.Stop()

	// The heartbeat clock starts at HELLO. The first beat goes out when
	// READY/RESUMED arrives or one interval after HELLO, whichever comes
	// first, never earlier: the docs say to heartbeat once authenticated,
	// and a beat between IDENTIFY/RESUME and its answer may be refused
	// (4003). Then one every interval; d is the highest seq received, null
	// before any.
	interval := time.Duration(hello.HeartbeatInterval) * time.Millisecond
	if interval < c.minHeartbeat {
		c.log.Warn().Dur("asked", interval).Dur("used", c.minHeartbeat).Msg("HELLO's heartbeat interval is below the floor; using the floor")
		interval = c.minHeartbeat
	}
	beatT := c.clock.NewTimer(interval)
	defer beatT.Stop()
	beaten := false // a beat went out on this connection
	var lastBeat time.Time
	var framesAtBeat uint64
	// beat schedules the next beat one interval from now, then sends this
	// one (in that order, so a test that saw the beat arrive knows the
	// next one is scheduled).
	beat := func() error {
		beatT.Reset(interval)
		var payload json.RawMessage = []byte("null")
		if seq := c.wm.Highest(); seq > 0 {
			payload = json.RawMessage(fmt.Appendf(nil, "%d", seq))
		}
		beaten = true
		lastBeat = c.clock.Now()
		framesAtBeat = cn.frames.Load()
		return send(wire.OpHeartbeat, payload)
	}

	// IDENTIFY or RESUME.
	c.mu.Lock()
	sessionID := c.sess.id
	c.mu.Unlock()
	if st.Mode == resume.Resume && sessionID != "" {
		seq := c.wm.Highest()
		c.setState(StateResuming)
		if err := send(wire.OpResume, wire.Resume{Token: wire.TokenPrefix + token, SessionID: sessionID, Seq: seq}); err != nil {
			a.sig = failed(err)
			return a
		}
		c.log.Info().Str("session", sessionID).Uint64("seq", seq).Msg("RESUME sent")
	} else {
		st.Mode = resume.Identify
		l := c.cfg.IntentLevels[c.level()]
		c.update(func(s *Status) { s.State = StateIdentifying; s.Identifies++ }) // counted before READY can race in
		if err := send(wire.OpIdentify, wire.Identify{Token: wire.TokenPrefix + token, Intents: uint32(l.Intents), Shard: c.cfg.Shard}); err != nil {
			a.sig = failed(err)
			return a
		}
		c.log.Info().Str("intent_level", l.Name).Stringer("intents", l.Intents).Msg("IDENTIFY sent")
	}
	readyT = c.clock.NewTimer(c.cfg.ReadyTimeout)
	defer readyT.Stop()
	progressAtReadyCheck := cn.progress.Load()

	// The record's savedAt is refreshed while connected, so its 5-minute
	// expiry counts from when the connection was last known alive,
	// whatever the heartbeat interval.
	refresh := c.clock.NewTimer(c.refreshEvery)
	defer refresh.Stop()
	// done is the reader's end. When it ends with control frames still
	// queued, those come first: op 7 or op 9 and the close that follows
	// (4009, 4903, 4006) are one event, and a READY read before a close
	// still establishes the connection.
	done := cn.done

	for {
		if done == nil && len(cn.ctrl) == 0 {
			a.sig = ended()
			return a
		}
		select {
		case <-ctx.Done():
			return shutdown()
		case <-done:
			if len(cn.ctrl) > 0 {
				done = nil
				continue
			}
			a.sig = ended()
			return a
		case <-readyT.C():
			// READY/RESUMED must come within ReadyTimeout of IDENTIFY/
			// RESUME. A long replay in front of RESUMED is progress, not a
			// stall, and so is a replay waiting on a full queue; heartbeat
			// ACKs and anything else are not, or a server that answers
			// heartbeats and never READY would hold the client forever.
			if n := cn.progress.Load(); n != progressAtReadyCheck || cn.blocked.Load() {
				progressAtReadyCheck = n
				readyT.Reset(c.cfg.ReadyTimeout)
				continue
			}
			a.sig = resume.Signal{Kind: resume.SigNetwork, Reason: "no READY/RESUMED within " + c.cfg.ReadyTimeout.String()}
			return a
		case <-stableC:
			bo.Reset()
			a.stable = true
			stableC = nil
		case <-beatT.C():
			// A zombie: a beat is due and nothing at all arrived since the
			// previous one (a reader waiting on a full queue has frames
			// in hand, so it is no zombie).
			if beaten && cn.frames.Load() == framesAtBeat && !cn.blocked.Load() {
				c.log.Warn().Dur("interval", interval).Msg("no frame since the last heartbeat; zombie connection")
				a.sig = resume.Signal{Kind: resume.SigZombie, Reason: "no heartbeat ACK"}
				return a
			}
			if err := beat(); err != nil {
				a.sig = failed(err)
				return a
			}
		case <-refresh.C():
			refresh.Reset(c.refreshEvery)
			if a.established {
				c.alive()
				c.persist(ctx, false) // keeps savedAt fresh
			}
		case f := <-cn.ctrl:
			switch f.Op {
			case wire.OpHeartbeatACK:
				var rtt time.Duration
				if !lastBeat.IsZero() {
					rtt = c.clock.Now().Sub(lastBeat)
				}
				c.update(func(s *Status) { s.HeartbeatRTT = rtt; s.HeartbeatACKs++ })
			case wire.OpHeartbeat:
				if err := beat(); err != nil {
					a.sig = failed(err)
					return a
				}
			case wire.OpReconnect, wire.OpInvalidSession:
				a.sig, _ = ctrlSignal(f)
				return a
			case wire.OpDispatch: // READY or RESUMED, already queued by the reader
				connected(f)
				if !beaten {
					if err := beat(); err != nil {
						a.sig = failed(err)
						return a
					}
				}
			default:
				c.log.Debug().Stringer("op", f.Op).Msg("unexpected frame ignored")
			}
		}
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

// read is the reader goroutine. Exit: a read error (the connection ended
// or ctx was cancelled, which closes it). It feeds dispatch events to the
// queue, waiting when it is full, and everything else to the loop.
func (c *Client) read(ctx, readCtx context.Context, cn *conn, d *dispatcher) {
	defer close(cn.done)
	var buf bytes.Buffer
	for {
		_, r, err := cn.ws.Reader(readCtx)
		if err != nil {
			cn.err = err
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			cn.err = err
			return
		}
		cn.frames.Add(1)
		f, err := wire.DecodeFrame(buf.Bytes())
		if err != nil {
			c.update(func(s *Status) { s.BadFrames++ })
			c.log.Warn().Err(err).Int("bytes", buf.Len()).Msg("undecodable frame skipped")
			continue
		}
		if f.Op != wire.OpDispatch {
			select {
			case cn.ctrl <- f:
			case <-ctx.Done():
				cn.err = ctx.Err()
				return
			}
			continue
		}
		in := c.accept(f)
		replaying := cn.replaying
		if f.T == wire.EventResumed {
			cn.replaying = false
		}
		if in.progress {
			cn.progress.Add(1)
		}
		if !in.deliver {
			continue
		}
		if !d.enqueue(ctx, in.ev, &cn.blocked) {
			// The connection ended before the event reached the queue: it
			// was never received, so the RESUME asks for it again.
			c.withdraw(in)
			cn.err = ctx.Err()
			return
		}
		c.queued(in.ev, replaying)
		if f.T == wire.EventReady || f.T == wire.EventResumed {
			select {
			case cn.ctrl <- wire.Frame{Op: wire.OpDispatch, T: f.T}:
			case <-ctx.Done():
				cn.err = ctx.Err()
				return
			}
		}
	}
}

// incoming is what accept made of a dispatch frame.
type incoming struct {
	ev       item
	deliver  bool   // hand ev to the queue
	progress bool   // a new seq: the session moved on
	received bool   // ev.Seq was marked received; withdraw it if it never reaches the queue
	prev     uint64 // the highest seq before this one, for withdraw
	deduped  bool   // ev.ID was added to the dedupe window
}

// accept turns a dispatch frame into an Event, starting a new session on
// READY and dropping replays and duplicates. A seq counts as received from
// here on; if the event then never reaches the queue, withdraw undoes it.
func (c *Client) accept(f wire.Frame) incoming {
	prev := c.wm.Highest()
	var in incoming
	switch {
	case f.T == wire.EventReady:
		var r wire.Ready
		if err := json.Unmarshal(f.D, &r); err != nil || r.SessionID == "" {
			c.update(func(s *Status) { s.BadFrames++ })
			c.log.Warn().Msg("READY without a session id skipped")
			return in
		}
		seq := f.S
		if seq > maxSeqJump {
			c.seqTooFar(f, 0)
			seq = 0
		}
		// READY is protocol: its seq counts as handled at once.
		c.startSession(r.SessionID, seq)
		in.progress = true
	case f.S != 0 && f.S <= prev && f.T != wire.EventResumed:
		c.duplicate(f, "replayed event already received; dropped")
		return in
	case f.S > prev && f.S-prev > maxSeqJump:
		// Delivered (nothing received is dropped), but its seq is not
		// taken: one forged seq must not turn every later event into a
		// "replay", nor reach the record, heartbeats or a RESUME.
		c.seqTooFar(f, prev)
		if f.ID != "" && c.dedupe != nil && !c.dedupe.add(f.ID) {
			c.duplicate(f, "duplicate event id; dropped")
			return in
		}
		in.deduped = f.ID != "" && c.dedupe != nil
	case f.ID != "" && c.dedupe != nil && !c.dedupe.add(f.ID):
		c.duplicate(f, "duplicate event id; dropped")
		c.wm.Received(f.S)
		c.wm.Handled(f.S) // nothing to hand over: it counts as handled
		in.progress = f.S > prev
		return in
	default:
		in.deduped = f.ID != "" && c.dedupe != nil
		c.wm.Received(f.S)
		in.received = f.S != 0
		in.progress = f.S > prev || f.T == wire.EventResumed
	}
	in.prev = prev
	c.mu.Lock()
	in.ev = item{Event: event.Event{AccountID: c.cfg.AccountID, Type: f.T, Seq: f.S, ID: f.ID, Data: f.D,
		ReceivedAt: c.clock.Now(), SessionID: c.sess.id}, epoch: c.sess.epoch}
	c.mu.Unlock()
	in.deliver = true
	return in
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

// withdraw undoes accept for an event that never reached the queue: its
// seq is no longer received (heartbeats and the RESUME ask from the one
// before), and its id leaves the dedupe window, so the replay is handled.
func (c *Client) withdraw(in incoming) {
	if in.received {
		c.wm.Withdraw(in.ev.Seq, in.prev)
	}
	if in.deduped {
		c.dedupe.remove(in.ev.ID)
	}
}

// queued counts an event that reached the queue and reports it to
// OnReceive.
func (c *Client) queued(ev item, replaying bool) {
	c.events.Add(1)
	switch {
	case ev.Type == wire.EventResumed:
		c.update(func(s *Status) { s.Resumes++ })
	case replaying:
		c.update(func(s *Status) { s.Replayed++ })
	}
	if c.cfg.OnReceive != nil {
		c.cfg.OnReceive(ev.Event)
	}
}
