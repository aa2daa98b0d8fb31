package resume_test

import (
	"fmt"

	"github.com/qqgate/qqgate/internal/resume"
	"github.com/qqgate/qqgate/wire"
)

// The server rotates a session: op 7, then close 4009. The close is a
// follow-up of the op 7 and keeps the session.
func ExampleNext() {
	st := resume.NewState(true, 0, 3)
	st = resume.NewConnection(st, st.Mode)
	st = resume.Established(st, resume.Resume) // RESUMED

	d, st := resume.Next(st, resume.Signal{Kind: resume.SigReconnect})
	fmt.Println(d.Reason)
	d, st = resume.Next(st, resume.Signal{Kind: resume.SigClose, Code: wire.CloseSessionTimedOut, Reason: "Session timed out"})
	fmt.Println(d.Reason)
	fmt.Println(st.Mode, st.HasSession, d.FollowUp)
	// Output:
	// op 7 reconnect: resume at once
	// close 4009 session timed out ("Session timed out") after op 7: resume at once (already decided)
	// resume true true
}

// An IDENTIFY with intents the bot may not use gets op 9 false and close
// 4903: one rejection, one step down.
func ExampleNext_intentsRefused() {
	st := resume.NewState(false, 0, 3)
	st = resume.NewConnection(st, st.Mode)

	d, st := resume.Next(st, resume.Signal{Kind: resume.SigInvalidSession, CanResume: false})
	fmt.Println(d.Reason)
	d, st = resume.Next(st, resume.Signal{Kind: resume.SigClose, Code: wire.CloseCreateSessionError})
	fmt.Println(d.Reason)
	fmt.Println("level", st.IntentLevel)
	// Output:
	// op 9 invalid session before READY, intents refused: step intents down to level 1, clear session, refresh token, wait the invalid-session delay, identify
	// close 4903 create session error after op 9: wait the invalid-session delay, identify (already decided)
	// level 1
}

func ExampleNext_fatal() {
	st := resume.Established(resume.NewState(false, 0, 1), resume.Identify)
	d, _ := resume.Next(st, resume.Signal{Kind: resume.SigClose, Code: wire.CloseBotBanned, Reason: "banned"})
	fmt.Println(d.Action)
	fmt.Println(d.Reason)
	// Output:
	// fatal
	// close 4915 bot banned ("banned"): fatal
}

func ExampleWatermark() {
	var w resume.Watermark
	w.Received(1)
	w.Received(2)
	w.Received(3)
	w.Handled(2) // finished before 1
	fmt.Println(w.Highest(), w.Committed())
	w.Handled(1)
	fmt.Println(w.Highest(), w.Committed())
	// Output:
	// 3 0
	// 3 2
}

func ExampleJitter() {
	fmt.Println(resume.Jitter(resume.DefaultInvalidSessionDelay, 0))
	fmt.Println(resume.Jitter(resume.DefaultInvalidSessionDelay, 0.5))
	// Output:
	// 3s
	// 3.75s
}
