package handler

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/qqgate/qqgate/event"
)

// Stdout writes events as JSON lines (see Line) to one stream. Each line,
// newline included, goes out in a single Write under a mutex, so accounts
// sharing one *Stdout never interleave their lines. A *Stdout is itself a
// event.Handler making one attempt per event; New wraps it with retries.
// Its methods are safe for concurrent use.
type Stdout struct {
	mu  sync.Mutex
	w   io.Writer // nil: os.Stdout at the time of the write
	buf []byte
}

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

// Write writes p in one Write to the stream, under the mutex. Callers that
// write whole lines keep them whole.
func (s *Stdout) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out().Write(p)
}

func (s *Stdout) out() io.Writer {
	if s.w == nil {
		return os.Stdout
	}
	return s.w
}

// HandleEvent writes ev's line and a newline in one Write. It does not
// retry and ignores ctx: a write either happens or fails.
func (s *Stdout) HandleEvent(_ context.Context, ev event.Event) error {
	b, err := Line(ev)
	if err != nil {
		return err
	}
	return s.writeLine(b)
}

func (s *Stdout) attempt(_ context.Context, _ event.Event, line []byte) error {
	return s.writeLine(line)
}

func (s *Stdout) writeLine(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(append(s.buf[:0], line...), '\n')
	if cap(s.buf) > 1<<20 { // do not keep one huge event's buffer forever
		defer func() { s.buf = nil }()
	}
	n, err := s.out().Write(s.buf)
	if err == nil && n < len(s.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write event line: %w", err)
	}
	return nil
}
