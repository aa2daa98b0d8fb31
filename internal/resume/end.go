package resume

import "strconv"

// End applies the policy to the end of one connection attempt; a client
// calls it once per attempt, where [Next] takes every signal. sig is what
// ended the attempt ([SigDialFailed] or [SigTooManyRequests] when no
// connection opened). On top of [Next], End keeps the counts across
// attempts that guard against loops no single signal shows:
//   - after [State.MaxAttempts] attempts in a row without READY or
//     RESUMED, the decision is fatal with [Decision.GaveUp] set, whatever
//     the signal, and nothing else applies;
//   - "at once" after a connection that did not stay up for the stable
//     period, the second such attempt in a row, waits a backoff instead: a
//     server that accepts and closes must not cause a tight loop;
//   - a connection that ended on a frame over the read limit
//     ([Signal.Oversized]) the second time in a row after the same seq
//     drops the session and identifies: a RESUME would replay the same
//     frame forever ([Decision.Oversized]).
func End(st State, sig Signal) (Decision, State) {
	st = st.normalized()
	if st.Stable {
		st.Unstable = 0
	} else {
		st.Unstable++
	}
	if st.Established {
		st.Failures = 0
	} else {
		st.Failures++
		if st.MaxAttempts > 0 && st.Failures >= st.MaxAttempts {
			d := Decision{Action: ActFatal, GaveUp: true,
				Reason: describe(sig) + ": " + ordinal(st.Failures) + " failed attempt in a row: give up"}
			return d, st
		}
	}
	d, st := Next(st, sig)
	if d.Action == ActFatal {
		return d, st
	}
	if d.Wait == WaitNone && st.Unstable > 1 {
		d.Wait = WaitBackoff
		d.Reason += " (after a backoff: connections keep ending early)"
	}
	if sig.Kind != SigDialFailed && sig.Kind != SigTooManyRequests {
		d, st = oversized(d, st, sig)
	}
	return d, st
}

// oversized counts the ends on a frame over the read limit after the same
// seq, and drops the session at the second.
func oversized(d Decision, st State, sig Signal) (Decision, State) {
	if !sig.Oversized {
		st.OversizedRepeats = 0
		return d, st
	}
	if st.OversizedRepeats > 0 && st.OversizedAt == sig.Seq {
		st.OversizedRepeats++
	} else {
		st.OversizedAt, st.OversizedRepeats = sig.Seq, 1
	}
	d.Oversized = st.OversizedRepeats
	if st.OversizedRepeats < 2 {
		return d, st
	}
	st.OversizedRepeats = 0
	d.ClearSession = true
	d.Action = ActIdentify
	st.apply(d)
	d.Reason += "; a frame over the read limit came again after seq " + strconv.FormatUint(sig.Seq, 10) + ": clear session, identify"
	return d, st
}
