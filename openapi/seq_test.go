package openapi_test

import (
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/openapi"
)

func TestFreshMsgSeqRange(t *testing.T) {
	t.Parallel()
	seen := make(map[int]bool)
	for range 10000 {
		s := openapi.FreshMsgSeq()
		require.GreaterOrEqual(t, s, openapi.FreshSeqMin)
		require.LessOrEqual(t, s, openapi.FreshSeqMax)
		seen[s] = true
	}
	assert.Greater(t, len(seen), 9900, "random")
	assert.Greater(t, openapi.FreshSeqMin, 1000, "far above any reply number")
	assert.LessOrEqual(t, openapi.FreshSeqMax, 1<<31-1, "fits the platform's int32")
}

// Concurrent replies in one scope take distinct numbers 1..n.
func TestReplyScopeConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *openapi.Config) { c.Limits = openapi.NoLimits() })
	e.srv.SetReplyLimits(noFakeLimits())
	in := e.inbound(t, "C2C_MESSAGE_CREATE")
	ctx := openapi.WithReplyScope(testCtx(t))
	const n = 20
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got []int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.api.ReplyText(ctx, in, "x")
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			got = append(got, res.MsgSeq)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Ints(got)
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	assert.Equal(t, want, got)
	assert.Len(t, e.srv.Delivered(target(mustRoute(t, in))), n)
}
