package sessionstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/testutil"
)

var execLookPath = exec.LookPath

func execCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).Output()
}

// child is the test binary re-executed in a role, its stdout read line by
// line; stdin is a pipe the caller may close.
type child struct {
	*testutil.Proc[string]
	stdin io.WriteCloser
}

func startChild(t *testing.T, role, dir, account string, extraEnv ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envDir+"="+dir, envAccount+"="+account)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	return &child{Proc: testutil.Spawn(t, cmd, testutil.Text), stdin: stdin}
}

func TestLockInProcess(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	u, err := s.Lock("a")
	require.NoError(t, err)

	_, err = s.Lock("a")
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, os.Getpid(), le.PID)
	assert.Contains(t, err.Error(), strconv.Itoa(os.Getpid()))

	// Another account, and another store on the same directory.
	u2, err := s.Lock("b")
	require.NoError(t, err)
	s2, _ := newTestStoreIn(t, s.Dir())
	_, err = s2.Lock("a")
	require.ErrorAs(t, err, &le)

	require.NoError(t, u.Unlock())
	require.NoError(t, u.Unlock(), "Unlock is idempotent")
	u3, err := s2.Lock("a")
	require.NoError(t, err)
	require.NoError(t, u3.Unlock())
	require.NoError(t, u2.Unlock())
}

func TestLockOtherProcess(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	c := startChild(t, "lock", s.Dir(), "acct")
	require.Equal(t, "locked", c.Next())

	_, err := s.Lock("acct")
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, c.Cmd.Process.Pid, le.PID)
	assert.Contains(t, err.Error(), strconv.Itoa(c.Cmd.Process.Pid))

	// The holder dies without unlocking: the kernel releases the lock.
	require.NoError(t, c.Cmd.Process.Kill())
	_ = c.Wait()
	u, err := s.Lock("acct")
	require.NoError(t, err)
	require.NoError(t, u.Unlock())

	// A clean release works too.
	c = startChild(t, "lock", s.Dir(), "acct2")
	require.Equal(t, "locked", c.Next())
	_, err = s.Lock("acct2")
	require.ErrorAs(t, err, &le)
	require.NoError(t, c.stdin.Close())
	require.NoError(t, c.Wait())
	u, err = s.Lock("acct2")
	require.NoError(t, err)
	require.NoError(t, u.Unlock())
}

// TestKilledWriterNeverTearsRecord SIGKILLs a process that rewrites the
// record in a tight loop, at many points, and checks that the record
// always parses and holds at least the last seq the writer reported as
// written.
func TestKilledWriterNeverTearsRecord(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("spawns processes")
	}
	s, _ := newTestStore(t)
	ctx := context.Background()
	base := uint64(1)
	const kills = 25
	for i := range kills {
		c := startChild(t, "writer", s.Dir(), "acct", envBase+"="+strconv.FormatUint(base, 10))
		last, err := strconv.ParseUint(c.Next(), 10, 64) // first write done
		require.NoError(t, err)
		for range i % 7 * 3 { // vary the kill point
			last, err = strconv.ParseUint(c.Next(), 10, 64)
			require.NoError(t, err)
		}
		require.NoError(t, c.Cmd.Process.Kill())
		_ = c.Wait()

		b, err := os.ReadFile(s.Path("acct"))
		require.NoError(t, err)
		r, err := ParseRecord(b)
		require.NoError(t, err, "kill %d: torn record %q", i, b)
		require.GreaterOrEqual(t, r.LastSeq, last, "kill %d: a reported write was lost", i)
		got, err := s.Peek(ctx, "acct")
		require.NoError(t, err)
		assert.Equal(t, "writer-session", got.SessionID)
		base = r.LastSeq + 1
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher, err := NewFileStore(FileStoreConfig{Dir: dir, WatchDebounce: 5 * time.Millisecond})
	require.NoError(t, err)
	defer watcher.Close()
	other, err := NewFileStore(FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer other.Close()

	ready := make(chan struct{})
	watcher.watchReady = func() { close(ready) }
	changes := make(chan Change, 16)
	done := make(chan error, 1)
	go func() { done <- watcher.Watch(ctx, "acct", func(c Change) { changes <- c }) }()
	<-ready

	next := func() Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case err := <-done:
			require.FailNow(t, "Watch ended", "%v", err)
		}
		return Change{}
	}

	// Our own write is not reported; the other process's is.
	require.NoError(t, watcher.SaveNow(ctx, rec("acct", 1)))
	require.NoError(t, watcher.SaveNow(ctx, rec("other-account", 1)))
	require.NoError(t, other.SaveNow(ctx, rec("acct", 2)))
	c := next()
	assert.Equal(t, "acct", c.AccountID)
	assert.False(t, c.Removed)
	require.NoError(t, c.Err)
	assert.Equal(t, uint64(2), c.Record.LastSeq, "first change is the other writer's, not ours")

	// Our write, then the other removes it.
	require.NoError(t, watcher.SaveNow(ctx, rec("acct", 3)))
	require.NoError(t, other.Clear(ctx, "acct"))
	c = next()
	assert.True(t, c.Removed)

	// Our clear is not reported; a corrupt write is.
	require.NoError(t, watcher.SaveNow(ctx, rec("acct", 4)))
	require.NoError(t, watcher.Clear(ctx, "acct"))
	require.NoError(t, os.WriteFile(watcher.Path("acct"), []byte("{"), 0o600))
	c = next()
	var ce *CorruptError
	require.ErrorAs(t, c.Err, &ce)

	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	select {
	case c := <-changes:
		t.Fatalf("unexpected change %+v", c)
	default:
	}
}

func TestWatchEndsOnClose(t *testing.T) {
	t.Parallel()
	s, err := NewFileStore(FileStoreConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	ready := make(chan struct{})
	s.watchReady = func() { close(ready) }
	done := make(chan error, 1)
	go func() { done <- s.Watch(context.Background(), "a", func(Change) {}) }()
	<-ready
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-done, ErrClosed)
}

func ExampleLockedError() {
	err := &LockedError{Path: "/home/bot/.openclaw/qqbot/sessions/session-main.lock", PID: 4242}
	fmt.Println(err)
	// Output: sessionstore: account is in use by process with pid 4242 (lock /home/bot/.openclaw/qqbot/sessions/session-main.lock)
}

func TestWatchersShareOneDirectoryWatcher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	watcher, err := NewFileStore(FileStoreConfig{Dir: dir, WatchDebounce: time.Millisecond})
	require.NoError(t, err)
	defer watcher.Close()
	other, err := NewFileStore(FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer other.Close()

	var ready sync.WaitGroup
	ready.Add(2)
	watcher.watchReady = ready.Done
	changes := make(chan Change, 16)
	done := make(chan error, 2)
	for _, acct := range []string{"a", "b"} {
		go func() { done <- watcher.Watch(ctx, acct, func(c Change) { changes <- c }) }()
	}
	ready.Wait()
	watcher.hubMu.Lock()
	hub := watcher.hub
	watcher.hubMu.Unlock()
	require.NotNil(t, hub)
	assert.Equal(t, 2, hub.n, "two watches, one watcher")

	require.NoError(t, other.SaveNow(ctx, rec("b", 7)))
	c := <-changes
	assert.Equal(t, "b", c.AccountID, "only b's watch hears of b's record")
	require.NoError(t, other.SaveNow(ctx, rec("a", 8)))
	c = <-changes
	assert.Equal(t, "a", c.AccountID)

	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.ErrorIs(t, <-done, context.Canceled)
	watcher.hubMu.Lock()
	assert.Nil(t, watcher.hub, "the last watch to leave closes the watcher")
	watcher.hubMu.Unlock()
}
