package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
)

// gateWriter blocks its first Write until release is closed, after
// telling entered. Its Write number failOn fails with failErr, or panics
// when failErr is nil. It records the Writes that succeed.
type gateWriter struct {
	entered chan struct{}
	release chan struct{}
	failOn  int
	failErr error

	mu     sync.Mutex
	calls  int
	writes []string
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}), release: make(chan struct{})}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.calls++
	n := w.calls
	w.mu.Unlock()
	if n == 1 {
		close(w.entered)
		<-w.release
	}
	if n == w.failOn {
		if w.failErr == nil {
			panic("writer exploded")
		}
		return 0, w.failErr
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *gateWriter) written() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func lineEvent(account string, seq uint64) event.Event {
	return event.Event{AccountID: account, Type: "C2C_MESSAGE_CREATE", Seq: seq, ID: fmt.Sprint("m:", seq),
		Data: json.RawMessage(fmt.Sprintf(`{"content":"hello %d"}`, seq))}
}

func wantLine(t *testing.T, ev event.Event) string {
	t.Helper()
	b, err := Line(ev)
	require.NoError(t, err)
	return string(b) + "\n"
}

// queued is the number of lines waiting for the next Write.
func (s *Stdout) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Count(s.pending, []byte{'\n'})
}

var errPanicked = errors.New("panicked")

// startCalls starts one writeEvent per event and returns the channels of
// their errors; a call that panics gives an error matching errPanicked.
func startCalls(s *Stdout, evs ...event.Event) []chan error {
	out := make([]chan error, len(evs))
	for i, ev := range evs {
		out[i] = make(chan error, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					out[i] <- fmt.Errorf("%w: %v", errPanicked, p)
				}
			}()
			out[i] <- s.writeEvent(ev)
		}()
	}
	return out
}

func noneReturned(t *testing.T, calls []chan error) {
	t.Helper()
	for i, c := range calls {
		select {
		case err := <-c:
			t.Fatalf("call %d returned (%v) before its line was written", i, err)
		default:
		}
	}
}

// TestStdoutWritesWhatMeetsABusyStreamInOneWrite: while one Write is
// under way, the lines of other callers wait and then go out together in
// one Write; no call returns before the Write holding its line ended.
func TestStdoutWritesWhatMeetsABusyStreamInOneWrite(t *testing.T) {
	w := newGateWriter()
	s := NewStdout(w)
	a, b, c := lineEvent("a", 1), lineEvent("b", 1), lineEvent("c", 1)
	first := startCalls(s, a)
	<-w.entered
	rest := startCalls(s, b, c)
	require.Eventually(t, func() bool { return s.queued() == 2 }, 10*time.Second, time.Millisecond)
	noneReturned(t, append(first, rest...))

	close(w.release)
	for _, c := range append(first, rest...) {
		require.NoError(t, <-c)
	}
	got := w.written()
	require.Len(t, got, 2, "the first line alone, then the two that waited together")
	assert.Equal(t, wantLine(t, a), got[0])
	assert.ElementsMatch(t, []string{wantLine(t, b), wantLine(t, c)}, splitLines(got[1]))
}

func splitLines(s string) []string {
	var out []string
	for _, l := range bytes.SplitAfter([]byte(s), []byte{'\n'}) {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out
}

// TestStdoutFailedWriteFailsEveryLineInIt: the callers whose lines were
// in a failed Write all get its error, and the stream stays usable.
func TestStdoutFailedWriteFailsEveryLineInIt(t *testing.T) {
	w := newGateWriter()
	w.failOn, w.failErr = 2, errors.New("disk on fire")
	s := NewStdout(w)
	first := startCalls(s, lineEvent("a", 1))
	<-w.entered
	// Two calls wait behind the first Write; the one holding both fails.
	rest := startCalls(s, lineEvent("b", 1), lineEvent("c", 1))
	require.Eventually(t, func() bool { return s.queued() == 2 }, 10*time.Second, time.Millisecond)
	close(w.release)
	require.NoError(t, <-first[0])
	for _, c := range rest {
		assert.ErrorContains(t, <-c, "disk on fire")
	}
	require.NoError(t, s.writeEvent(lineEvent("b", 1)), "a retry")
	assert.Equal(t, []string{wantLine(t, lineEvent("a", 1)), wantLine(t, lineEvent("b", 1))}, w.written())
}

// TestStdoutPanickingWriteFreesTheStream: a Write that panics panics in
// the caller that made it (a failed attempt, for the retrier), fails the
// other callers whose lines it held, and leaves the stream usable.
func TestStdoutPanickingWriteFreesTheStream(t *testing.T) {
	w := newGateWriter()
	w.failOn = 2
	s := NewStdout(w)
	first := startCalls(s, lineEvent("a", 1))
	<-w.entered
	rest := startCalls(s, lineEvent("b", 1), lineEvent("c", 1))
	require.Eventually(t, func() bool { return s.queued() == 2 }, 10*time.Second, time.Millisecond)
	close(w.release)
	require.NoError(t, <-first[0])
	errs := []error{<-rest[0], <-rest[1]}
	// One of the two wrote the batch and panicked; the other was failed.
	panics, failed := 0, 0
	for _, err := range errs {
		switch {
		case errors.Is(err, errPanicked):
			panics++
			assert.ErrorContains(t, err, "writer exploded")
		case errors.Is(err, errWriterPanicked):
			failed++
		}
	}
	assert.Equal(t, []int{1, 1}, []int{panics, failed}, "%v", errs)
	require.NoError(t, s.writeEvent(lineEvent("d", 1)), "the stream is free again")
	assert.Equal(t, []string{wantLine(t, lineEvent("a", 1)), wantLine(t, lineEvent("d", 1))}, w.written())
}

// TestStdoutInvalidDataWritesNothing: an event whose data is not JSON
// fails at once with ErrInvalidData, without a retry, and leaves nothing
// of its line to be written with the next one.
func TestStdoutInvalidDataWritesNothing(t *testing.T) {
	var buf bytes.Buffer
	var slept int
	var attempts []int
	h, err := New(Spec{}, Options{Stdout: &buf, Sleep: func(context.Context, time.Duration) error { slept++; return nil },
		OnResult: func(_ event.Event, n int, _ error, _ time.Duration) { attempts = append(attempts, n) }})
	require.NoError(t, err)
	bad := lineEvent("a", 1)
	bad.Data = json.RawMessage(`{"content":"cut short`)
	err = h.HandleEvent(t.Context(), bad)
	require.ErrorIs(t, err, ErrInvalidData)
	assert.Contains(t, err.Error(), "C2C_MESSAGE_CREATE #1")
	assert.Zero(t, slept, "not retried")
	assert.Equal(t, []int{0}, attempts, "no attempt made")
	require.NoError(t, h.HandleEvent(t.Context(), lineEvent("a", 2)))
	assert.Equal(t, wantLine(t, lineEvent("a", 2)), buf.String())
}

// TestStdoutDropsAHugeBuffer: the buffer of a Write larger than maxKeep is
// not kept for the next.
func TestStdoutDropsAHugeBuffer(t *testing.T) {
	var buf bytes.Buffer
	s := NewStdout(&buf)
	big := lineEvent("a", 1)
	big.Data = json.RawMessage(`"` + string(bytes.Repeat([]byte{'x'}, maxKeep)) + `"`)
	require.NoError(t, s.writeEvent(big))
	assert.Nil(t, s.spare)
	require.NoError(t, s.writeEvent(lineEvent("a", 2)))
	assert.NotNil(t, s.spare, "a small one is kept")
	assert.Equal(t, wantLine(t, big)+wantLine(t, lineEvent("a", 2)), buf.String())
}
