package sessionstore

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWatchFuncReportsOtherWritersWithoutAGoroutine(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	watcher, err := NewFileStore(FileStoreConfig{Dir: dir, WatchDebounce: 5 * time.Millisecond})
	require.NoError(t, err)
	defer watcher.Close()
	other, err := NewFileStore(FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer other.Close()

	changes := make(chan Change, 16)
	stopA, err := watcher.WatchFunc("a", func(c Change) { changes <- c })
	require.NoError(t, err)
	// The first watch starts the shared directory watcher's goroutine;
	// further watches add none.
	before := runtime.NumGoroutine()
	var stops []func()
	for _, id := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		stop, err := watcher.WatchFunc(id, func(c Change) { changes <- c })
		require.NoError(t, err)
		stops = append(stops, stop)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "a watch adds no goroutine (others may still be winding down)")
	for _, stop := range stops {
		stop()
	}

	// Our own write is not reported; the other process's is.
	require.NoError(t, watcher.SaveNow(ctx, rec("a", 1)))
	require.NoError(t, other.SaveNow(ctx, rec("a", 2)))
	c := <-changes
	assert.Equal(t, "a", c.AccountID)
	require.NoError(t, c.Err)
	assert.Equal(t, uint64(2), c.Record.LastSeq, "first change is the other writer's, not ours")

	// Removed, then corrupt.
	require.NoError(t, other.Clear(ctx, "a"))
	c = <-changes
	assert.True(t, c.Removed)
	require.NoError(t, os.WriteFile(watcher.Path("a"), []byte("{"), 0o600))
	c = <-changes
	var ce *CorruptError
	require.ErrorAs(t, c.Err, &ce)

	// After stop, nothing more; the last watch closes the directory watcher.
	stopA()
	stopA() // idempotent
	watcher.hubMu.Lock()
	assert.Nil(t, watcher.hub, "the last watch to leave closes the watcher")
	watcher.hubMu.Unlock()
	// a's record changes again, then z's: the change of z, watched with the
	// same debounce, arrives and none of a before or after it.
	stopZ, err := watcher.WatchFunc("z", func(c Change) { changes <- c })
	require.NoError(t, err)
	defer stopZ()
	require.NoError(t, other.SaveNow(ctx, rec("a", 3)))
	require.NoError(t, other.SaveNow(ctx, rec("z", 1)))
	c = <-changes
	assert.Equal(t, "z", c.AccountID, "no change of a after its stop")
	stopZ()
	select {
	case c := <-changes:
		t.Fatalf("change after stop: %+v", c)
	default:
	}
}

func TestWatchFuncAfterClose(t *testing.T) {
	s, err := NewFileStore(FileStoreConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.WatchFunc("a", func(Change) {})
	require.ErrorIs(t, err, ErrClosed)
}

// A thousand accounts saving at once (every one READY after a restart)
// must not block a thousand OS threads in fsync: the store bounds its
// file operations in progress.
func TestFileOperationsInProgressAreBounded(t *testing.T) {
	s, err := NewFileStore(FileStoreConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	const accounts = 200
	var wg sync.WaitGroup
	for i := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(i)
			l, err := s.Lock(id)
			if !assert.NoError(t, err) {
				return
			}
			defer l.Unlock()
			assert.NoError(t, s.SaveNow(ctx, rec(id, 1)))
			_, err = s.Load(ctx, id, "")
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	peak := s.ioPeak.Load()
	assert.LessOrEqual(t, peak, int32(maxFileIO), "file operations in progress at once")
	assert.Zero(t, s.ioBusy.Load())
}

// A burst of changes (every account's record rewritten at once) is
// checked on the directory watcher's one goroutine: no goroutine per
// watch, even for a moment.
func TestWatchFuncBurstStartsNoGoroutines(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// The writes below, one after the other, all fall in one debounce
	// window: their checks are due at nearly the same moment.
	watcher, err := NewFileStore(FileStoreConfig{Dir: dir, WatchDebounce: 200 * time.Millisecond})
	require.NoError(t, err)
	defer watcher.Close()
	other, err := NewFileStore(FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer other.Close()

	const accounts = 50
	changes := make(chan int, accounts)
	first, err := watcher.WatchFunc("first", func(Change) {})
	require.NoError(t, err)
	defer first()
	base := runtime.NumGoroutine() // the test's, the store's and the watcher's
	for i := range accounts {
		stop, err := watcher.WatchFunc(strconv.Itoa(i), func(Change) { changes <- runtime.NumGoroutine() })
		require.NoError(t, err)
		defer stop()
	}
	for i := range accounts {
		require.NoError(t, other.SaveNow(ctx, rec(strconv.Itoa(i), 1)))
	}
	most := 0
	for range accounts {
		most = max(most, <-changes)
	}
	assert.LessOrEqual(t, most, base, "goroutines while the watches report a burst")
}
