// Package resume holds qqgate's reconnect policy as pure functions: which
// start-up message to send, what each server signal leads to, how long to
// wait, and which sequence number is safe to store. It does no I/O,
// starts no goroutines and reads no clock, so every rule is one table test.
//
// # Lifecycle
//
// The client keeps one [State] per account and threads it through these
// calls, always keeping the returned copy:
//
//	st := resume.NewState(recordValid, rec.IntentLevelIndex, len(levels))
//	st.MaxAuthFailures, st.MaxAttempts = ...
//	for {
//		st = resume.NewConnection(st, st.Mode)  // before each dial
//		// dial; send RESUME if st.Mode == resume.Resume, else IDENTIFY at
//		// levels[st.IntentLevel]
//		// on READY or RESUMED:
//		st = resume.Established(st, st.Mode)
//		// once the connection stayed up for the stable period:
//		st.Stable = true
//		// when the attempt ends (op 7, op 9, a close, an error, a failed dial):
//		d, st = resume.End(st, sig)
//		// apply d: give up when d.Action is ActFatal, clear the record,
//		// refresh the token, wait d.Wait.Delay(...), then loop with st.Mode
//	}
//
// [End] is [Next] plus the counts across attempts (failed attempts,
// connections that did not last, oversized frames); [Next] alone answers
// one signal, and may be called for each signal of a connection.
//
// # Resume
//
// The server often sends two signals for one event: op 7 and then close
// 4009 on every rotation, op 9 false and then close 4903 when intents are
// refused. [State] remembers the first one until the connection ends, and
// [Next] answers the second with the same decision marked
// [Decision.FollowUp] and with no side effects of its own: the session is
// not cleared a second time, no failure is counted twice, and the intent
// level steps down once. A client that has already acted on the first
// decision ignores a follow-up; one that acts only on the signal that ends
// the connection gets the right decision either way.
//
// Within a process a reconnect resumes from [Watermark.Highest]; the record
// on disk stores [Watermark.Committed], so a crash replays what was received
// but not yet handled (at-least-once delivery).
//
// # Concurrency
//
// [State], [Signal] and [Decision] are values; the functions on them are
// pure and safe for concurrent use. [Watermark] is not: its owner guards
// it, as the client does with the lock of its session. Nor is the backoff
// from [Backoff.New] (cenkalti/backoff's rule): keep one per client, owned
// by its loop.
package resume
