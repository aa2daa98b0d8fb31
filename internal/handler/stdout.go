package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/qqgate/qqgate/event"
)

// Stdout writes events as JSON lines (see Line) to one stream, shared by
// every account writing there. A *Stdout is itself a event.Handler making
// one attempt per event; New wraps it with retries. Its methods are safe
// for concurrent use.
//
// Every Write to the stream holds whole lines, newlines included, and
// only one Write runs at a time, so lines never split or interleave. A
// call returns only once its line was written (or the write failed): the
// client commits an event's seq when its handler returns, so an event is
// committed only after its line reached the stream.
//
// Calls that arrive while a Write is under way are written together, by
// the first of them, in one Write as soon as that one ends (a group
// commit): the busier the stream, the larger the Writes. Each line is
// encoded straight into the buffer of the next Write, under the lock,
// and the buffers are reused, so an event's data is copied once on its
// way to the stream.
type Stdout struct {
	w io.Writer // nil: os.Stdout at the time of the write

	mu      sync.Mutex
	written sync.Cond // on mu: a Write ended
	pending []byte    // the lines of the next Write; guarded by mu
	next    *batch    // the next Write, once a caller waits for it; guarded by mu
	writing bool      // a caller is writing; guarded by mu
	spare   []byte    // the buffer of an earlier Write, for reuse; guarded by mu
}

// batch is the outcome of one Write, for the callers whose lines it held.
type batch struct {
	done bool
	err  error
}

// errWriterPanicked is the error of the callers whose lines were in a
// Write that panicked; the panic itself goes up the writing caller's
// stack, a failed attempt of its event.
var errWriterPanicked = errors.New("write event line: the writer panicked")

// maxKeep bounds the buffer a Stdout keeps between Writes: one huge event
// does not hold its memory forever.
const maxKeep = 1 << 20

// NewStdout returns a *Stdout writing to w. Share it between every handler
// that writes to w (Options.Stdout). w nil means os.Stdout.
func NewStdout(w io.Writer) *Stdout { return &Stdout{w: w} }

// defaultStdout is shared by every handler made with a zero Options.Stdout.
var defaultStdout = &Stdout{}

// stdoutOf is the *Stdout for Options.Stdout w.
func stdoutOf(w io.Writer) *Stdout {
	switch s := w.(type) {
	case nil:
		return defaultStdout
	case *Stdout:
		return s
	}
	return NewStdout(w)
}

// Write writes p to the stream as the event lines are written: whole, in
// a Write that may hold other callers' lines too, never interleaved with
// them. It returns once p was written. Callers that write whole lines keep
// them whole.
func (s *Stdout) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.pending = append(s.pending, p...)
	if err := s.awaitLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// HandleEvent writes ev's line and a newline. It does not retry and
// ignores ctx: a write either happens or fails.
func (s *Stdout) HandleEvent(_ context.Context, ev event.Event) error {
	return s.writeEvent(ev)
}

func (s *Stdout) attempt(_ context.Context, ev event.Event, _ []byte) error {
	return s.writeEvent(ev)
}

// writeEvent encodes ev's line into the next Write and returns once that
// Write ended. Data that is not valid JSON fails at once (ErrInvalidData),
// and nothing of the line is written.
func (s *Stdout) writeEvent(ev event.Event) error {
	s.mu.Lock()
	var err error
	if s.pending, err = appendLine(s.pending, ev); err != nil {
		s.mu.Unlock()
		return err
	}
	s.pending = append(s.pending, '\n')
	return s.awaitLocked()
}

// awaitLocked returns once the pending lines, the caller's among them,
// were written: the caller writes them itself when no Write is under way,
// or else waits for the one under way to end, then for the next one
// (written by the first waiter to see the stream free: the callers of
// one batch elect its writer). s.mu is held; awaitLocked unlocks it.
func (s *Stdout) awaitLocked() error {
	if s.written.L == nil {
		s.written.L = &s.mu
	}
	if !s.writing {
		return s.writeLocked()
	}
	b := s.next
	if b == nil {
		b = &batch{}
		s.next = b
	}
	for {
		s.written.Wait()
		if b.done {
			err := b.err
			s.mu.Unlock()
			return err
		}
		if !s.writing {
			// b is still the next batch: a writer takes the next batch
			// whole, and marks it done before it lets go of the stream.
			return s.writeLocked()
		}
	}
}

// writeLocked writes the pending lines in one Write, s.mu released
// meanwhile, and wakes every waiter. s.mu is held, and no Write is under
// way; writeLocked unlocks it.
func (s *Stdout) writeLocked() error {
	buf, b := s.pending, s.next
	s.pending, s.spare, s.next = s.spare[:0], nil, nil
	s.writing = true
	s.mu.Unlock()

	wrote := false
	defer func() {
		if !wrote { // the writer panicked: the panic goes on up to the caller, after this
			s.mu.Lock()
			s.writing = false
			if b != nil {
				b.done, b.err = true, errWriterPanicked
			}
			s.written.Broadcast()
			s.mu.Unlock()
		}
	}()
	err := s.write(buf)
	wrote = true

	s.mu.Lock()
	s.writing = false
	if b != nil {
		b.done, b.err = true, err
	}
	if cap(buf) <= maxKeep {
		s.spare = buf[:0]
	}
	s.written.Broadcast()
	s.mu.Unlock()
	return err
}

func (s *Stdout) write(buf []byte) error {
	w := s.w
	if w == nil {
		w = os.Stdout
	}
	n, err := w.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write event line: %w", err)
	}
	return nil
}
