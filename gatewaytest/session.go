package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/qqgate/qqgate/wire"
)

// Session is a gateway session created by a successful IDENTIFY. It
// outlives its connections: events emitted while no connection carries it
// are kept and replayed on RESUME. All methods are safe for concurrent use.
type Session struct {
	srv     *Server
	id      string
	appID   string
	shard   [2]int
	intents uint32
	user    wire.User

	// guarded by srv.mu
	seq          uint64
	log          []logEntry
	expired      bool
	conn         *conn
	resumes      int
	resumeCursor int // resumes WaitResumed returned for
	takeovers    int
}

// logEntry is one dispatch of a session, as sent.
type logEntry struct {
	frame    wire.Frame
	data     []byte
	noReplay bool // RESUMED
}

// emitLocked gives the next seq to a dispatch, logs it and sends it on the
// session's connection if there is one.
func (s *Server) emitLocked(sess *Session, t, id string, d json.RawMessage, noReplay bool) uint64 {
	sess.seq++
	f := wire.Frame{ID: id, Op: wire.OpDispatch, D: d, S: sess.seq, T: t}
	data, err := json.Marshal(f)
	if err != nil { // d was validated by the caller
		panic(fmt.Sprintf("gatewaytest: encode dispatch: %v", err))
	}
	sess.log = append(sess.log, logEntry{frame: f, data: data, noReplay: noReplay})
	if sess.conn != nil {
		s.sendLocked(sess.conn, data)
	}
	s.notifyLocked()
	return sess.seq
}

// ID is the session id sent in READY.
func (s *Session) ID() string { return s.id }

// AppID is the app whose token identified the session.
func (s *Session) AppID() string { return s.appID }

// Shard is the identify's shard, echoed in READY.
func (s *Session) Shard() [2]int { return s.shard }

// Intents are the intents the IDENTIFY asked for.
func (s *Session) Intents() uint32 { return s.intents }

// User is the bot user sent in READY.
func (s *Session) User() wire.User { return s.user }

// LastSeq is the seq of the session's latest dispatch (READY is 1).
func (s *Session) LastSeq() uint64 {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.seq
}

// Conn is the id of the connection that carries the session, or 0 when
// none does.
func (s *Session) Conn() int {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.conn == nil {
		return 0
	}
	return s.conn.id
}

// Resumes counts the successful RESUMEs of the session (RESUMED sent).
func (s *Session) Resumes() int {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.resumes
}

// Takeovers counts the times a RESUME of the session arrived while
// another live connection still carried it: two clients of one session at
// once (the server then closes the older connection with 4009).
func (s *Session) Takeovers() int {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.takeovers
}

// Expired reports whether Expire (or InvalidSession(false)) was called.
func (s *Session) Expired() bool {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.expired
}

// Frames returns the session's dispatches in seq order, READY and RESUMED
// included.
func (s *Session) Frames() []wire.Frame {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	out := make([]wire.Frame, len(s.log))
	for i, e := range s.log {
		out[i] = e.frame
	}
	return out
}

// Emit sends a dispatch {"op":0,"s":seq,"t":eventType,"id":"<TYPE>:<n>","d":d}
// with the session's next seq: it is logged for replay and written to the
// session's connection if one carries it. d is encoded with encoding/json
// (a json.RawMessage is sent as it is). It fails only for a d that cannot be
// encoded, or after Close.
func (s *Session) Emit(eventType string, d any) (seq uint64, err error) {
	return s.emit(eventType, nil, d)
}

// EmitWithID is Emit with a chosen envelope id ("" omits it).
func (s *Session) EmitWithID(eventType, id string, d any) (seq uint64, err error) {
	return s.emit(eventType, &id, d)
}

// emit is Emit with the envelope id, or a fresh "<TYPE>:<n>" for nil.
func (s *Session) emit(eventType string, id *string, d any) (uint64, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return 0, fmt.Errorf("encode %s body: %w", eventType, err)
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.closed {
		return 0, ErrClosed
	}
	envID := eventType + ":" + strconv.FormatUint(s.srv.nextUniqueLocked(), 10)
	if id != nil {
		envID = *id
	}
	return s.srv.emitLocked(s, eventType, envID, raw, false), nil
}

// EmitDuplicate sends the event logged with seq again, same envelope id and
// body, under a new seq: the duplicate delivery that clients must dedupe.
func (s *Session) EmitDuplicate(seq uint64) (newSeq uint64, err error) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.closed {
		return 0, ErrClosed
	}
	for _, e := range s.log {
		if e.frame.S == seq {
			return s.srv.emitLocked(s, e.frame.T, e.frame.ID, e.frame.D, false), nil
		}
	}
	return 0, fmt.Errorf("%w: %d", ErrNoSuchSeq, seq)
}

// EmitRaw writes data, as it is, as one message on the connection that
// carries the session: a frame the server does not vouch for (a forged
// seq, a broken body). It is not logged, never replayed and leaves the
// session's seq alone. It does nothing when no connection carries the
// session, and fails only after Close.
func (s *Session) EmitRaw(data []byte) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.closed {
		return ErrClosed
	}
	if c := s.conn; c != nil {
		s.srv.sendLocked(c, bytes.Clone(data))
	}
	return nil
}

// Expire makes every later RESUME of the session fail (per
// Options.ResumeRejection). A connection that carries it is not affected.
func (s *Session) Expire() {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.expired = true
	s.srv.notifyLocked()
}

// Drop cuts the TCP connection that carries the session, without a close
// frame (the client sees 1006). It does nothing when no connection carries
// the session. A client then RESUMEs the same session: wait for that with
// [Session.WaitResumed], not [Server.WaitSession].
func (s *Session) Drop() {
	s.CloseWith(wire.CloseAbnormal, "")
}

// CloseWith closes the connection that carries the session with code and
// reason (1006, or any code that cannot be sent, drops it instead). It does
// nothing when no connection carries the session.
func (s *Session) CloseWith(code wire.CloseCode, reason string) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if c := s.conn; c != nil {
		s.srv.closeLocked(c, code, reason)
	}
}

// Reconnect sends op 7 on the connection that carries the session and
// detaches the session from it. Then, when given, it closes the connection
// with then (the real gateway's rotation follows op 7 with
// Close{Code: wire.CloseSessionTimedOut, Reason: "Session timed out"});
// otherwise the connection stays open (heartbeats are still answered) until
// the client closes it. It does nothing when no connection carries the
// session.
func (s *Session) Reconnect(then ...Close) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	c := s.conn
	if c == nil {
		return
	}
	b, _ := wire.EncodeFrame(wire.OpReconnect, nil)
	s.srv.sendLocked(c, b)
	s.srv.detachLocked(c)
	s.srv.closeThenLocked(c, then)
}

// InvalidSession sends op 9 with d:canResume on the connection that carries
// the session and detaches the session from it. With canResume false the
// session is also expired, so a RESUME of it fails. Then, when given, it
// closes the connection with then; otherwise the connection stays open. It
// does nothing when no connection carries the session.
func (s *Session) InvalidSession(canResume bool, then ...Close) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	c := s.conn
	if c == nil {
		return
	}
	if !canResume {
		s.expired = true
	}
	s.srv.sendLocked(c, invalidSessionFrame(canResume))
	s.srv.detachLocked(c)
	s.srv.closeThenLocked(c, then)
}

// closeThenLocked applies the optional close of a fault: nothing for none,
// the close for one; more than one is a mistake in the test.
func (s *Server) closeThenLocked(c *conn, then []Close) {
	switch len(then) {
	case 0:
	case 1:
		s.closeLocked(c, then[0].Code, then[0].Reason)
	default:
		panic("gatewaytest: at most one Close after a fault")
	}
}

// WaitResumed waits for a successful RESUME of the session (RESUMED sent).
// Each call consumes one: it returns at once for a RESUME that happened
// before the call and no earlier call returned for, so a test that drops
// the connection and then waits cannot miss a fast client. It returns
// ctx.Err() when ctx ends first, and ErrClosed when the server is closed.
func (s *Session) WaitResumed(ctx context.Context) error {
	return s.srv.Wait(ctx, func() bool {
		s.srv.mu.Lock()
		defer s.srv.mu.Unlock()
		if s.resumeCursor < s.resumes {
			s.resumeCursor++
			return true
		}
		return false
	})
}

// WaitSession returns the sessions in the order they reached READY: each
// call returns the next one not yet returned, waiting for it if needed.
//
// Only an IDENTIFY makes a new session. After a fault the client answers
// with RESUME ([Session.Drop], Reconnect, InvalidSession(true), most
// closes), the client resumes the session WaitSession already returned, so
// WaitSession blocks until ctx ends (or some later IDENTIFY). Wait for the
// resume with [Session.WaitResumed].
func (s *Server) WaitSession(ctx context.Context) (*Session, error) {
	var sess *Session
	err := s.Wait(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.readyCursor < len(s.order) {
			sess = s.order[s.readyCursor]
			s.readyCursor++
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// Session returns the latest session of appID, or nil.
func (s *Server) Session(appID string) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.order) - 1; i >= 0; i-- {
		if s.order[i].appID == appID {
			return s.order[i]
		}
	}
	return nil
}

// SessionByID returns the session with that id, or nil.
func (s *Server) SessionByID(id string) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// Sessions returns every session in the order they reached READY.
func (s *Server) Sessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Session(nil), s.order...)
}
