package testutil

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// maxLine is the longest stdout line a Proc or ParseLines reads.
const maxLine = 1 << 20

// Proc is a running subprocess whose stdout is read line by line as it
// arrives and parsed into T; its stderr is collected unless the caller
// routed it elsewhere. Lines queue without bound, so a chatty child never
// blocks on its stdout. The test's cleanup kills the process and reaps it.
//
// Next, Rest and Wait are for the test's goroutine.
type Proc[T any] struct {
	// Cmd is the started command.
	Cmd *exec.Cmd
	// Stderr holds what the process wrote to stderr when the caller left
	// Cmd.Stderr nil; otherwise it stays empty.
	Stderr *SyncBuffer

	tb    testing.TB
	mu    sync.Mutex
	queue []T  // parsed lines not read yet
	eof   bool // stdout has ended
	more  chan struct{}
	done  chan struct{} // closed once the process is reaped; err is then set
	err   error
}

// Spawn starts cmd, whose Stdout must be nil, and parses each line it
// writes to stdout with parse (which must not keep its argument). A line
// parse rejects fails the test; the process keeps running. Spawn fails the
// test when the process does not start.
func Spawn[T any](tb testing.TB, cmd *exec.Cmd, parse func([]byte) (T, error)) *Proc[T] {
	tb.Helper()
	p, err := Start(tb, cmd, parse)
	require.NoError(tb, err)
	return p
}

// Start is Spawn returning the error of a process that does not start
// (for a test that skips on it) instead of failing the test.
func Start[T any](tb testing.TB, cmd *exec.Cmd, parse func([]byte) (T, error)) (*Proc[T], error) {
	tb.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &Proc[T]{Cmd: cmd, Stderr: &SyncBuffer{}, tb: tb, more: make(chan struct{}, 1), done: make(chan struct{})}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go p.read(out, parse)
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p, nil
}

// Text is the parse function of a Proc whose lines are plain text.
func Text(b []byte) (string, error) { return string(b), nil }

// read queues the parsed stdout lines, then reaps the process.
// Exit: when the process's stdout ends (it exited, or closed it and
// exited), after cmd.Wait returns.
func (p *Proc[T]) read(out io.Reader, parse func([]byte) (T, error)) {
	defer close(p.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		v, err := parse(sc.Bytes())
		if err != nil {
			p.tb.Errorf("stdout line %q: %v", sc.Text(), err)
			continue
		}
		p.mu.Lock()
		p.queue = append(p.queue, v)
		p.mu.Unlock()
		p.signal()
	}
	if err := sc.Err(); err != nil {
		p.tb.Errorf("reading stdout: %v", err)
		_, _ = io.Copy(io.Discard, out) // let the process finish its writes
	}
	p.mu.Lock()
	p.eof = true
	p.mu.Unlock()
	p.signal()
	p.err = p.Cmd.Wait()
}

func (p *Proc[T]) signal() {
	select {
	case p.more <- struct{}{}:
	default:
	}
}

// pop returns the oldest unread line, if any, and whether stdout ended.
func (p *Proc[T]) pop() (v T, ok, eof bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) > 0 {
		v, p.queue = p.queue[0], p.queue[1:]
		return v, true, false
	}
	return v, false, p.eof
}

// Next returns the next stdout line. It fails the test when the process
// exits first or no line comes within Wait.
func (p *Proc[T]) Next() T {
	p.tb.Helper()
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	for {
		v, ok, eof := p.pop()
		if ok {
			return v
		}
		if eof {
			p.tb.Fatalf("the process exited before its next line: %v\nstderr:\n%s", p.Wait(), p.Stderr.String())
		}
		select {
		case <-p.more:
		case <-timer.C:
			p.tb.Fatalf("no stdout line within %v\nstderr:\n%s", Wait, p.Stderr.String())
		}
	}
}

// Wait waits for the process to exit and returns its exit error (nil for
// status 0). It fails the test when the process is still running after
// Wait.
func (p *Proc[T]) Wait() error {
	p.tb.Helper()
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		p.tb.Fatalf("the process did not exit within %v\nstderr:\n%s", Wait, p.Stderr.String())
		return nil
	}
}

// Rest waits for the process to exit and returns the lines it wrote that
// Next has not returned.
func (p *Proc[T]) Rest() []T {
	p.tb.Helper()
	_ = p.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	rest := p.queue
	p.queue = nil
	return rest
}

// ExitCode is the exit status in err, an error from Wait: 0 for nil, -1
// when the process did not exit normally (killed by a signal, or never
// ran).
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
