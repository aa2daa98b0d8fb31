package resume

import (
	"strconv"
	"strings"

	"github.com/qqgate/qqgate/wire"
)

// Mode is what a connection sends after HELLO. The zero value is
// [Identify].
type Mode int

const (
	// Identify starts a new session (op 2).
	Identify Mode = iota
	// Resume continues a stored session by id and seq (op 6).
	Resume
)

func (m Mode) String() string {
	switch m {
	case Identify:
		return "identify"
	case Resume:
		return "resume"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// start gives the start-up choice: [Resume] when a valid session
// record is held (younger than 5 minutes, session id set, lastSeq not null,
// appId matching), [Identify] otherwise.
func start(hasValidRecord bool) Mode {
	if hasValidRecord {
		return Resume
	}
	return Identify
}

// DefaultMaxAuthFailures is how many 4004 closes in a row, with no READY
// or RESUMED in between, make the client give up, unless
// [State.MaxAuthFailures] says otherwise.
const DefaultMaxAuthFailures = 3

// SignalKind says how a connection ended, or what the server asked for.
type SignalKind int

const (
	// SigClose is a close frame from the server; [Signal.Code] holds its
	// code (0 is taken as 1005, no status).
	SigClose SignalKind = iota + 1
	// SigNetwork is a network error after the connection opened: a reset, a
	// write or read error, EOF, a close 1006 with no frame, or a gateway
	// that stays silent (no HELLO within the HELLO timeout, no
	// READY/RESUMED within the READY timeout). The code is ignored.
	SigNetwork
	// SigZombie is our own close of a stuck connection: no frame at all
	// between two heartbeats.
	SigZombie
	// SigReconnect is op 7 RECONNECT.
	SigReconnect
	// SigInvalidSession is op 9 INVALID SESSION; [Signal.CanResume] is its d.
	SigInvalidSession
	// SigDialFailed means no connection opened: the token or /gateway
	// request, the dial or the upgrade failed. The server never saw a
	// RESUME, so it is not a failed resume.
	SigDialFailed
	// SigTooManyRequests means the token endpoint or /gateway answered "Too
	// many requests" or code 100001: wait at least a minute.
	SigTooManyRequests
)

func (k SignalKind) String() string {
	switch k {
	case SigClose:
		return "close"
	case SigNetwork:
		return "network error"
	case SigZombie:
		return "zombie"
	case SigReconnect:
		return "op 7 reconnect"
	case SigInvalidSession:
		return "op 9 invalid session"
	case SigDialFailed:
		return "dial failed"
	case SigTooManyRequests:
		return "too many requests"
	}
	return "SignalKind(" + strconv.Itoa(int(k)) + ")"
}

// Signal is one thing that happened to the connection. Kinds other than
// those declared are handled like [SigNetwork].
type Signal struct {
	Kind SignalKind
	// Code is the close code of a [SigClose].
	Code wire.CloseCode
	// Reason is the close reason or error text, for logs and errors.
	Reason string
	// CanResume is op 9's d, for a [SigInvalidSession].
	CanResume bool
	// Oversized is set when the connection ended on a frame over the read
	// limit; Seq is then the highest seq received, after which it came.
	Oversized bool
	Seq       uint64
}

// State is the reconnect loop's view of one account: the values the rules of
// policy depend on. It is a plain value; [Next], [Established] and
// [NewConnection] return updated copies and never keep a reference.
//
// The zero value means: no session, identify, one intent level, nothing
// failed.
type State struct {
	// Mode is what the current connection sends (or sent). [Next] sets it
	// to what the next connection should send.
	Mode Mode
	// HasSession is true while a session id and seq are held.
	HasSession bool
	// IntentLevel is the index into the configured intent levels that
	// IDENTIFY uses; it only grows, when intents are refused.
	IntentLevel int
	// IntentLevels is the number of intent levels configured. Zero or
	// negative is taken as 1 (no fallback).
	IntentLevels int

	// AuthFailures counts 4004 closes since the last READY or RESUMED,
	// across connections; reset by [Established].
	AuthFailures int
	// MaxAuthFailures is how many 4004 closes in a row are fatal. Zero or
	// negative means [DefaultMaxAuthFailures].
	MaxAuthFailures int

	// Across attempts, counted by [End].

	// Failures counts attempts in a row that did not reach READY or
	// RESUMED.
	Failures int
	// MaxAttempts, when positive, is how many such failures in a row make
	// [End] give up.
	MaxAttempts int
	// Unstable counts attempts in a row that did not stay up for the
	// stable period.
	Unstable int
	// OversizedAt is the highest seq received when a connection last
	// ended on a frame over the read limit; OversizedRepeats counts such
	// ends in a row after it.
	OversizedAt      uint64
	OversizedRepeats int

	// Per connection: reset by [NewConnection] and when [Next] sees the
	// connection end.

	// Established is true once this connection got READY or RESUMED.
	Established bool
	// Stable is true once this connection stayed up for the stable period
	// (the client's timer sets it, and resets its backoff then).
	Stable bool
	// ReconnectOp is true once op 7 arrived on this connection: the close
	// that follows (usually 4009) is the same event.
	ReconnectOp bool
	// InvalidSessionSeen is true once op 9 arrived on this connection: the
	// close that follows (4903 after a refused IDENTIFY, 4006 after a
	// refused RESUME) is the same event.
	InvalidSessionSeen bool
	// CanResume is the d of that op 9.
	CanResume bool
	// SteppedDown is true when that op 9 stepped the intent level down, so
	// a following 4013/4014 must not step down again.
	SteppedDown bool
}

// NewState gives the state at start-up: [Resume] when hasValidRecord (a
// session record valid for RESUME is held), at the stored intent level, clamped to [0, intentLevels-1].
func NewState(hasValidRecord bool, intentLevel, intentLevels int) State {
	st := State{
		Mode:         start(hasValidRecord),
		HasSession:   hasValidRecord,
		IntentLevel:  intentLevel,
		IntentLevels: intentLevels,
	}
	return st.normalized()
}

// NewConnection gives the state for a new connection attempt that will send
// mode: per-connection fields are reset. [Resume] without a session becomes
// [Identify].
func NewConnection(st State, mode Mode) State {
	st = st.normalized()
	st.Mode = mode
	if !st.HasSession {
		st.Mode = Identify
	}
	st.resetConnection()
	return st
}

// Established gives the state after READY (mode [Identify]) or RESUMED
// (mode [Resume]): a session is held, the connection is up, and the
// 4004 counter and the connection's op 7/op 9 marks are reset. The
// intent level is the one in use and should be stored with the record.
func Established(st State, mode Mode) State {
	st = st.normalized()
	st.Mode = mode
	st.HasSession = true
	st.Established = true
	st.AuthFailures = 0
	st.ReconnectOp = false
	st.InvalidSessionSeen = false
	st.CanResume = false
	st.SteppedDown = false
	return st
}

func (st State) normalized() State {
	if st.IntentLevels < 1 {
		st.IntentLevels = 1
	}
	st.IntentLevel = max(0, min(st.IntentLevel, st.IntentLevels-1))
	st.AuthFailures = max(0, st.AuthFailures)
	return st
}

func (st *State) resetConnection() {
	st.Established = false
	st.Stable = false
	st.ReconnectOp = false
	st.InvalidSessionSeen = false
	st.CanResume = false
	st.SteppedDown = false
}

// authLimit is the number of 4004 closes in a row that is fatal.
func (st State) authLimit() int {
	if st.MaxAuthFailures > 0 {
		return st.MaxAuthFailures
	}
	return DefaultMaxAuthFailures
}

// levelLeft reports whether a lower intent level exists.
func (st State) levelLeft() bool { return st.IntentLevel < st.IntentLevels-1 }

// resuming reports whether the connection sent RESUME and has not got
// RESUMED yet.
func (st State) resuming() bool { return st.Mode == Resume && !st.Established }

// Action is what to do after a [Decision]'s wait.
type Action int

const (
	// ActResume reconnects and sends RESUME.
	ActResume Action = iota + 1
	// ActIdentify reconnects and sends IDENTIFY.
	ActIdentify
	// ActFatal stops: nothing reconnects, the record is kept as it is, and
	// the client ends with an error carrying the close code and
	// [Decision.Reason].
	ActFatal
)

func (a Action) String() string {
	switch a {
	case ActResume:
		return "resume"
	case ActIdentify:
		return "identify"
	case ActFatal:
		return "fatal"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Mode gives the mode the next connection sends: [Resume] for [ActResume],
// [Identify] otherwise.
func (a Action) Mode() Mode {
	if a == ActResume {
		return Resume
	}
	return Identify
}

// Wait is how long to wait before the next connection; see [Wait.Delay].
type Wait int

const (
	// WaitNone reconnects at once.
	WaitNone Wait = iota
	// WaitBackoff waits for the next interval of the client's exponential
	// backoff ([Backoff.New]).
	WaitBackoff
	// WaitInvalidSession waits the invalid-session delay (about
	// [DefaultInvalidSessionDelay]), jittered.
	WaitInvalidSession
	// WaitRateLimit waits at least the rate-limit delay
	// ([DefaultRateLimitDelay]).
	WaitRateLimit
)

func (w Wait) String() string {
	switch w {
	case WaitNone:
		return "none"
	case WaitBackoff:
		return "backoff"
	case WaitInvalidSession:
		return "invalid session"
	case WaitRateLimit:
		return "rate limit"
	}
	return "Wait(" + strconv.Itoa(int(w)) + ")"
}

// Decision is what the client does about a [Signal].
type Decision struct {
	Action Action
	Wait   Wait
	// ClearSession: drop the session id and seq, and clear the stored
	// record. Already applied to the returned [State].
	ClearSession bool
	// RefreshToken: drop the cached access token and fetch a new one.
	RefreshToken bool
	// StepDown: the intent level stepped down; the returned
	// [State.IntentLevel] is already the new one.
	StepDown bool
	// FollowUp: the signal ended a connection that an earlier op 7 or op 9
	// had already decided. The decision repeats that one with no side
	// effects; a client that already acted on it must not reconnect twice.
	FollowUp bool
	// GaveUp: [End] gave up after [State.MaxAttempts] failed attempts in a
	// row. Action is [ActFatal]; nothing else applies.
	GaveUp bool
	// Oversized is how many connections in a row ended on a frame over the
	// read limit after the same seq, 0 when this one did not. At 2 the
	// session is dropped (ClearSession, identify): a RESUME would replay
	// the same frame forever.
	Oversized int
	// Reason is a short text for logs, e.g. "close 4009 session timed out:
	// resume at once".
	Reason string
}

// closeClass groups close codes that get the same rule.
type closeClass int

const (
	classOther         closeClass = iota // backoff, identify
	classResumeBackoff                   // 1000, 1001, 1005, 1006, network, zombie
	classResumeNow                       // 4009
	classRateLimited                     // 4008
	classAuth                            // 4004
	classClearIdentify                   // 4000, 4003, 4005, 4006, 4007, 4900-4913
	classIntents                         // 4013, 4014
	classFatal                           // 4001, 4002, 4010, 4011, 4012, 4914, 4915
)

func classify(code wire.CloseCode) closeClass {
	switch code {
	case 0, wire.CloseNormal, wire.CloseGoingAway, wire.CloseNoStatus, wire.CloseAbnormal:
		return classResumeBackoff
	case wire.CloseSessionTimedOut:
		return classResumeNow
	case wire.CloseRateLimited:
		return classRateLimited
	case wire.CloseAuthenticationFailed:
		return classAuth
	case wire.CloseUnknownError, wire.CloseNotAuthenticated, wire.CloseAlreadyAuthenticated,
		wire.CloseInvalidSession, wire.CloseInvalidSeq:
		return classClearIdentify
	case wire.CloseInvalidIntents, wire.CloseDisallowedIntents:
		return classIntents
	case wire.CloseInvalidOpcode, wire.CloseDecodeError, wire.CloseInvalidShard,
		wire.CloseShardingRequired, wire.CloseInvalidVersion, wire.CloseBotOffline, wire.CloseBotBanned:
		return classFatal
	}
	if code >= wire.CloseInternalFirst && code <= wire.CloseInternalLast {
		return classClearIdentify
	}
	return classOther
}

// Next applies the reconnect policy to one signal and returns the decision and the updated
// state. It never panics; a state with impossible values is clamped first.
//
// Rules, in short:
//   - op 7: resume at once, keep the session; the close that follows on the
//     same connection is a follow-up.
//   - op 9 true: backoff, resume (a backoff, not at once, so a server
//     repeating op 9 true cannot make a tight loop).
//   - op 9 false: clear the session, refresh the token, wait the
//     invalid-session delay (about 3 s), identify; before READY on an IDENTIFY with a lower intent level
//     left, step down one level. The close that follows (4903) is a
//     follow-up, so one refusal steps down once.
//   - close 1000/1001/1005/1006, network error, zombie: backoff, resume.
//   - 4009: resume at once. 4008: wait the rate-limit delay (at least
//     60 s), resume.
//   - 4004: refresh the token, backoff, resume; the
//     [State.MaxAuthFailures]th in a row is fatal.
//   - 4000, 4003, 4005, 4006, 4007, 4900–4913: clear, refresh the token,
//     backoff, identify.
//   - 4013/4014: step down, backoff, identify (clearing the session); fatal
//     at the last level.
//   - 4001, 4002, 4010, 4011, 4012, 4914, 4915: fatal, even as a follow-up.
//   - any other code: clear, backoff, identify.
//   - a RESUME that ends before RESUMED: the server's rejections (op 9
//     false, 4006, 4007, 4902) get their own rule above (clear, identify).
//     Anything else (a network error, a resumable close, op 7, op 9 true,
//     even in the middle of the replay) is not a rejection: resume again,
//     after a backoff (never at once). There is no count of failed
//     resumes: the client resumes while its session is valid (5 minutes
//     after the last connection), which it checks itself.
//   - without a session, resume becomes identify.
//   - dial failure: backoff, same mode. Too many requests: wait the
//     rate-limit delay, same mode.
func Next(st State, sig Signal) (Decision, State) {
	st = st.normalized()
	switch sig.Kind {
	case SigReconnect:
		return reconnectOp(st)
	case SigInvalidSession:
		return invalidSession(st, sig.CanResume)
	case SigDialFailed:
		return retrySameMode(st, describe(sig), WaitBackoff)
	case SigTooManyRequests:
		return retrySameMode(st, describe(sig), WaitRateLimit)
	}
	return connectionEnd(st, sig)
}

func describe(sig Signal) string {
	var what string
	if sig.Kind == SigClose {
		code := sig.Code
		if code == 0 {
			code = wire.CloseNoStatus
		}
		what = "close " + code.String()
	} else {
		what = sig.Kind.String()
	}
	if sig.Reason != "" {
		what += " (" + strconv.Quote(sig.Reason) + ")"
	}
	return what
}

func retrySameMode(st State, what string, wait Wait) (Decision, State) {
	d := Decision{Action: ActIdentify, Wait: wait}
	if st.HasSession && st.Mode == Resume {
		d.Action = ActResume
	}
	st.resetConnection()
	st.Mode = d.Action.Mode()
	d.Reason = what + ": " + d.verbs(st)
	return d, st
}

func reconnectOp(st State) (Decision, State) {
	if st.ReconnectOp || st.InvalidSessionSeen {
		d := st.followUp()
		d.Reason = "op 7 reconnect again: " + d.verbs(st)
		return d, st
	}
	st.ReconnectOp = true
	d := Decision{Action: ActResume, Wait: WaitNone}
	what := "op 7 reconnect"
	if st.resuming() {
		// During a resume: not a rejection, resume again, but after a
		// backoff, so a server that never lets a resume finish cannot
		// make a tight loop.
		d.Wait = WaitBackoff
		what += " during a resume"
	}
	if !st.HasSession {
		d = Decision{Action: ActIdentify, Wait: WaitBackoff}
		what += ", no session"
	}
	st.Mode = d.Action.Mode()
	d.Reason = what + ": " + d.verbs(st)
	return d, st
}

func invalidSession(st State, canResume bool) (Decision, State) {
	if st.InvalidSessionSeen {
		d := st.followUp()
		d.Reason = "op 9 invalid session again: " + d.verbs(st)
		return d, st
	}
	st.InvalidSessionSeen = true
	st.CanResume = canResume
	var d Decision
	what := "op 9 invalid session"
	if canResume {
		// Not a rejection, even during a resume: resume again.
		what += " (resumable)"
		d = Decision{Action: ActResume, Wait: WaitBackoff}
		if !st.HasSession {
			d.Action = ActIdentify
			what += ", no session"
		}
	} else {
		d = Decision{Action: ActIdentify, Wait: WaitInvalidSession, ClearSession: true, RefreshToken: true}
		if st.Mode == Identify && !st.Established {
			what += " before READY"
			if st.levelLeft() {
				what += ", intents refused"
				st.IntentLevel++
				st.SteppedDown = true
				d.StepDown = true
			}
		}
	}
	st.apply(d)
	d.Reason = what + ": " + d.verbs(st)
	return d, st
}

// followUp repeats the decision of the op 7 or op 9 already seen on this
// connection, without side effects.
func (st State) followUp() Decision {
	d := Decision{FollowUp: true, Action: ActIdentify, Wait: WaitBackoff}
	switch {
	case st.InvalidSessionSeen && !st.CanResume:
		d.Wait = WaitInvalidSession
	case st.HasSession:
		d.Action = ActResume
		if !st.InvalidSessionSeen && !st.resuming() {
			d.Wait = WaitNone // op 7
		}
	}
	return d
}

func connectionEnd(st State, sig Signal) (Decision, State) {
	what := describe(sig)
	class := classResumeBackoff // network, zombie and unknown kinds
	if sig.Kind == SigClose {
		class = classify(sig.Code)
	}
	if st.ReconnectOp || st.InvalidSessionSeen {
		followUp := class != classFatal && !(class == classIntents && !st.SteppedDown)
		if followUp {
			d := st.followUp()
			if st.InvalidSessionSeen {
				what += " after op 9"
			} else {
				what += " after op 7"
			}
			d.Reason = what + ": " + d.verbs(st)
			st.resetConnection()
			st.Mode = d.Action.Mode()
			return d, st
		}
	}
	var d Decision
	switch class {
	case classResumeBackoff:
		d = Decision{Action: ActResume, Wait: WaitBackoff}
	case classResumeNow:
		d = Decision{Action: ActResume, Wait: WaitNone}
	case classRateLimited:
		d = Decision{Action: ActResume, Wait: WaitRateLimit}
	case classAuth:
		st.AuthFailures++
		d = Decision{Action: ActResume, Wait: WaitBackoff, RefreshToken: true}
		if st.AuthFailures >= st.authLimit() {
			what += ", " + ordinal(st.AuthFailures) + " in a row"
			d = fatal()
		}
	case classClearIdentify:
		d = Decision{Action: ActIdentify, Wait: WaitBackoff, ClearSession: true, RefreshToken: true}
	case classIntents:
		if st.levelLeft() {
			st.IntentLevel++
			d = Decision{Action: ActIdentify, Wait: WaitBackoff, ClearSession: true, StepDown: true}
		} else {
			what += ", no intent level left"
			d = fatal()
		}
	case classFatal:
		d = fatal()
	default:
		d = Decision{Action: ActIdentify, Wait: WaitBackoff, ClearSession: true}
	}
	if d.Action == ActResume && d.Wait == WaitNone && st.resuming() {
		// A resumable end of a resume is not a rejection: resume again,
		// after a backoff rather than at once, so a server that keeps
		// cutting resumes short cannot make a tight loop.
		what += " during a resume"
		d.Wait = WaitBackoff
	}
	if d.Action == ActResume && !st.HasSession {
		what += ", no session"
		d.Action = ActIdentify
	}
	st.apply(d)
	st.resetConnection()
	d.Reason = what + ": " + d.verbs(st)
	return d, st
}

// fatal is the decision to stop; Reason says why (the client's error
// carries the close code and reason).
func fatal() Decision { return Decision{Action: ActFatal} }

// apply makes the state follow the decision's session and mode effects.
func (st *State) apply(d Decision) {
	if d.ClearSession {
		st.HasSession = false
	}
	if d.Action != ActFatal {
		st.Mode = d.Action.Mode()
	}
}

// verbs describes the decision for [Decision.Reason]; st is the state after
// it.
func (d Decision) verbs(st State) string {
	if d.Action == ActFatal {
		return "fatal"
	}
	var parts []string
	if d.StepDown {
		parts = append(parts, "step intents down to level "+strconv.Itoa(st.IntentLevel))
	}
	if d.ClearSession {
		parts = append(parts, "clear session")
	}
	if d.RefreshToken {
		parts = append(parts, "refresh token")
	}
	act := d.Action.String()
	switch d.Wait {
	case WaitNone:
		act += " at once"
	case WaitBackoff:
		parts = append(parts, "backoff")
	case WaitInvalidSession:
		parts = append(parts, "wait the invalid-session delay")
	case WaitRateLimit:
		parts = append(parts, "wait the rate-limit delay")
	}
	parts = append(parts, act)
	if d.FollowUp {
		parts = append(parts, "(already decided)")
		return strings.Join(parts[:len(parts)-1], ", ") + " " + parts[len(parts)-1]
	}
	return strings.Join(parts, ", ")
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "1st"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return strconv.Itoa(n) + "th"
}
