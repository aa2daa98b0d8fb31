//go:build cluster

package cluster

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/qqgate/qqgate/internal/cluster/etcdtest"
	"github.com/qqgate/qqgate/sessionstore"
)

const wait = 30 * time.Second

// fakeRunner records the node's Start and Stop calls.
type fakeRunner struct {
	mu      sync.Mutex
	running map[string]bool
	starts  int
	stops   int
}

func (f *fakeRunner) hooks() Hooks {
	return Hooks{
		Start: func(id string) { f.mu.Lock(); f.running[id] = true; f.starts++; f.mu.Unlock() },
		Stop:  func(id string) { f.mu.Lock(); delete(f.running, id); f.stops++; f.mu.Unlock() },
	}
}

func (f *fakeRunner) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[id]
}

func (f *fakeRunner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.running)
}

type testNode struct {
	*Node
	r      *fakeRunner
	store  *Store
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, etcd *etcdtest.Server, name string, accounts ...string) *testNode {
	return startNodeTB(t, etcd, name, accounts...)
}

func startNodeTB(t testing.TB, etcd *etcdtest.Server, name string, accounts ...string) *testNode {
	t.Helper()
	return startNodeTTL(t, etcd, 2*time.Second, name, accounts...)
}

func startNodeTTL(t testing.TB, etcd *etcdtest.Server, ttl time.Duration, name string, accounts ...string) *testNode {
	t.Helper()
	n, err := NewNode(Config{Name: name, Endpoints: []string{etcd.Endpoint()}, LeaseTTL: ttl, Prefix: "/t"}, zerolog.Nop())
	require.NoError(t, err)
	tn := &testNode{Node: n, r: &fakeRunner{running: map[string]bool{}}, done: make(chan error, 1)}
	n.SetHooks(tn.r.hooks())
	n.SetAccounts(accounts)
	tn.store = NewStore(n, testLog)
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	if tn.cancel == nil {
		return
	}
	tn.cancel()
	<-tn.done
	tn.store.Close()
	tn.cancel = nil
}

func rec(id, session string, seq uint64) sessionstore.Record {
	return sessionstore.Record{AccountID: id, SessionID: session, LastSeq: seq, HasSeq: true, AppID: "1"}
}

func TestNodesBalanceAndFence(t *testing.T) {
	etcd := etcdtest.Start(t)
	accounts := []string{"a", "b", "c", "d"}
	n1 := startNode(t, etcd, "r1", accounts...)
	require.Eventually(t, func() bool { return n1.r.count() == 4 }, wait, 10*time.Millisecond)
	n2 := startNode(t, etcd, "r2", accounts...)
	require.Eventually(t, func() bool { return n1.r.count() == 2 && n2.r.count() == 2 }, wait, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(n2.Health().Runners) == 2 && n2.Health().OK }, wait, 10*time.Millisecond)

	// Pick an account of n1; n1 writes its record.
	var id string
	for _, a := range accounts {
		if n1.r.has(a) {
			id = a
			break
		}
	}
	ctx := context.Background()
	require.NoError(t, n1.store.SaveNow(ctx, rec(id, "s1", 5)))
	got, err := n2.store.Load(ctx, id, "1")
	require.NoError(t, err)
	assert.EqualValues(t, 5, got.LastSeq)

	// n1's lease ends in etcd (as when it is paused past the TTL): its
	// keys go, n2 takes the account and writes its own record.
	cli, err := Dial(Config{Endpoints: []string{etcd.Endpoint()}})
	require.NoError(t, err)
	defer cli.Close()
	n1.mu.Lock()
	lease := n1.lease
	n1.mu.Unlock()
	_, err = cli.Revoke(ctx, lease)
	require.NoError(t, err)
	// n1 rejoins at once on a new lease and may take id back before n2
	// sees it free; each time it has, its new lease is ended too, until n2
	// is the owner.
	require.Eventually(t, func() bool {
		if n2.r.has(id) && n2.Owns(id) {
			return true
		}
		n1.mu.Lock()
		again := n1.lease
		n1.mu.Unlock()
		if again != lease {
			_, _ = cli.Revoke(ctx, again)
			lease = again
		}
		return false
	}, wait, 10*time.Millisecond)
	require.NoError(t, n2.store.SaveNow(ctx, rec(id, "s1", 9)))

	// Whatever n1 still believes, its write cannot land.
	n1.mu.Lock()
	for _, a := range accounts {
		n1.owned[a] = 1 // a forged belief of ownership, with a valid-looking lease
	}
	n1.healthy, n1.deadline = true, time.Now().Add(time.Hour)
	n1.mu.Unlock()
	err = n1.store.SaveNow(ctx, rec(id, "s1", 6))
	require.ErrorIs(t, err, ErrNotOwner)
	r, err := cli.Get(ctx, n2.store.Key(id))
	require.NoError(t, err)
	parsed, err := sessionstore.ParseRecord(r.Kvs[0].Value)
	require.NoError(t, err)
	assert.EqualValues(t, 9, parsed.LastSeq, "the new owner's record stands")

	// n1 does not act as owner: it stops its accounts, rejoins, and the
	// two settle at two each again, each account on exactly one.
	require.Eventually(t, func() bool {
		if n1.r.count()+n2.r.count() != 4 || n1.r.count() != 2 {
			return false
		}
		for _, a := range accounts {
			if n1.r.has(a) == n2.r.has(a) {
				return false
			}
		}
		return true
	}, wait, 10*time.Millisecond)
	assert.False(t, n1.Owns(id) && n2.Owns(id))
}

func TestStoreListClearExpiry(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli, err := Dial(Config{Endpoints: []string{etcd.Endpoint()}})
	require.NoError(t, err)
	defer cli.Close()
	s := NewUnfencedStore(cli, "/t", zerolog.Nop())
	defer s.Close()
	ctx := context.Background()
	require.NoError(t, s.SaveNow(ctx, rec("x/y", "s", 3)))
	_, err = s.Load(ctx, "x/y", "2")
	require.ErrorIs(t, err, sessionstore.ErrNoSession, "another app's record")
	got, err := s.Load(ctx, "x/y", "1")
	require.NoError(t, err)
	assert.Equal(t, "s", got.SessionID)
	old := rec("old", "s", 1)
	old.SavedAt = time.Now().Add(-time.Hour)
	b, _ := old.MarshalJSON()
	_, err = cli.Put(ctx, s.Key("old"), string(b))
	require.NoError(t, err)
	_, err = cli.Put(ctx, s.Key("bad"), "{")
	require.NoError(t, err)
	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	removed, err := s.RemoveExpired(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{s.Key("old"), s.Key("bad")}, removed)
	require.NoError(t, s.Clear(ctx, "x/y"))
	list, err = s.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	_ = clientv3.LeaseID(0)
}

func TestIdentifyBudgetSharedBetweenRunners(t *testing.T) {
	etcd := etcdtest.Start(t)
	n1 := startNode(t, etcd, "r1")
	n2 := startNode(t, etcd, "r2")
	now := time.Now()
	b1, b2 := n1.IdentifyBudget(), n2.IdentifyBudget()
	// max_concurrency 2 per 5 s for the app, across both runners.
	a := b1.Reserve("app", 2, now)
	b := b2.Reserve("app", 2, now)
	c := b2.Reserve("app", 2, now)
	d := b1.Reserve("app", 2, now)
	assert.Equal(t, now.UnixMilli(), a.UnixMilli())
	assert.Equal(t, now.UnixMilli(), b.UnixMilli())
	assert.Equal(t, now.Add(5*time.Second).UnixMilli(), c.UnixMilli(), "the third waits for the window")
	assert.Equal(t, now.Add(5*time.Second).UnixMilli(), d.UnixMilli())
	assert.Equal(t, now.UnixMilli(), b1.Reserve("other", 2, now).UnixMilli(), "apps have their own budget")
}

// testLog receives the stores' logs: none, unless QQGATE_TEST_LOG is set.
var testLog = func() zerolog.Logger {
	if os.Getenv("QQGATE_TEST_LOG") != "" {
		return zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	}
	return zerolog.Nop()
}()
