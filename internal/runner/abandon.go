package runner

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/event"
)

// abandoning runs each call of its handler on a goroutine of its own and
// returns as soon as the call's context ends, whether or not the handler
// does. The client cancels that context only at a hard shutdown, once
// ShutdownTimeout has passed with the event still in hand: a handler that
// ignores it (a write to a stdout pipe nobody reads, say) would otherwise
// keep the client, and so the process, from ever stopping. The abandoned
// event is not committed: the client leaves an event whose handler was
// cancelled uncommitted, so a restart resumes from before it and gets it
// again. The abandoned call keeps its goroutine until it returns, or until
// the process exits.
type abandoning struct {
	h   event.Handler
	log zerolog.Logger
}

// result is the outcome of one call: its error, or the value it panicked
// with.
type result struct {
	err      error
	panicked any
}

// HandleEvent implements event.Handler.
func (a abandoning) HandleEvent(ctx context.Context, ev event.Event) error {
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panicked: fmt.Sprintf("%v\n%s", p, debug.Stack())}
			}
		}()
		done <- result{err: a.h.HandleEvent(ctx, ev)}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		select {
		case r = <-done: // it did return
		default:
			a.log.Error().Str("account", ev.AccountID).Str("type", ev.Type).Uint64("seq", ev.Seq).
				Msg("handler ignores the shutdown; abandoning it: the event stays uncommitted and is delivered again after a restart")
			return fmt.Errorf("handler abandoned at shutdown: event %s #%d not handled: %w", ev.Type, ev.Seq, ctx.Err())
		}
	}
	if r.panicked != nil {
		panic(r.panicked) // on the client's goroutine, which recovers and counts it
	}
	return r.err
}
