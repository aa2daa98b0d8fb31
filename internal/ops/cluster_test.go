package ops

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/internal/testutil"
)

func TestClusterAccountsHealthStatusMetrics(t *testing.T) {
	src := &fakeSource{}
	local := shopBot()
	local.Owner = "runner-a"
	remote := AccountState{ID: "far-bot", AppID: "9", Remote: true, Owner: "runner-b", RemoteState: "connected"}
	src.set(local, remote)
	s, hs, hc := newTestServer(t, src)
	var mu sync.Mutex
	standing := ClusterHealth{Name: "runner-a", OK: true, Runners: []string{"runner-a", "runner-b"}, Owned: 1}
	s.SetCluster(func() ClusterHealth { mu.Lock(); defer mu.Unlock(); return standing })

	code, h := getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, &standing, h.Cluster)
	assert.Equal(t, "connected", h.Accounts[1].State)

	// The owner of far-bot is gone and nobody took it yet.
	src.update(1, func(a *AccountState) { a.Owner, a.RemoteState = "", "" })
	code, h = getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "unowned", h.Accounts[1].State)
	assert.Equal(t, "no runner of the cluster owns it", h.Accounts[1].Error)
	src.update(1, func(a *AccountState) { a.Owner, a.RemoteState = "runner-b", "resuming" })

	// etcd out of reach: the runner says so and is not healthy.
	mu.Lock()
	standing.OK, standing.Error = false, "the lease could have expired"
	mu.Unlock()
	code, h = getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "the lease could have expired", h.Cluster.Error)

	_, _, body := testutil.GetWith(t, hc, hs.URL+"/status")
	assert.Contains(t, string(body), `"owner": "runner-a"`)
	assert.Contains(t, string(body), `"owner": "runner-b"`)
	assert.Contains(t, string(body), `"state": "resuming"`)

	_, _, metrics := testutil.GetWith(t, hc, hs.URL+"/metrics")
	assert.Contains(t, string(metrics), `account="shop-bot"`)
	assert.NotContains(t, string(metrics), `account="far-bot"`, "its owner serves its metrics")
}
