package resume

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/wire"
)

// outcome is a Decision without its free-text and pointer fields.
type outcome struct {
	Action   Action
	Wait     Wait
	Clear    bool
	Refresh  bool
	StepDown bool
	FollowUp bool
}

func outcomeOf(d Decision) outcome {
	return outcome{d.Action, d.Wait, d.ClearSession, d.RefreshToken, d.StepDown, d.FollowUp}
}

// Typical states.
var (
	// up: a connection that got READY or RESUMED.
	up = State{Mode: Resume, HasSession: true, Established: true, IntentLevels: 3}
	// resuming: RESUME sent, no RESUMED yet.
	resuming = State{Mode: Resume, HasSession: true, IntentLevels: 3}
	// identifying: IDENTIFY sent at level 0, no READY yet.
	identifying = State{Mode: Identify, IntentLevels: 3}
	// identifyingLast: IDENTIFY sent at the last level.
	identifyingLast = State{Mode: Identify, IntentLevel: 2, IntentLevels: 3}
)

func closeSig(c wire.CloseCode) Signal { return Signal{Kind: SigClose, Code: c, Reason: "r"} }

var (
	resumeNow     = outcome{Action: ActResume, Wait: WaitNone}
	resumeBackoff = outcome{Action: ActResume, Wait: WaitBackoff}
	clearIdentify = outcome{Action: ActIdentify, Wait: WaitBackoff, Clear: true, Refresh: true}
	fatalOutcome  = outcome{Action: ActFatal}
)

// TestNextPolicy has one case per row of the reconnect policy (and a few
// per code where a row lists several).
func TestNextPolicy(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		st    State
		sig   Signal
		want  outcome
		check func(t *testing.T, st State)
	}
	keepsSession := func(t *testing.T, st State) { assert.True(t, st.HasSession) }
	dropsSession := func(t *testing.T, st State) {
		assert.False(t, st.HasSession)
		assert.Equal(t, Identify, st.Mode)
	}
	cases := []tc{
		{name: "op 7 RECONNECT: resume at once", st: up, sig: Signal{Kind: SigReconnect},
			want: resumeNow, check: func(t *testing.T, st State) {
				assert.True(t, st.HasSession)
				assert.True(t, st.ReconnectOp)
				assert.Equal(t, Resume, st.Mode)
			}},
		{name: "op 9 true: backoff, resume", st: up, sig: Signal{Kind: SigInvalidSession, CanResume: true},
			want: resumeBackoff, check: keepsSession},
		{name: "op 9 false: clear, refresh, ~3s, identify", st: up, sig: Signal{Kind: SigInvalidSession},
			want: outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true}, check: dropsSession},
		{name: "op 9 false before READY: step intents down", st: identifying, sig: Signal{Kind: SigInvalidSession},
			want: outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true, StepDown: true},
			check: func(t *testing.T, st State) {
				assert.Equal(t, 1, st.IntentLevel)
				assert.True(t, st.SteppedDown)
			}},
		{name: "op 9 false before READY at the last level: no step down", st: identifyingLast, sig: Signal{Kind: SigInvalidSession},
			want:  outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true},
			check: func(t *testing.T, st State) { assert.Equal(t, 2, st.IntentLevel) }},
		{name: "op 9 false before READY with one level: no step down", st: State{Mode: Identify}, sig: Signal{Kind: SigInvalidSession},
			want:  outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true},
			check: func(t *testing.T, st State) { assert.Equal(t, 0, st.IntentLevel) }},
		{name: "op 9 false after READY: no step down", st: State{Mode: Identify, HasSession: true, Established: true, IntentLevels: 3},
			sig:   Signal{Kind: SigInvalidSession},
			want:  outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true},
			check: func(t *testing.T, st State) { assert.Equal(t, 0, st.IntentLevel) }},
		{name: "close 4009 session timed out: resume at once", st: up, sig: closeSig(wire.CloseSessionTimedOut),
			want: resumeNow, check: keepsSession},
		{name: "close 4008 rate limited: wait 60s, resume", st: up, sig: closeSig(wire.CloseRateLimited),
			want: outcome{Action: ActResume, Wait: WaitRateLimit}, check: keepsSession},
		{name: "close 4004 bad token: refresh, backoff, resume", st: up, sig: closeSig(wire.CloseAuthenticationFailed),
			want: outcome{Action: ActResume, Wait: WaitBackoff, Refresh: true}, check: func(t *testing.T, st State) {
				assert.True(t, st.HasSession)
				assert.Equal(t, 1, st.AuthFailures)
			}},
		{name: "close 4004 third in a row: fatal", st: with(up, func(s *State) { s.AuthFailures = 2 }),
			sig: closeSig(wire.CloseAuthenticationFailed), want: fatalOutcome, check: keepsSession},
		{name: "close 4013 invalid intents: step down, identify", st: identifying, sig: closeSig(wire.CloseInvalidIntents),
			want:  outcome{Action: ActIdentify, Wait: WaitBackoff, Clear: true, StepDown: true},
			check: func(t *testing.T, st State) { assert.Equal(t, 1, st.IntentLevel) }},
		{name: "close 4014 intents not permitted: step down, identify", st: with(identifying, func(s *State) { s.IntentLevel = 1 }),
			sig:   closeSig(wire.CloseDisallowedIntents),
			want:  outcome{Action: ActIdentify, Wait: WaitBackoff, Clear: true, StepDown: true},
			check: func(t *testing.T, st State) { assert.Equal(t, 2, st.IntentLevel) }},
		{name: "close 4013 at the last level: fatal", st: identifyingLast, sig: closeSig(wire.CloseInvalidIntents), want: fatalOutcome},
		{name: "close 4014 at the last level: fatal", st: identifyingLast, sig: closeSig(wire.CloseDisallowedIntents), want: fatalOutcome},
		{name: "close 4014 with no levels configured: fatal", st: State{Mode: Identify}, sig: closeSig(wire.CloseDisallowedIntents), want: fatalOutcome},
		{name: "resume cut by a network error: resume again", st: resuming,
			sig: Signal{Kind: SigNetwork}, want: resumeBackoff, check: keepsSession},
		{name: "resume cut by a retryable close: resume again", st: resuming,
			sig: closeSig(wire.CloseGoingAway), want: resumeBackoff, check: keepsSession},
		{name: "resume cut by 4009: resume again, after a backoff", st: resuming,
			sig: closeSig(wire.CloseSessionTimedOut), want: resumeBackoff, check: keepsSession},
		{name: "resume cut by op 7: resume again, after a backoff", st: resuming,
			sig: Signal{Kind: SigReconnect}, want: resumeBackoff, check: keepsSession},
		{name: "resume cut by op 9 true: resume again", st: resuming,
			sig: Signal{Kind: SigInvalidSession, CanResume: true}, want: resumeBackoff, check: keepsSession},
		{name: "resume cut by 4008: wait 60s, resume again", st: resuming,
			sig: closeSig(wire.CloseRateLimited), want: outcome{Action: ActResume, Wait: WaitRateLimit}, check: keepsSession},
		{name: "resume refused by op 9 false: clear, identify", st: resuming,
			sig: Signal{Kind: SigInvalidSession}, want: outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true}, check: dropsSession},
		{name: "resume refused by 4006: clear, identify", st: resuming,
			sig: closeSig(wire.CloseInvalidSession), want: clearIdentify, check: dropsSession},
		{name: "resume refused by 4007: clear, identify", st: resuming,
			sig: closeSig(wire.CloseInvalidSeq), want: clearIdentify, check: dropsSession},
		{name: "resume refused by 4902: clear, identify", st: resuming,
			sig: closeSig(wire.CloseResetByResume), want: clearIdentify, check: dropsSession},
		{name: "resume without a session: identify", st: State{Mode: Identify, Established: true},
			sig: closeSig(wire.CloseSessionTimedOut), want: outcome{Action: ActIdentify, Wait: WaitNone}},
		{name: "dial failure: backoff, resume", st: resuming,
			sig: Signal{Kind: SigDialFailed}, want: resumeBackoff, check: keepsSession},
		{name: "dial failure without a session: backoff, identify", st: identifying,
			sig: Signal{Kind: SigDialFailed}, want: outcome{Action: ActIdentify, Wait: WaitBackoff}},
		{name: "too many requests: wait 60s, same mode", st: up,
			sig: Signal{Kind: SigTooManyRequests}, want: outcome{Action: ActResume, Wait: WaitRateLimit}},
	}
	// close 1000, 1001, 1005, 1006, any network error, our own zombie close: backoff, resume.
	for _, sig := range []Signal{
		closeSig(wire.CloseNormal), closeSig(wire.CloseGoingAway), closeSig(wire.CloseNoStatus),
		closeSig(wire.CloseAbnormal), closeSig(0), {Kind: SigNetwork, Reason: "connection reset"}, {Kind: SigZombie},
		{Kind: SignalKind(99)},
	} {
		cases = append(cases, tc{name: "close 1000 1001 1005 1006 network zombie: backoff, resume/" + describe(sig),
			st: up, sig: sig, want: resumeBackoff, check: keepsSession})
	}
	// close 4006, 4007, 4003, 4005, 4000, 4900-4913: clear, refresh, backoff, identify.
	for _, c := range []wire.CloseCode{4006, 4007, 4003, 4005, 4000, 4900, 4901, 4902, 4903, 4910, 4913} {
		cases = append(cases, tc{name: fmt.Sprintf("close 4006 4007 4003 4005 4000 4900-4913: identify/%d", c),
			st: up, sig: closeSig(c), want: clearIdentify, check: dropsSession})
	}
	// close 4001, 4002, 4010, 4011, 4012, 4914, 4915: fatal.
	for _, c := range []wire.CloseCode{4001, 4002, 4010, 4011, 4012, 4914, 4915} {
		cases = append(cases, tc{name: fmt.Sprintf("close 4001 4002 4010 4011 4012 4914 4915: fatal/%d", c),
			st: up, sig: closeSig(c), want: fatalOutcome, check: keepsSession})
	}
	// any other close code: backoff, identify.
	for _, c := range []wire.CloseCode{1011, 1012, 3000, 4015, 4899, 4916, 4999} {
		cases = append(cases, tc{name: fmt.Sprintf("any other close code: backoff, identify/%d", c),
			st: up, sig: closeSig(c), want: outcome{Action: ActIdentify, Wait: WaitBackoff, Clear: true}, check: dropsSession})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, st := Next(c.st, c.sig)
			assert.Equal(t, c.want, outcomeOf(d))
			assert.NotEmpty(t, d.Reason)
			if d.Action == ActFatal {
				assert.True(t, strings.HasSuffix(d.Reason, ": fatal"), d.Reason)
				assert.Contains(t, d.Reason, c.sig.Code.String())
				assert.Equal(t, c.st.HasSession, st.HasSession, "fatal keeps the record as it is")
				assert.False(t, d.ClearSession || d.RefreshToken, "fatal has no other effect")
			} else {
				assert.Equal(t, d.Action.Mode(), st.Mode)
			}
			if c.sig.Kind != SigReconnect && c.sig.Kind != SigInvalidSession {
				assert.False(t, st.Established, "the connection is over")
			}
			if c.check != nil {
				c.check(t, st)
			}
		})
	}
}

func with(st State, f func(*State)) State {
	f(&st)
	return st
}

// run feeds signals in order, as one client loop would, and returns every
// decision.
func run(st State, sigs ...Signal) ([]Decision, State) {
	var ds []Decision
	for _, sig := range sigs {
		var d Decision
		d, st = Next(st, sig)
		ds = append(ds, d)
	}
	return ds, st
}

func TestOp7Then4009KeepsSession(t *testing.T) {
	t.Parallel()
	ds, st := run(up, Signal{Kind: SigReconnect}, closeSig(wire.CloseSessionTimedOut))
	assert.Equal(t, resumeNow, outcomeOf(ds[0]))
	assert.Equal(t, outcome{Action: ActResume, Wait: WaitNone, FollowUp: true}, outcomeOf(ds[1]))
	assert.Equal(t, "close 4009 session timed out (\"r\") after op 7: resume at once (already decided)", ds[1].Reason)
	assert.True(t, st.HasSession)
	assert.Equal(t, Resume, st.Mode)
	assert.False(t, st.ReconnectOp, "the connection is over")

	// The next connection's 4009 is a new event again.
	st = NewConnection(st, Resume)
	st = Established(st, Resume)
	d, st := Next(st, closeSig(wire.CloseSessionTimedOut))
	assert.Equal(t, resumeNow, outcomeOf(d))
	assert.True(t, st.HasSession)
}

func TestOp7ThenFatalCloseIsFatal(t *testing.T) {
	t.Parallel()
	ds, _ := run(up, Signal{Kind: SigReconnect}, closeSig(wire.CloseBotBanned))
	assert.Equal(t, fatalOutcome, outcomeOf(ds[1]))
}

func TestOp7TwiceIsOneEvent(t *testing.T) {
	t.Parallel()
	ds, st := run(up, Signal{Kind: SigReconnect}, Signal{Kind: SigReconnect}, Signal{Kind: SigNetwork})
	assert.Equal(t, outcome{Action: ActResume, Wait: WaitNone, FollowUp: true}, outcomeOf(ds[1]))
	assert.Equal(t, outcome{Action: ActResume, Wait: WaitNone, FollowUp: true}, outcomeOf(ds[2]))
	assert.True(t, st.HasSession)
}

func TestOp7WithoutSessionIdentifiesWithBackoff(t *testing.T) {
	t.Parallel()
	ds, st := run(identifying, Signal{Kind: SigReconnect}, closeSig(wire.CloseSessionTimedOut))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitBackoff}, outcomeOf(ds[0]))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitBackoff, FollowUp: true}, outcomeOf(ds[1]))
	assert.Equal(t, Identify, st.Mode)
}

func TestOp9FalseThen4903IsOneRejection(t *testing.T) {
	t.Parallel()
	st := NewState(false, 0, 3)
	st = NewConnection(st, st.Mode)
	ds, st := run(st, Signal{Kind: SigInvalidSession}, closeSig(wire.CloseCreateSessionError))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true, StepDown: true}, outcomeOf(ds[0]))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitInvalidSession, FollowUp: true}, outcomeOf(ds[1]))
	assert.Equal(t, 1, st.IntentLevel, "one rejection steps down once")

	// The next IDENTIFY, at level 1, is refused the same way: level 2.
	st = NewConnection(st, Identify)
	ds, st = run(st, Signal{Kind: SigInvalidSession}, closeSig(wire.CloseCreateSessionError))
	assert.True(t, ds[0].StepDown)
	assert.False(t, ds[1].StepDown)
	assert.Equal(t, 2, st.IntentLevel)

	// At the last level there is nothing to step down to: keep identifying.
	st = NewConnection(st, Identify)
	ds, st = run(st, Signal{Kind: SigInvalidSession}, closeSig(wire.CloseCreateSessionError))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true}, outcomeOf(ds[0]))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitInvalidSession, FollowUp: true}, outcomeOf(ds[1]))
	assert.Equal(t, 2, st.IntentLevel)
	assert.Contains(t, ds[0].Reason, "before READY")
}

func TestOp9FalseThen4014(t *testing.T) {
	t.Parallel()
	// op 9 stepped down: the 4014 is the same rejection.
	ds, st := run(identifying, Signal{Kind: SigInvalidSession}, closeSig(wire.CloseDisallowedIntents))
	assert.True(t, ds[1].FollowUp)
	assert.False(t, ds[1].StepDown)
	assert.Equal(t, 1, st.IntentLevel)

	// At the last level the 4014 makes it final.
	ds, _ = run(identifyingLast, Signal{Kind: SigInvalidSession}, closeSig(wire.CloseDisallowedIntents))
	assert.Equal(t, fatalOutcome, outcomeOf(ds[1]))
}

func TestOp9FalseOnResumeThen4006(t *testing.T) {
	t.Parallel()
	ds, st := run(resuming, Signal{Kind: SigInvalidSession}, closeSig(wire.CloseInvalidSession))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitInvalidSession, Clear: true, Refresh: true}, outcomeOf(ds[0]))
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitInvalidSession, FollowUp: true}, outcomeOf(ds[1]))
	assert.Equal(t, 0, st.IntentLevel, "a refused RESUME is not an intent rejection")
	assert.False(t, st.HasSession)
}

// No count of failed resumes: whatever cuts resumes short, again and
// again, the next connection resumes (after a backoff), until the server
// refuses the session.
func TestFailedResumesKeepResuming(t *testing.T) {
	t.Parallel()
	cuts := []Signal{
		closeSig(wire.CloseSessionTimedOut), {Kind: SigNetwork}, {Kind: SigZombie},
		{Kind: SigInvalidSession, CanResume: true}, {Kind: SigReconnect}, closeSig(wire.CloseAbnormal),
		closeSig(wire.CloseGoingAway), closeSig(wire.CloseRateLimited),
	}
	st := NewConnection(NewState(true, 0, 1), Resume)
	for i := 0; i < 3; i++ {
		for _, sig := range cuts {
			d, next := Next(st, sig)
			require.Equal(t, ActResume, d.Action, "%s: %s", describe(sig), d.Reason)
			require.NotEqual(t, WaitNone, d.Wait, "%s: never at once during a resume", describe(sig))
			require.False(t, d.ClearSession)
			require.True(t, next.HasSession)
			if sig.Kind == SigReconnect {
				// The close that follows op 7 on the same connection.
				d, next = Next(next, closeSig(wire.CloseSessionTimedOut))
				require.Equal(t, outcome{Action: ActResume, Wait: WaitBackoff, FollowUp: true}, outcomeOf(d))
			}
			st = NewConnection(next, d.Action.Mode())
		}
	}
	d, st := Next(st, closeSig(wire.CloseInvalidSession))
	assert.Equal(t, clearIdentify, outcomeOf(d), "a rejection still clears")
	assert.False(t, st.HasSession)
}

func TestThree4004sAreFatal(t *testing.T) {
	t.Parallel()
	st := Established(NewConnection(NewState(false, 0, 1), Identify), Identify)
	var d Decision
	for i := 1; i <= 3; i++ {
		d, st = Next(st, Signal{Kind: SigClose, Code: wire.CloseAuthenticationFailed, Reason: "invalid token"})
		if i < 3 {
			require.Equal(t, outcome{Action: ActResume, Wait: WaitBackoff, Refresh: true}, outcomeOf(d), "attempt %d", i)
			require.Equal(t, i, st.AuthFailures)
			st = NewConnection(st, d.Action.Mode())
		}
	}
	assert.Equal(t, fatalOutcome, outcomeOf(d))
	assert.Equal(t, `close 4004 authentication failed ("invalid token"), 3rd in a row: fatal`, d.Reason)

	// A READY in between starts the count again.
	st = Established(NewConnection(NewState(true, 0, 1), Resume), Resume)
	st.AuthFailures = 2
	st = Established(st, Resume)
	d, _ = Next(st, closeSig(wire.CloseAuthenticationFailed))
	assert.Equal(t, ActResume, d.Action)
}

// State.MaxAuthFailures moves the fatal 4004 count; zero keeps the
// default of three.
func TestMaxAuthFailuresIsTheLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ limit, fatalAt int }{{0, DefaultMaxAuthFailures}, {-1, DefaultMaxAuthFailures}, {1, 1}, {5, 5}} {
		st := Established(NewConnection(NewState(true, 0, 1), Resume), Resume)
		st.MaxAuthFailures = tc.limit
		for i := 1; i <= tc.fatalAt; i++ {
			var d Decision
			d, st = Next(st, closeSig(wire.CloseAuthenticationFailed))
			if i < tc.fatalAt {
				require.Equal(t, ActResume, d.Action, "limit %d, 4004 number %d", tc.limit, i)
				st = NewConnection(st, d.Action.Mode())
				continue
			}
			require.Equal(t, ActFatal, d.Action, "limit %d, 4004 number %d", tc.limit, i)
			assert.Contains(t, d.Reason, ordinal(tc.fatalAt)+" in a row")
		}
	}
}

func TestLastLevelRejectionFatal(t *testing.T) {
	t.Parallel()
	st := NewConnection(NewState(false, 0, 3), Identify)
	for level := 1; level <= 2; level++ {
		var d Decision
		d, st = Next(st, closeSig(wire.CloseDisallowedIntents))
		require.True(t, d.StepDown)
		require.Equal(t, level, st.IntentLevel)
		assert.Contains(t, d.Reason, fmt.Sprintf("step intents down to level %d", level))
		st = NewConnection(st, d.Action.Mode())
	}
	d, st := Next(st, Signal{Kind: SigClose, Code: wire.CloseDisallowedIntents, Reason: "intents not allowed"})
	assert.Equal(t, ActFatal, d.Action)
	assert.Equal(t, 2, st.IntentLevel)
	assert.Equal(t, `close 4014 intents not permitted ("intents not allowed"), no intent level left: fatal`, d.Reason)
}

func TestFatalReason(t *testing.T) {
	t.Parallel()
	d, _ := Next(up, Signal{Kind: SigClose, Code: wire.CloseBotBanned, Reason: "banned"})
	assert.Equal(t, ActFatal, d.Action)
	assert.Equal(t, `close 4915 bot banned ("banned"): fatal`, d.Reason)
}

func TestStateHelpers(t *testing.T) {
	t.Parallel()
	assert.Equal(t, Resume, start(true))
	assert.Equal(t, Identify, start(false))

	st := NewState(true, 7, 3)
	assert.Equal(t, State{Mode: Resume, HasSession: true, IntentLevel: 2, IntentLevels: 3}, st)
	st = NewState(false, -1, 0)
	assert.Equal(t, State{Mode: Identify, IntentLevels: 1}, st)

	// Resume without a session becomes identify.
	st = NewConnection(State{}, Resume)
	assert.Equal(t, Identify, st.Mode)

	st = State{Mode: Resume, HasSession: true, IntentLevels: 1, ReconnectOp: true, InvalidSessionSeen: true,
		CanResume: true, SteppedDown: true, Established: true}
	st = NewConnection(st, Resume)
	assert.Equal(t, State{Mode: Resume, HasSession: true, IntentLevels: 1}, st)

	st = Established(State{Mode: Identify, AuthFailures: 2, ReconnectOp: true, IntentLevel: 1, IntentLevels: 3}, Identify)
	assert.Equal(t, State{Mode: Identify, HasSession: true, Established: true, IntentLevel: 1, IntentLevels: 3}, st)

	// The zero state is usable.
	d, st := Next(State{}, Signal{Kind: SigNetwork})
	assert.Equal(t, outcome{Action: ActIdentify, Wait: WaitBackoff}, outcomeOf(d))
	assert.Equal(t, State{IntentLevels: 1}, st)
}

func TestEnumStrings(t *testing.T) {
	t.Parallel()
	for _, m := range []Mode{Identify, Resume} {
		assert.NotContains(t, m.String(), "(")
	}
	for k := SigClose; k <= SigTooManyRequests; k++ {
		assert.NotContains(t, k.String(), "(", int(k))
	}
	for a := ActResume; a <= ActFatal; a++ {
		assert.NotContains(t, a.String(), "(", int(a))
	}
	for w := WaitNone; w <= WaitRateLimit; w++ {
		assert.NotContains(t, w.String(), "(", int(w))
	}
	assert.Equal(t, "Mode(9)", Mode(9).String())
	assert.Equal(t, "SignalKind(0)", SignalKind(0).String())
	assert.Equal(t, "Action(0)", Action(0).String())
	assert.Equal(t, "Wait(-1)", Wait(-1).String())
}

// TestNextNeverPanics runs every signal kind and many codes over odd states.
func TestNextNeverPanics(t *testing.T) {
	t.Parallel()
	states := []State{{}, up, resuming, identifying, identifyingLast,
		{IntentLevel: 9, IntentLevels: -3, AuthFailures: 99, Mode: Mode(7)},
		{ReconnectOp: true, InvalidSessionSeen: true, SteppedDown: true}}
	for _, st := range states {
		for k := SignalKind(0); k <= SigTooManyRequests+1; k++ {
			for c := wire.CloseCode(0); c < 5000; c += 7 {
				d, got := Next(st, Signal{Kind: k, Code: c, CanResume: c%2 == 0})
				require.NotZero(t, d.Action)
				require.NotEmpty(t, d.Reason)
				require.Equal(t, d.Action == ActFatal, strings.HasSuffix(d.Reason, ": fatal"))
				require.GreaterOrEqual(t, got.IntentLevel, 0)
				require.Less(t, got.IntentLevel, got.IntentLevels)
			}
		}
	}
}
