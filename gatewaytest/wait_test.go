package gatewaytest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/wire"
)

// resumeOn dials and RESUMEs r's session from seq, up to RESUMED.
func resumeOn(t *testing.T, srv *Server, r wire.Ready, seq uint64) *client {
	t.Helper()
	c := dial(t, srv)
	c.readOp(wire.OpHello)
	c.resume(wire.TokenPrefix+srv.Token(DefaultAppID), r.SessionID, seq)
	for c.readOp(wire.OpDispatch).T != wire.EventResumed {
	}
	return c
}

// After a Drop the client resumes the same session: WaitSession has nothing
// new to return, and WaitResumed is what sees the resume, whether it came
// before the call or after.
func TestWaitResumedAfterDrop(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	ctx := testCtx(t)
	ended, cancel := context.WithCancel(ctx)
	cancel() // a wait with it returns at once unless something is pending

	c, r, sess := ready(t, srv)
	got, err := srv.WaitSession(ctx)
	require.NoError(t, err)
	require.Same(t, sess, got)
	require.ErrorIs(t, sess.WaitResumed(ended), context.Canceled, "nothing resumed yet")

	// The resume happens before the test waits for it: still seen.
	sess.Drop()
	c.readEnd()
	c = resumeOn(t, srv, r, 1)
	require.NoError(t, sess.WaitResumed(ctx))
	require.ErrorIs(t, sess.WaitResumed(ended), context.Canceled, "each resume is returned once")
	_, err = srv.WaitSession(ended)
	require.ErrorIs(t, err, context.Canceled, "a resume is no new session")

	// The test waits first, the resume comes later.
	sess.Drop()
	c.readEnd()
	done := make(chan error, 1)
	go func() { done <- sess.WaitResumed(ctx) }()
	resumeOn(t, srv, r, 1)
	require.NoError(t, <-done)
	assert.Equal(t, 2, sess.Resumes())
}

// A RESUME that ends before RESUMED is no resume.
func TestWaitResumedNotForAnUnfinishedResume(t *testing.T) {
	t.Parallel()
	srv := NewTestServer(t, Options{})
	ctx := testCtx(t)
	c, r, sess := ready(t, srv)
	sess.Drop()
	c.readEnd()
	srv.RejectResumes(1, ResumeDropBeforeResumed)
	c2 := dial(t, srv)
	c2.readOp(wire.OpHello)
	c2.resume(wire.TokenPrefix+srv.Token(DefaultAppID), r.SessionID, 1)
	code, _ := c2.readEnd()
	require.Equal(t, -1, code)
	ended, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, sess.WaitResumed(ended), context.Canceled)
	resumeOn(t, srv, r, 1)
	require.NoError(t, sess.WaitResumed(ctx))
}

func TestWaitResumedServerClosed(t *testing.T) {
	t.Parallel()
	srv := NewServer(Options{})
	defer srv.Close()
	_, _, sess := ready(t, srv)
	srv.Close()
	require.ErrorIs(t, sess.WaitResumed(testCtx(t)), ErrClosed)
}

// NewTestServer takes anything with Helper and Cleanup.
func TestNewTestServerTakesTB(t *testing.T) {
	t.Parallel()
	var tb fakeTB
	srv := NewTestServer(&tb, Options{})
	require.Len(t, tb.cleanups, 1)
	tb.cleanups[0]()
	_, err := srv.WaitSession(testCtx(t))
	require.ErrorIs(t, err, ErrClosed, "the cleanup closed the server")
	var _ TB = t
	var _ TB = (*testing.B)(nil)
	var _ TB = (*testing.F)(nil)
}

type fakeTB struct{ cleanups []func() }

func (*fakeTB) Helper()             {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
