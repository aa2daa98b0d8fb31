package client_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// blockingSaveNowStore holds every SaveNow until release is closed (or
// its context ends), counting the calls that began.
type blockingSaveNowStore struct {
	*sessionstore.MemoryStore
	mu      sync.Mutex
	began   int
	release chan struct{}
}

func (s *blockingSaveNowStore) SaveNow(ctx context.Context, r sessionstore.Record) error {
	s.mu.Lock()
	s.began++
	s.mu.Unlock()
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return s.MemoryStore.SaveNow(context.WithoutCancel(ctx), r)
}

// A gateway that repeats RESUMED (or READY) while the record write of the
// first is in progress gets the writes it asks for one after the other on
// one goroutine, not a goroutine parked per frame: a hostile flood of them
// must not grow the client's goroutines without bound.
func TestRepeatedConnectedEventsShareOneRecordWriter(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	store := &blockingSaveNowStore{MemoryStore: sessionstore.NewMemoryStore(), release: make(chan struct{})}
	h := newHarness(t, srv, func(c *client.Config) { c.Store = store }).start()
	sess := h.session()
	h.eventually(func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.began == 1
	}, "READY's record write began")
	const n = 20
	for range n {
		require.NoError(t, sess.EmitRaw([]byte(`{"op":0,"t":"RESUMED","d":""}`)))
	}
	// Read in order: once this event is queued, every RESUMED before it
	// was handled by the reader.
	_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	h.eventually(func() bool { return h.c.Status().Events >= n+2 }, "the RESUMED frames were read")
	writers := 0
	for _, g := range clientGoroutines() {
		if strings.Contains(g, "client.(*connection).connected") {
			writers++
		}
	}
	assert.Equal(t, 1, writers, "goroutines writing the record of READY/RESUMED")
	close(store.release)
	h.eventually(func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.began >= 2
	}, "the repeated RESUMED is written too")
	h.eventually(func() bool { return h.c.Status().State == client.StateConnected }, "still connected")
}
