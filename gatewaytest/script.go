package gatewaytest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// RejectMode is how an IDENTIFY is rejected.
type RejectMode int

const (
	// RejectInvalidSession4903 sends op 9 d:false, then closes 4903
	// "create session error", as the real gateway does for intents the
	// bot may not use. It is the zero value.
	RejectInvalidSession4903 RejectMode = iota
	// RejectClose4013 closes 4013 "invalid intents".
	RejectClose4013
	// RejectClose4014 closes 4014 "disallowed intents".
	RejectClose4014
)

// String names the mode.
func (m RejectMode) String() string {
	switch m {
	case RejectInvalidSession4903:
		return "op 9 false + 4903"
	case RejectClose4013:
		return "close 4013"
	case RejectClose4014:
		return "close 4014"
	}
	return "RejectMode(" + strconv.Itoa(int(m)) + ")"
}

func (m RejectMode) rejection() rejection {
	switch m {
	case RejectClose4013:
		return rejection{code: wire.CloseInvalidIntents, reason: "invalid intents"}
	case RejectClose4014:
		return rejection{code: wire.CloseDisallowedIntents, reason: "disallowed intents"}
	}
	return rejection{invalidSession: true, code: wire.CloseCreateSessionError, reason: "create session error"}
}

func (m RejectMode) identifyRejection() rejection { return m.rejection() }

// ResumeReject is the scripted outcome of a RESUME.
type ResumeReject int

const (
	// ResumeRejectInvalidSession sends op 9 d:false, then closes 4006
	// "invalid session". It is the zero value and the default for an
	// unknown or expired session.
	ResumeRejectInvalidSession ResumeReject = iota
	// ResumeReject4006 closes 4006 "invalid session" without op 9.
	ResumeReject4006
	// ResumeReject4902 closes 4902 "reset by resume".
	ResumeReject4902
	// ResumeDropBeforeResumed accepts the RESUME and replays the missed
	// events, then drops the TCP connection before RESUMED.
	ResumeDropBeforeResumed
	// ResumeAcceptThenClose resumes fully (replay, RESUMED), then closes
	// 4009 "Session timed out" at once.
	ResumeAcceptThenClose
	// ResumeDropMidReplay accepts the RESUME, replays the first half of the
	// missed events (rounded up), then drops the TCP connection: a network
	// failure in the middle of a replay.
	ResumeDropMidReplay
)

// accepts reports whether the mode lets a RESUME that would succeed
// attach to its session.
func (m ResumeReject) accepts() bool {
	return m == ResumeDropBeforeResumed || m == ResumeAcceptThenClose || m == ResumeDropMidReplay
}

// String names the mode.
func (m ResumeReject) String() string {
	switch m {
	case ResumeRejectInvalidSession:
		return "op 9 false + 4006"
	case ResumeReject4006:
		return "close 4006"
	case ResumeReject4902:
		return "close 4902"
	case ResumeDropBeforeResumed:
		return "replay, then drop before RESUMED"
	case ResumeAcceptThenClose:
		return "RESUMED, then close 4009"
	case ResumeDropMidReplay:
		return "half the replay, then drop"
	}
	return "ResumeReject(" + strconv.Itoa(int(m)) + ")"
}

func (m ResumeReject) rejection() rejection {
	switch m {
	case ResumeReject4006:
		return rejection{code: wire.CloseInvalidSession, reason: "invalid session"}
	case ResumeReject4902:
		return rejection{code: wire.CloseResetByResume, reason: "reset by resume"}
	}
	return rejection{invalidSession: true, code: wire.CloseInvalidSession, reason: "invalid session"}
}

func (m ResumeReject) resumeAction() resumeAction { return resumeAction{mode: m} }

// Close is a close the server sends: Code and Reason in a close frame.
// [wire.CloseAbnormal] (1006), and any code that may not be sent in a
// close frame, drops the TCP connection without one instead.
type Close struct {
	Code   wire.CloseCode
	Reason string
}

func (c Close) rejection() rejection { return rejection{code: c.Code, reason: c.Reason} }

func (c Close) identifyRejection() rejection { return c.rejection() }

func (c Close) resumeAction() resumeAction {
	r := c.rejection()
	return resumeAction{mode: -1, custom: &r}
}

// IdentifyRejection is how [Server.RejectIdentifies] rejects an IDENTIFY:
// a [RejectMode], or a [Close] (a plain close, no op 9 first).
type IdentifyRejection interface {
	identifyRejection() rejection
}

// ResumeOutcome is what [Server.RejectResumes] does with a RESUME: a
// [ResumeReject], or a [Close] (a plain close, no op 9 first).
type ResumeOutcome interface {
	resumeAction() resumeAction
}

// rejection ends a connection: optionally op 9 d:false first, then a close
// with code (or a drop for a code that cannot be sent).
type rejection struct {
	invalidSession bool
	code           wire.CloseCode
	reason         string
}

// resumeAction is one queued RESUME outcome.
type resumeAction struct {
	mode   ResumeReject
	custom *rejection // a Close
}

// rejectLocked applies r to c.
func (s *Server) rejectLocked(c *conn, r rejection) {
	if r.invalidSession {
		s.sendLocked(c, invalidSessionFrame(false))
	}
	s.closeLocked(c, r.code, r.reason)
}

func invalidSessionFrame(canResume bool) []byte {
	b, _ := wire.EncodeFrame(wire.OpInvalidSession, canResume)
	return b
}

// WithholdACKs stops (true) or resumes (false) answering heartbeats, to
// test zombie detection. Heartbeats are still recorded.
func (s *Server) WithholdACKs(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.withholdACKs = on
}

// HoldAuth makes the server hold back its answer (READY, or the replay and
// RESUMED, or a rejection) to every IDENTIFY and RESUME that arrives until
// release is called: a gateway slow to authenticate. Heartbeats are still
// answered meanwhile. release first makes sure that every frame a held
// connection sent before it has been handled (a WebSocket ping round trip,
// so a heartbeat sent right after IDENTIFY is seen before READY goes out),
// then answers the held frames as if they had just arrived. release is
// idempotent.
func (s *Server) HoldAuth() (release func()) {
	s.mu.Lock()
	s.holdAuth = true
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(s.releaseAuth) }
}

func (s *Server) releaseAuth() {
	s.mu.Lock()
	s.holdAuth = false
	var held []*conn
	for _, c := range s.conns {
		if c.held != nil {
			held = append(held, c)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(held, func(a, b *conn) int { return a.id - b.id })
	for _, c := range held {
		if c.ws != nil {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			_ = c.ws.Ping(ctx) // an error means the connection is going anyway
			cancel()
		}
		s.mu.Lock()
		f := c.held
		c.held = nil
		if f != nil && !c.closing && !s.closed {
			s.authLocked(c, *f)
		}
		s.mu.Unlock()
	}
}

// RejectIdentifies queues n rejections, applied in order to the next n
// IDENTIFYs that carry a valid token (before the intents check): a
// [RejectMode] (RejectClose4014, say), or a [Close] for a plain close with
// any code and reason (Close{Code: 1006} drops the TCP connection).
func (s *Server) RejectIdentifies(n int, r IdentifyRejection) {
	s.queueIdentify(n, r.identifyRejection())
}

func (s *Server) queueIdentify(n int, r rejection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.identifyScript = append(s.identifyScript, r)
	}
}

// RejectResumes queues n outcomes, applied in order to the next n RESUMEs
// that carry a valid token, whatever session they name: a [ResumeReject],
// or a [Close] for a plain close with any code and reason (Close{Code: 1006}
// drops the TCP connection). A scripted rejection does not change the
// session: it stays resumable. The accepting modes
// (ResumeDropBeforeResumed, ResumeAcceptThenClose,
// ResumeDropMidReplay) apply only to a RESUME
// that would succeed; for any other the normal rejection happens and the
// entry is used up all the same.
func (s *Server) RejectResumes(n int, o ResumeOutcome) {
	s.queueResume(n, o.resumeAction())
}

func (s *Server) queueResume(n int, a resumeAction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.resumeScript = append(s.resumeScript, a)
	}
}

// CloseNextAfterHello makes the next accepted connection close with code
// and reason right after HELLO, whatever the client sends (to test fatal
// codes such as 4914/4915, or 4008; 1006 drops it). Calls queue up: each
// new connection uses one.
func (s *Server) CloseNextAfterHello(code wire.CloseCode, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.helloScript = append(s.helloScript, rejection{code: code, reason: reason})
}
