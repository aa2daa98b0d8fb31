package webhook

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A push whose write fails is not acknowledged and its id is not kept: the
// platform's retry is written anew, not taken for a duplicate. A retry
// arriving while the first copy is still being written waits for its
// outcome.
func TestAcceptWriteFailureLeavesRetryWelcome(t *testing.T) {
	in, err := OpenInbox(InboxConfig{Dir: t.TempDir(), AccountID: "a"})
	require.NoError(t, err)
	defer in.Close()
	good := in.f
	ro, err := os.Open(filepath.Join(in.dir, segName(in.seg)))
	require.NoError(t, err)
	in.f = ro // every write now fails
	_, err = in.Accept("X:1", "T", []byte(`{}`))
	require.Error(t, err)
	in.f = good
	ro.Close()
	res, err := in.Accept("X:1", "T", []byte(`{}`))
	require.NoError(t, err)
	assert.False(t, res.Duplicate)

	// A first copy in flight, then failing.
	in.mu.Lock()
	first := &appendReq{done: make(chan struct{})}
	in.ids["X:2"] = &idState{seq: 1000, req: first}
	waiting := make(chan struct{})
	in.waiting = func() { close(waiting) }
	in.mu.Unlock()
	got := make(chan Accepted, 1)
	go func() {
		r, err := in.Accept("X:2", "T", []byte(`{}`))
		assert.NoError(t, err)
		got <- r
	}()
	select {
	case <-waiting: // the retry waits for the first copy
	case r := <-got:
		t.Fatalf("a retry was answered (%+v) before the first copy was on disk", r)
	}
	in.mu.Lock()
	delete(in.ids, "X:2")
	first.err = errors.New("disk full")
	close(first.done)
	in.mu.Unlock()
	r := <-got
	assert.False(t, r.Duplicate, "a retry of a push that was never written is written")
	assert.NotEqual(t, uint64(1000), r.Seq)
}
