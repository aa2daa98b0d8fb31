package handler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/event"
)

// Bounds of the exec handler.
const (
	// StderrTail is how much of the end of a failed command's stderr its
	// error carries.
	StderrTail = 4 << 10
	// execWaitDelay bounds the wait for the command's output pipes after
	// it exited or was killed (a background child may hold them open).
	execWaitDelay = 2 * time.Second
)

// execHandler runs a command per event.
type execHandler struct {
	path    string // Command[0] resolved
	name    string // Command[0] as configured
	args    []string
	timeout time.Duration
	sem     chan struct{}
	log     zerolog.Logger
	hide    func() []string // environment variables not passed on
	reply   string          // Spec.Reply when on, else ""
	replier Replier
}

func newExec(spec Spec, opts Options) (*execHandler, error) {
	// Not found, or found only through a relative PATH entry (exec.ErrDot,
	// refused like os/exec does).
	path, err := exec.LookPath(spec.Command[0])
	if err != nil {
		return nil, fmt.Errorf("handler: command %q: %w", spec.Command[0], err)
	}
	e := &execHandler{
		path:    path,
		name:    spec.Command[0],
		args:    append([]string(nil), spec.Command[1:]...),
		timeout: spec.Timeout,
		log:     opts.Logger,
		hide:    opts.HideEnv,
	}
	if spec.replies() {
		e.reply, e.replier = spec.Reply, opts.Replier
	}
	if e.timeout == 0 {
		e.timeout = DefaultExecTimeout
	}
	n := spec.Concurrency
	if n == 0 {
		n = DefaultConcurrency
	}
	e.sem = make(chan struct{}, n)
	return e, nil
}

// environ is the runner's environment without the variables that hold
// secrets (Options.HideEnv).
func (e *execHandler) environ() []string {
	env := os.Environ()
	if e.hide == nil {
		return env
	}
	hide := map[string]bool{}
	for _, name := range e.hide() {
		hide[name] = true
	}
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !hide[name] {
			out = append(out, kv)
		}
	}
	return out
}

// attempt runs the command once, holding a concurrency slot.
func (e *execHandler) attempt(ctx context.Context, ev event.Event, line []byte) error {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("exec %q: waiting for a free slot: %w", e.name, ctx.Err())
	}
	defer func() { <-e.sem }()

	actx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(actx, e.path, e.args...)
	cmd.Stdin = bytes.NewReader(append(line[:len(line):len(line)], '\n'))
	cmd.Env = append(e.environ(),
		"QQGATE_ACCOUNT="+MetaValue(ev.AccountID),
		"QQGATE_TYPE="+MetaValue(ev.Type),
		"QQGATE_SEQ="+strconv.FormatUint(ev.Seq, 10),
		"QQGATE_ID="+MetaValue(ev.ID),
	)
	stdout, stderr := &tail{max: StderrTail}, &tail{max: StderrTail}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	var out *capped
	if e.reply != "" {
		out = &capped{max: MaxOutput}
		cmd.Stdout = out
	}
	cmd.WaitDelay = execWaitDelay
	setProcessGroup(cmd)

	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0, but something it started kept its output open.
		killProcessGroup(cmd)
		e.log.Warn().Str("account", ev.AccountID).Str("command", e.name).Uint64("seq", ev.Seq).
			Msg("exec handler: the command exited but a process it started kept its output open; killed its process group")
		err = nil
	}
	if err == nil {
		if out != nil {
			return e.replier.Reply(ctx, ev, Output{Mode: e.reply, From: TypeExec, Body: out.buf, Truncated: out.over})
		}
		if out := stdout.String(); out != "" {
			e.log.Debug().Str("account", ev.AccountID).Str("command", e.name).Uint64("seq", ev.Seq).
				Str("stdout", out).Msg("exec handler output")
		}
		return nil
	}
	var why string
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		why = "killed, shutting down"
	case actx.Err() != nil:
		why = fmt.Sprintf("timed out after %v, killed", e.timeout)
	case errors.As(err, &exitErr):
		why = exitErr.Error() // "exit status 3" or "signal: killed"
	case cmd.Process == nil:
		why = "start: " + err.Error()
	default:
		why = err.Error()
	}
	msg := fmt.Sprintf("exec %q: %s", e.name, why)
	if s := stderr.String(); s != "" {
		msg += "; stderr: " + s
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", msg, ctx.Err())
	}
	return errors.New(msg)
}

// capped keeps the first max bytes written to it, and whether more came.
type capped struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - len(c.buf)
	if len(p) > room {
		c.over = true
		c.buf = append(c.buf, p[:max(room, 0)]...)
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.truncated = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the kept bytes, without a partial first line when the
// start was dropped, and trimmed of surrounding white space.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if t.truncated {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
		return "…" + strings.TrimSpace(string(b))
	}
	return strings.TrimSpace(string(b))
}
