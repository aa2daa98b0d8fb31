package webhook_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/webhook"
)

// Concurrent accepts (retries of one another included) against a
// dispatcher committing as it goes, with compactions on the way: every
// id is handed out exactly once, in seq order, and a reopened inbox holds
// exactly the uncommitted ones.
func TestInboxConcurrentAcceptsAndCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := webhook.InboxConfig{Dir: dir, AccountID: "a", SegmentBytes: 2048, MaxPending: 10000}
	in, err := webhook.OpenInbox(cfg)
	require.NoError(t, err)
	const senders, each = 8, 60
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("T:%d-%d", s, i)
				for range 2 { // every push delivered twice
					_, err := in.Accept(id, "T", []byte(`{"n":1}`))
					assert.NoError(t, err)
				}
			}
		}()
	}
	seen := map[string]int{}
	var last uint64
	committed := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	handleAll := func(commitUpTo int) {
		for {
			ev, ok := in.Next()
			if !ok {
				return
			}
			seen[ev.ID]++
			assert.Greater(t, ev.Seq, last)
			last = ev.Seq
			if committed < commitUpTo {
				require.NoError(t, in.Commit(ev.Seq))
				committed++
			}
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-in.Ready():
		}
		handleAll(senders*each - 5)
	}
	handleAll(senders*each - 5)
	assert.Len(t, seen, senders*each)
	for id, n := range seen {
		assert.Equal(t, 1, n, id)
	}
	st := in.Stats()
	assert.Greater(t, st.Compacts, uint64(0))
	assert.Equal(t, uint64(senders*each), st.Accepted)
	assert.GreaterOrEqual(t, st.Syncs, uint64(1))
	require.NoError(t, in.Close())

	in, err = webhook.OpenInbox(cfg)
	require.NoError(t, err)
	defer in.Close()
	assert.Equal(t, 5, in.Stats().Depth)
	for id := range seen {
		res, err := in.Accept(id, "T", []byte(`{}`))
		require.NoError(t, err)
		require.True(t, res.Duplicate, id)
	}
}
