package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// crashStore stands for a process that dies: after crash, nothing more
// reaches the store (no final write, no flush).
type crashStore struct {
	sessionstore.Store
	crashed chan struct{}
}

func (s *crashStore) dead() bool {
	select {
	case <-s.crashed:
		return true
	default:
		return false
	}
}

func (s *crashStore) Save(ctx context.Context, r sessionstore.Record) error {
	if s.dead() {
		return nil
	}
	return s.Store.Save(ctx, r)
}

func (s *crashStore) SaveNow(ctx context.Context, r sessionstore.Record) error {
	if s.dead() {
		return nil
	}
	return s.Store.SaveNow(ctx, r)
}

func (s *crashStore) Flush(ctx context.Context) error {
	if s.dead() {
		return nil
	}
	return s.Store.Flush(ctx)
}

func (s *crashStore) Clear(ctx context.Context, id string) error {
	if s.dead() {
		return nil
	}
	return s.Store.Clear(ctx, id)
}

func TestRestartResumesTheSameSessionWithoutGap(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		name := map[bool]string{true: "graceful", false: "crash"}[graceful]
		t.Run(name, func(t *testing.T) {
			srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
			dir := t.TempDir()
			fsA, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
			require.NoError(t, err)
			storeA := &crashStore{Store: fsA, crashed: make(chan struct{})}
			a := newHarness(t, srv, func(c *client.Config) { c.Store = storeA }).start()
			sess := a.session()
			for i := 0; i < 5; i++ {
				_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
				require.NoError(t, err)
			}
			a.eventually(func() bool { return a.c.Status().LastSeqHandled == 6 }, "A handled 6")
			if !graceful {
				close(storeA.crashed)
			}
			// Events the gateway sends while A goes away.
			for i := 0; i < 3; i++ {
				_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
				require.NoError(t, err)
			}
			require.True(t, isCanceled(a.stop()))
			committedA := a.c.Status().LastSeqHandled
			require.NoError(t, fsA.Close())

			fsB, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
			require.NoError(t, err)
			defer fsB.Close()
			b := newHarness(t, srv, func(c *client.Config) { c.Store = fsB }).start()
			b.eventually(func() bool { return b.rec.has(wire.EventResumed) }, "B resumed")
			last, err := sess.EmitMessage(wire.EventFriendAdd)
			require.NoError(t, err)
			b.eventually(func() bool { return b.c.Status().LastSeqHandled == last }, "B handled the live event")

			require.NotEmpty(t, srv.Resumes())
			r := srv.Resumes()[len(srv.Resumes())-1]
			assert.Equal(t, sess.ID(), r.SessionID)
			assert.Len(t, srv.Identifies(), 1, "B never identified")

			handled := map[uint64]bool{}
			for _, ev := range append(a.rec.all(), b.rec.all()...) {
				handled[ev.Seq] = true
			}
			resumed := map[uint64]bool{}
			for _, f := range sess.Frames() {
				if f.T == wire.EventResumed {
					resumed[f.S] = true
				}
			}
			for seq := uint64(1); seq <= last; seq++ {
				if !resumed[seq] {
					assert.True(t, handled[seq], "seq %d handled by neither client", seq)
				}
			}
			if graceful {
				// The graceful stop wrote the handled seq at once: B resumed exactly there.
				assert.Equal(t, committedA, r.Seq)
				assert.GreaterOrEqual(t, r.Seq, uint64(6))
			} else {
				assert.LessOrEqual(t, r.Seq, uint64(6))
			}
		})
	}
}

func TestLogoutDeletesTheRecord(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	store := sessionstore.NewMemoryStore()
	h := newHarness(t, srv, func(c *client.Config) { c.Store = store }).start()
	h.session()
	h.eventually(func() bool {
		_, err := store.Load(context.Background(), gatewaytest.DefaultAppID, gatewaytest.DefaultAppID)
		return err == nil
	}, "READY wrote the record")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, h.c.Logout(ctx))
	assert.ErrorIs(t, h.runErr(), client.ErrClosed)
	_, err := store.Load(context.Background(), gatewaytest.DefaultAppID, gatewaytest.DefaultAppID)
	assert.ErrorIs(t, err, sessionstore.ErrNoSession)
}

func TestStateChangesAreReported(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	states := make(chan client.State, 64)
	h := newHarness(t, srv, func(c *client.Config) {
		c.OnStateChange = func(s client.Status) { states <- s.State }
	}).start()
	h.session()
	want := []client.State{client.StateConnecting, client.StateIdentifying, client.StateConnected}
	for _, w := range want {
		select {
		case got := <-states:
			assert.Equal(t, w, got)
		case <-time.After(waitFor):
			t.Fatalf("no state %s", w)
		}
	}
}

func TestShutdownClosesWith4000AndLogoutWith1000(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	a := newHarness(t, srv, nil).start()
	a.session()
	require.True(t, isCanceled(a.stop()))
	a.serverWait(func() bool { return len(srv.ClientCloses()) >= 1 }, "the close frame")
	require.Len(t, srv.ClientCloses(), 1, "%+v", srv.ClientCloses())
	assert.Equal(t, wire.CloseUnknownError, srv.ClientCloses()[0].Code, "a graceful stop closes with 4000, never 1000 or 1001, so the server keeps the session resumable")

	b := newHarness(t, srv, nil).start()
	b.session()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, b.c.Logout(ctx))
	b.serverWait(func() bool { return len(srv.ClientCloses()) >= 2 }, "the close frame")
	require.Len(t, srv.ClientCloses(), 2, "%+v", srv.ClientCloses())
	assert.Equal(t, wire.CloseNormal, srv.ClientCloses()[1].Code, "logout closes with 1000, which ends the session")
}

// TestShutdownSendsTheCloseFrameWhenTheReaderEndsFirst: the end of Run
// also stops a reader waiting on a full queue, so the connection's loop,
// busy when Run ends, may find the reader's end and the cancellation both
// ready. Either way the stop is graceful and sends its close frame.
// select picks between the two at random, hence the repeats.
func TestShutdownSendsTheCloseFrameWhenTheReaderEndsFirst(t *testing.T) {
	for i := range 12 {
		srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
		store := &heldSaveStore{MemoryStore: sessionstore.NewMemoryStore(), entered: make(chan struct{}), release: make(chan struct{})}
		h := newHarness(t, srv, func(c *client.Config) {
			c.Store = store
			c.QueueSize = 1
			c.ShutdownTimeout = 10 * time.Millisecond
		})
		h.rec.hook = func(ctx context.Context, ev event.Event) error {
			<-ctx.Done() // never finishes on its own: the queue fills
			return ctx.Err()
		}
		h.start()
		sess := h.session()
		<-store.entered // the loop is busy with READY's record write
		for range 4 {
			_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
			require.NoError(t, err)
		}
		// The reader holds an event it cannot queue.
		var held uint64
		h.eventually(func() bool {
			st := h.c.Status()
			held = st.LastSeqReceived
			return st.QueueLength == 1 && st.LastSeqReceived > st.Events
		}, "the reader waits on a full queue")
		h.cancel()
		// The reader gives the event back as it ends.
		h.eventually(func() bool { return h.c.Status().LastSeqReceived < held }, "the reader ended")
		close(store.release)
		require.True(t, isCanceled(h.stop()))
		h.serverWait(func() bool { return len(srv.ClientCloses()) >= 1 }, fmt.Sprintf("the close frame (round %d)", i))
		assert.Equal(t, wire.CloseUnknownError, srv.ClientCloses()[0].Code)
	}
}

// heldSaveStore holds its first SaveNow (READY's, on the connection's
// loop) until its context ends and release is closed.
type heldSaveStore struct {
	*sessionstore.MemoryStore
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (s *heldSaveStore) SaveNow(ctx context.Context, r sessionstore.Record) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.entered)
		<-ctx.Done()
		<-s.release
	}
	return s.MemoryStore.SaveNow(ctx, r)
}

func TestAbortedHandlerLeavesTheEventUncommitted(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	store := sessionstore.NewMemoryStore()
	entered := make(chan struct{})
	h := newHarness(t, srv, func(c *client.Config) {
		c.Store = store
		c.ShutdownTimeout = 10 * time.Millisecond
	})
	h.rec.hook = func(ctx context.Context, ev event.Event) error {
		if ev.Type == wire.EventC2CMessageCreate {
			close(entered)
			<-ctx.Done() // never finishes on its own
			return ctx.Err()
		}
		return nil
	}
	h.start()
	sess := h.session()
	_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	<-entered
	require.True(t, isCanceled(h.stop()))
	rec, err := store.Load(context.Background(), gatewaytest.DefaultAppID, gatewaytest.DefaultAppID)
	require.NoError(t, err)
	assert.EqualValues(t, 1, rec.LastSeq, "the aborted event (seq 2) is redelivered after a restart")
}

func TestSavedAtIsRefreshedWhileConnectedAndIdle(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	// A store clock two seconds further on at every look: its one-second
	// throttle never holds a write back.
	store := sessionstore.NewMemoryStore(sessionstore.MemoryStoreConfig{Clock: &leapingClock{t: time.Unix(1_800_000_000, 0)}})
	h := newHarness(t, srv, func(c *client.Config) { c.Store = store })
	client.SetRefreshEvery(h.c, time.Millisecond)
	h.start()
	h.session()
	h.eventually(func() bool { return store.Writes() >= 1 }, "READY written")
	first := store.Writes()
	// No events: only the refresh writes.
	h.eventually(func() bool { return store.Writes() > first }, "savedAt refreshed with no events")
}

// leapingClock moves two seconds on at every Now.
type leapingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *leapingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(2 * time.Second)
	return c.t
}

func (c *leapingClock) AfterFunc(d time.Duration, f func()) sessionstore.Timer {
	return time.AfterFunc(0, f)
}

// fiveMethodStore has only the methods the client calls: a store of
// another kind (a database, a cache) needs no more.
type fiveMethodStore struct{ m *sessionstore.MemoryStore }

func (s fiveMethodStore) Load(ctx context.Context, accountID, appID string) (sessionstore.Record, error) {
	return s.m.Load(ctx, accountID, appID)
}
func (s fiveMethodStore) Save(ctx context.Context, r sessionstore.Record) error {
	return s.m.Save(ctx, r)
}
func (s fiveMethodStore) SaveNow(ctx context.Context, r sessionstore.Record) error {
	return s.m.SaveNow(ctx, r)
}
func (s fiveMethodStore) Clear(ctx context.Context, accountID string) error {
	return s.m.Clear(ctx, accountID)
}
func (s fiveMethodStore) Flush(ctx context.Context) error { return s.m.Flush(ctx) }

// A store with just the client's five methods keeps the session across a
// restart like any sessionstore.Store.
func TestMinimalStoreKeepsTheSession(t *testing.T) {
	t.Parallel()
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	mem := sessionstore.NewMemoryStore()
	t.Cleanup(func() { _ = mem.Close() })
	var store client.SessionStore = fiveMethodStore{mem}
	a := newHarness(t, srv, func(c *client.Config) { c.Store = store }).start()
	sess := a.session()
	last, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	a.eventually(func() bool { return a.c.Status().LastSeqHandled == last }, "A handled the event")
	require.True(t, isCanceled(a.stop()))

	b := newHarness(t, srv, func(c *client.Config) { c.Store = store }).start()
	b.eventually(func() bool { return b.rec.has(wire.EventResumed) }, "B resumed")
	require.NotEmpty(t, srv.Resumes())
	r := srv.Resumes()[len(srv.Resumes())-1]
	assert.Equal(t, sess.ID(), r.SessionID)
	assert.Equal(t, last, r.Seq)
	assert.Len(t, srv.Identifies(), 1, "B never identified")
}
