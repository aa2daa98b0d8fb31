package resume

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/wire"
)

// End gives up after MaxAttempts attempts in a row without READY or
// RESUMED; one that got there starts the count again.
func TestEndGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	st := NewState(true, 0, 1)
	st.MaxAttempts = 3
	dial := Signal{Kind: SigDialFailed, Reason: "dial tcp: refused"}
	var d Decision
	for i := 1; i <= 2; i++ {
		st = NewConnection(st, st.Mode)
		d, st = End(st, dial)
		require.Equal(t, resumeBackoff, outcomeOf(d), "attempt %d", i)
		require.False(t, d.GaveUp)
		require.Equal(t, i, st.Failures)
	}
	st = Established(NewConnection(st, st.Mode), Resume)
	d, st = End(st, closeSig(wire.CloseGoingAway))
	require.False(t, d.GaveUp)
	assert.Zero(t, st.Failures, "READY/RESUMED starts the count again")
	for i := 1; i <= 3; i++ {
		st = NewConnection(st, st.Mode)
		d, st = End(st, closeSig(wire.CloseSessionTimedOut))
	}
	assert.True(t, d.GaveUp)
	assert.Equal(t, ActFatal, d.Action)
	assert.Equal(t, 3, st.Failures)
	assert.Contains(t, d.Reason, "3rd failed attempt in a row")
	assert.False(t, d.ClearSession || d.RefreshToken || d.StepDown, "giving up has no other effect")

	// No limit: never gives up.
	st = NewState(true, 0, 1)
	for range 100 {
		st = NewConnection(st, st.Mode)
		d, st = End(st, dial)
		require.False(t, d.GaveUp)
	}
}

// "At once" after connections that did not stay up becomes a backoff the
// second time in a row; a stable connection starts the count again.
func TestEndNoTightLoop(t *testing.T) {
	t.Parallel()
	st := Established(NewConnection(NewState(true, 0, 1), Resume), Resume)
	d, st := End(st, closeSig(wire.CloseSessionTimedOut))
	require.Equal(t, resumeNow, outcomeOf(d), "the first time: at once")
	st = Established(NewConnection(st, st.Mode), Resume)
	d, st = End(st, closeSig(wire.CloseSessionTimedOut))
	require.Equal(t, resumeBackoff, outcomeOf(d), "the second quick end: a backoff")
	assert.Contains(t, d.Reason, "backoff")

	st = Established(NewConnection(st, st.Mode), Resume)
	st.Stable = true
	d, st = End(st, closeSig(wire.CloseSessionTimedOut))
	assert.Equal(t, resumeNow, outcomeOf(d), "after a stable connection: at once again")
	assert.Zero(t, st.Unstable)
}

// A connection ending on an oversized frame resumes once more; the second
// time in a row after the same seq drops the session.
func TestEndOversizedTwiceDropsTheSession(t *testing.T) {
	t.Parallel()
	big := Signal{Kind: SigNetwork, Reason: "read limit", Oversized: true, Seq: 7}
	st := Established(NewConnection(NewState(true, 0, 1), Resume), Resume)
	d, st := End(st, big)
	require.Equal(t, resumeBackoff, outcomeOf(d))
	require.Equal(t, 1, d.Oversized)

	// A failed dial in between changes nothing.
	st = NewConnection(st, st.Mode)
	_, st = End(st, Signal{Kind: SigDialFailed})
	require.Equal(t, 1, st.OversizedRepeats)

	st = NewConnection(st, st.Mode)
	d, st = End(st, big)
	assert.Equal(t, 2, d.Oversized)
	assert.True(t, d.ClearSession)
	assert.Equal(t, ActIdentify, d.Action)
	assert.Equal(t, Identify, st.Mode)
	assert.False(t, st.HasSession)
	assert.Zero(t, st.OversizedRepeats)

	// After another seq, or after a connection that ended otherwise, the
	// count starts again.
	st = Established(NewConnection(NewState(true, 0, 1), Resume), Resume)
	_, st = End(st, big)
	st = Established(NewConnection(st, st.Mode), Resume)
	d, st = End(st, Signal{Kind: SigNetwork, Oversized: true, Seq: 8})
	assert.Equal(t, 1, d.Oversized)
	st = Established(NewConnection(st, st.Mode), Resume)
	_, st = End(st, closeSig(wire.CloseGoingAway))
	st = Established(NewConnection(st, st.Mode), Resume)
	d, _ = End(st, Signal{Kind: SigNetwork, Oversized: true, Seq: 8})
	assert.Equal(t, 1, d.Oversized)
	assert.False(t, d.ClearSession)
}
