package client

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

func readyFrame(t *testing.T, id string) (wire.Frame, string) {
	t.Helper()
	return wire.Frame{Op: wire.OpDispatch, T: wire.EventReady, D: []byte(`{"session_id":"` + id + `"}`)}, id
}

func eventFrame(seq uint64) wire.Frame {
	return wire.Frame{Op: wire.OpDispatch, T: wire.EventMessageCreate, S: seq, ID: "m" + strconv.FormatUint(seq, 10)}
}

// An event of an older session never commits: not after the session was
// cleared (nothing is saved for it), not into the seqs of the next one.
func TestSessionStaleEventNeverCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sessionstore.NewMemoryStore()
	defer store.Close()
	s := newSession(store, "a", "1", 16)
	now := time.Now()
	f, id := readyFrame(t, "A")
	require.True(t, s.accept(f, id, now).deliver)
	a1, a2 := s.accept(eventFrame(1), "", now), s.accept(eventFrame(2), "", now)
	require.True(t, a1.deliver && a2.deliver)
	require.NoError(t, s.commit(ctx, a1.ev))
	_, _, committed := s.view()
	assert.Equal(t, uint64(1), committed)

	require.NoError(t, s.clear(ctx))
	require.NoError(t, s.commit(ctx, a2.ev))
	require.NoError(t, store.Flush(ctx))
	_, err := store.Load(ctx, "a", "1")
	require.ErrorIs(t, err, sessionstore.ErrNoSession, "no save of the cleared session")

	f, id = readyFrame(t, "B")
	require.True(t, s.accept(f, id, now).deliver)
	b1, b2 := s.accept(eventFrame(1), "", now), s.accept(eventFrame(2), "", now)
	require.True(t, b1.deliver && b2.deliver, "the dedupe window started over with B")
	require.NoError(t, s.commit(ctx, a2.ev)) // A's seq 2 is not B's
	require.NoError(t, s.commit(ctx, b1.ev))
	sessionID, highest, committed := s.view()
	assert.Equal(t, "B", sessionID)
	assert.Equal(t, uint64(2), highest)
	assert.Equal(t, uint64(1), committed, "B's seq 2 is still in hand")
	require.NoError(t, store.Flush(ctx))
	rec, err := store.Load(ctx, "a", "1")
	require.NoError(t, err)
	assert.Equal(t, "B", rec.SessionID)
	assert.Equal(t, uint64(1), rec.LastSeq)
}

// The reader accepting, several handlers committing out of order and the
// loop and Status reading all share the session's one lock (the race
// detector checks it), and every seq ends committed.
func TestSessionConcurrentAcceptAndCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sessionstore.NewMemoryStore()
	defer store.Close()
	s := newSession(store, "a", "1", 64)
	const n = 2000
	evs := make(chan item, n)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the reader
		defer close(evs)
		f, id := readyFrame(t, "S")
		s.accept(f, id, time.Now())
		for seq := uint64(1); seq <= n; seq++ {
			in := s.accept(eventFrame(seq), "", time.Now())
			assert.True(t, in.deliver)
			evs <- in.ev
		}
	})
	var handlers sync.WaitGroup
	for range 4 {
		handlers.Go(func() {
			for ev := range evs {
				assert.NoError(t, s.commit(ctx, ev))
			}
		})
	}
	wg.Go(func() { // the loop and Status
		for {
			select {
			case <-done:
				return
			default:
			}
			_, highest, committed := s.view()
			assert.LessOrEqual(t, committed, highest)
			_ = s.highest()
			_ = s.held()
			_ = s.expired(time.Now())
		}
	})
	handlers.Wait()
	close(done)
	wg.Wait()
	id, highest, committed := s.view()
	assert.Equal(t, "S", id)
	assert.Equal(t, uint64(n), highest)
	assert.Equal(t, uint64(n), committed)
	require.NoError(t, store.Flush(ctx))
	rec, err := store.Load(ctx, "a", "1")
	require.NoError(t, err)
	assert.Equal(t, uint64(n), rec.LastSeq)
}
