package sessionstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(fixtureSaved)
	s := NewMemoryStore(MemoryStoreConfig{Clock: clk})
	defer s.Close()
	ctx := context.Background()

	for i := range 1000 {
		require.NoError(t, s.Save(ctx, rec("a", uint64(i))))
	}
	assert.Equal(t, 1, s.Writes())
	clk.Advance(ThrottleInterval)
	assert.Equal(t, 2, s.Writes())
	r, err := s.Load(ctx, "a", "")
	require.NoError(t, err)
	assert.Equal(t, uint64(999), r.LastSeq)
	assert.Equal(t, fixtureSaved.Add(ThrottleInterval), r.SavedAt)

	_, err = s.Load(ctx, "a.", "")
	require.ErrorIs(t, err, ErrNoSession, "a_ and a. collide as in files")
	require.NoError(t, s.SaveNow(ctx, rec("a_", 1)))
	_, err = s.Load(ctx, "a.", "")
	require.ErrorIs(t, err, ErrNoSession, "foreign")

	entries, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, "session-a.json", entries[0].Path)

	clk.Advance(Expiry + time.Second)
	removed, err := s.RemoveExpired(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"session-a.json", "session-a_.json"}, removed)

	require.NoError(t, s.Save(ctx, rec("b", 1)))
	require.NoError(t, s.Save(ctx, rec("b", 2)))
	require.NoError(t, s.Clear(ctx, "b"))
	clk.Advance(ThrottleInterval)
	_, err = s.Peek(ctx, "b")
	require.ErrorIs(t, err, ErrNoSession)

	r = rec("c", 5)
	r.AppID = "x"
	require.NoError(t, s.SaveNow(ctx, r))
	_, err = s.Load(ctx, "c", "y")
	require.ErrorIs(t, err, ErrNoSession)

	u, err := s.Lock("c")
	require.NoError(t, err)
	_, err = s.Lock("c")
	var le *LockedError
	require.ErrorAs(t, err, &le)
	require.NoError(t, u.Unlock())

	require.NoError(t, s.Save(ctx, rec("d", 1)))
	require.NoError(t, s.Save(ctx, rec("d", 2)))
	require.NoError(t, s.Close())
	r, err = s.Peek(ctx, "d")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), r.LastSeq, "Close wrote the pending state")
	require.ErrorIs(t, s.Watch(ctx, "d", nil), ErrClosed)
}

// TestMemoryStoreRealClock runs the trailing write on a real timer.
func TestMemoryStoreRealClock(t *testing.T) {
	t.Parallel()
	s := NewMemoryStore()
	defer s.Close()
	ctx := context.Background()
	require.NoError(t, s.Save(ctx, rec("a", 1)))
	require.NoError(t, s.Save(ctx, rec("a", 2)))
	assert.Eventually(t, func() bool { return s.Writes() == 2 }, 5*time.Second, 10*time.Millisecond)
	r, err := s.Load(ctx, "a", "")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), r.LastSeq)

	wctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, s.Watch(wctx, "a", nil), context.Canceled)
}
