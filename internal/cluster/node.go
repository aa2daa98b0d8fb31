package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ErrNotOwner is wrapped by the errors of writes and connections of an
// account this runner does not own (any more): its lease expired, etcd
// was out of reach for too long, or another runner took the account.
var ErrNotOwner = errors.New("cluster: this runner does not own the account")

// ErrNameInUse is the error a runner logs (and /healthz serves) while
// another live runner has the same name; it retries until that one's lease
// is gone.
var ErrNameInUse = errors.New("cluster: another live runner has this name")

func nopZap() *zap.Logger { return zap.NewNop() }

// Hooks are what a Node asks of the runner.
type Hooks struct {
	// Start runs the account; the node owns it. It must not block.
	Start func(accountID string)
	// Stop stops the account gracefully (the handler finishes, the record
	// is written, the connection closes with 4000) and returns once it
	// has ended.
	Stop func(accountID string)
}

// AccountView is one account of the cluster as any runner sees it.
type AccountView struct {
	ID    string
	Owner string // the owning runner's name; "" when no runner owns it
	// State is the owner's last published client state ("" unknown).
	State   string
	Session string
	Seq     uint64
}

// Health is the node's standing, served on /healthz.
type Health struct {
	Name string `json:"name"`
	// OK is true while the node holds a valid lease.
	OK bool `json:"ok"`
	// Runners are the live runners' names.
	Runners []string `json:"runners"`
	// Owned counts the accounts this runner owns.
	Owned int `json:"owned"`
	// Error says why OK is false.
	Error string `json:"error,omitempty"`
}

// Node is this runner's membership in the cluster. Create it with
// [NewNode]; call Run once.
type Node struct {
	cfg   Config
	log   zerolog.Logger
	cli   *clientv3.Client
	hooks Hooks
	now   func() time.Time

	nudge chan struct{}

	mu       sync.Mutex
	accounts []string             // configured account ids; guarded by mu
	lease    clientv3.LeaseID     // 0 when none; guarded by mu
	deadline time.Time            // the lease is surely valid before; guarded by mu
	healthy  bool                 // guarded by mu
	lastErr  string               // guarded by mu
	owned    map[string]int64     // account -> create revision of our owner key; guarded by mu
	running  map[string]bool      // started and not yet stopped; guarded by mu
	stopping map[string]bool      // being stopped; guarded by mu
	states   map[string]stateRec  // our accounts' states to publish; guarded by mu
	dirty    map[string]bool      // states not yet published; guarded by mu
	view     []AccountView        // last view of the cluster; guarded by mu
	runners  []string             // last view of the members; guarded by mu
	lost     chan struct{}        // closed when the lease is lost; guarded by mu
	stale    []clientv3.LeaseID   // lost leases to revoke before joining again; guarded by mu
	stopWG   sync.WaitGroup       // stop goroutines
	handover map[string]time.Time // when a handover of the account started; guarded by mu
}

type stateRec struct {
	Owner   string `json:"owner"`
	State   string `json:"state"`
	Session string `json:"session,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
}

// NewNode connects to etcd (lazily: an unreachable etcd is not an error
// here) for the cluster cfg.
func NewNode(cfg Config, log zerolog.Logger) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cc, err := cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	cc.Logger = nopZap()
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return &Node{
		cfg:      cfg,
		log:      log.With().Str("runner", cfg.Name).Logger(),
		cli:      cli,
		now:      time.Now,
		nudge:    make(chan struct{}, 1),
		owned:    map[string]int64{},
		running:  map[string]bool{},
		stopping: map[string]bool{},
		states:   map[string]stateRec{},
		dirty:    map[string]bool{},
		handover: map[string]time.Time{},
		lost:     make(chan struct{}),
	}, nil
}

// Name is this runner's name.
func (n *Node) Name() string { return n.cfg.Name }

// Config is the node's configuration, defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Client is the node's etcd client.
func (n *Node) Client() *clientv3.Client { return n.cli }

// SetAccounts sets the configured accounts (at start and on reload).
func (n *Node) SetAccounts(ids []string) {
	n.mu.Lock()
	n.accounts = slices.Clone(ids)
	n.mu.Unlock()
	n.poke()
}

func (n *Node) poke() {
	select {
	case n.nudge <- struct{}{}:
	default:
	}
}

func (n *Node) key(kind, id string) string {
	return n.cfg.Prefix + "/" + kind + "/" + url.PathEscape(id)
}

func (n *Node) dir(kind string) string { return n.cfg.Prefix + "/" + kind + "/" }

// margin is how long before the lease could expire the node stops its
// accounts: the time a graceful close needs.
func (n *Node) margin() time.Duration { return n.cfg.LeaseTTL / 4 }

// opTimeout bounds one etcd request.
func (n *Node) opTimeout() time.Duration { return n.cfg.LeaseTTL / 3 }

// validLocked reports whether the lease is surely still valid.
func (n *Node) validLocked() bool {
	return n.healthy && n.now().Before(n.deadline.Add(-n.margin()))
}

// Fence returns the create revision of our ownership key of the account,
// or false when this runner does not own it or its lease may have
// expired.
func (n *Node) Fence(accountID string) (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rev, ok := n.owned[accountID]
	return rev, ok && n.validLocked()
}

// Owns reports whether this runner owns the account now.
func (n *Node) Owns(accountID string) bool {
	_, ok := n.Fence(accountID)
	return ok
}

// Lost is called when a fenced write found the ownership gone.
func (n *Node) Lost(accountID string) {
	n.mu.Lock()
	if _, ok := n.owned[accountID]; ok {
		delete(n.owned, accountID)
		n.log.Warn().Str("account", accountID).Msg("cluster: ownership of the account is gone; stopping it here")
	}
	n.mu.Unlock()
	n.poke()
}

// SetState records an owned account's client state for /status of the
// other runners; it is published when it changes.
func (n *Node) SetState(accountID, state, session string, seq uint64) {
	n.mu.Lock()
	old := n.states[accountID]
	rec := stateRec{Owner: n.cfg.Name, State: state, Session: session, Seq: seq}
	if old.State != state || old.Session != session {
		n.states[accountID] = rec
		n.dirty[accountID] = true
		n.mu.Unlock()
		n.poke()
		return
	}
	n.mu.Unlock()
}

// View returns every configured account with its owner and state, as of
// the node's last look at etcd, sorted by id.
func (n *Node) View() []AccountView {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.view)
}

// Health returns the node's standing.
func (n *Node) Health() Health {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := Health{Name: n.cfg.Name, OK: n.validLocked(), Runners: slices.Clone(n.runners), Owned: len(n.owned)}
	if !h.OK {
		h.Error = n.lastErr
		if h.Error == "" {
			h.Error = "not joined yet"
		}
	}
	return h
}

// Run joins the cluster, keeps the lease alive, claims and releases
// accounts until ctx ends, then hands every account over (stops them,
// releases their keys, revokes the lease) and returns nil.
func (n *Node) Run(ctx context.Context) error {
	defer n.cli.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Add(2)
	go func() { defer wg.Done(); n.watch(wctx) }()
	go func() { defer wg.Done(); n.keepAlive(wctx) }()

	retry := time.NewTimer(0)
	defer retry.Stop()
	resync := time.NewTicker(n.cfg.LeaseTTL)
	defer resync.Stop()
	for {
		n.mu.Lock()
		joined := n.lease != 0
		lost := n.lost
		wait := time.Until(n.deadline.Add(-n.margin()))
		n.mu.Unlock()
		var watchdog <-chan time.Time
		var dog *time.Timer
		if joined {
			dog = time.NewTimer(max(wait, 0))
			watchdog = dog.C
		}
		select {
		case <-ctx.Done():
			if dog != nil {
				dog.Stop()
			}
			n.shutdown()
			return nil
		case <-retry.C:
		case <-n.nudge:
		case <-resync.C:
		case <-watchdog:
		case <-lost:
		}
		if dog != nil {
			dog.Stop()
		}
		n.mu.Lock()
		expired := n.lease != 0 && !n.validLocked()
		n.mu.Unlock()
		if expired {
			n.loseLease("the lease could have expired: no keepalive reached etcd in time")
		}
		n.mu.Lock()
		joined = n.lease != 0
		n.mu.Unlock()
		if !joined {
			if err := n.join(ctx); err != nil {
				n.setErr(err)
				retry.Reset(n.cfg.LeaseTTL / 4)
				continue
			}
		}
		if err := n.reconcile(ctx); err != nil && ctx.Err() == nil {
			n.log.Debug().Err(err).Msg("cluster: reconcile failed; retrying")
			retry.Reset(n.cfg.LeaseTTL / 4)
		}
	}
}

func (n *Node) setErr(err error) {
	n.mu.Lock()
	if n.lastErr != err.Error() {
		n.log.Error().Err(err).Msg("cluster: etcd")
	}
	n.lastErr = err.Error()
	n.mu.Unlock()
}

// join grants a lease and registers the runner, once every account of an
// earlier lease has stopped.
func (n *Node) join(ctx context.Context) error {
	n.mu.Lock()
	busy := len(n.running) > 0 || len(n.stopping) > 0
	n.mu.Unlock()
	if busy {
		return errors.New("waiting for the accounts of the lost lease to stop")
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	defer cancel()
	n.mu.Lock()
	stale := slices.Clone(n.stale)
	n.mu.Unlock()
	for _, id := range stale {
		if _, err := n.cli.Revoke(ctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("revoke the lost lease: %w", err)
		}
		n.mu.Lock()
		n.stale = slices.DeleteFunc(n.stale, func(x clientv3.LeaseID) bool { return x == id })
		n.mu.Unlock()
	}
	sent := n.now()
	g, err := n.cli.Grant(ctx, int64(n.cfg.LeaseTTL/time.Second))
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	key := n.key("runners", n.cfg.Name)
	r, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, n.cfg.Name, clientv3.WithLease(g.ID))).Commit()
	if err != nil {
		_, _ = n.cli.Revoke(context.WithoutCancel(ctx), g.ID)
		return fmt.Errorf("register runner: %w", err)
	}
	if !r.Succeeded {
		_, _ = n.cli.Revoke(context.WithoutCancel(ctx), g.ID)
		return fmt.Errorf("%w: %s (is another runner started with the same cluster.name?)", ErrNameInUse, n.cfg.Name)
	}
	n.mu.Lock()
	n.lease, n.deadline, n.healthy, n.lastErr = g.ID, sent.Add(time.Duration(g.TTL)*time.Second), true, ""
	n.lost = make(chan struct{})
	for id := range n.states {
		n.dirty[id] = true
	}
	n.mu.Unlock()
	n.log.Info().Str("lease_ttl", n.cfg.LeaseTTL.String()).Msg("cluster: joined")
	return nil
}

// keepAlive renews the lease every third of its TTL and moves the
// deadline to the send time of the last renewal plus the TTL etcd gave.
func (n *Node) keepAlive(ctx context.Context) {
	t := time.NewTicker(n.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		lease := n.lease
		n.mu.Unlock()
		if lease == 0 {
			continue
		}
		sent := n.now()
		kctx, cancel := context.WithTimeout(ctx, n.opTimeout())
		r, err := n.cli.KeepAliveOnce(kctx, lease)
		cancel()
		switch {
		case err == nil && r.TTL > 0:
			n.mu.Lock()
			if n.lease == lease && n.healthy {
				n.deadline = sent.Add(time.Duration(r.TTL) * time.Second)
			}
			n.mu.Unlock()
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && r.TTL <= 0):
			n.mu.Lock()
			if n.lease == lease {
				n.healthy = false
				n.closeLostLocked()
			}
			n.mu.Unlock()
		case ctx.Err() == nil:
			n.setErr(fmt.Errorf("lease keepalive: %w", err))
		}
	}
}

func (n *Node) closeLostLocked() {
	select {
	case <-n.lost:
	default:
		close(n.lost)
	}
}

// loseLease drops every ownership at once (fenced writes and connections
// then fail locally) and stops every account, because another runner may
// own them soon.
func (n *Node) loseLease(why string) {
	n.mu.Lock()
	if n.lease == 0 {
		n.mu.Unlock()
		return
	}
	old := n.lease
	n.lease, n.healthy, n.lastErr = 0, false, why
	n.closeLostLocked()
	owned := len(n.owned)
	clear(n.owned)
	var ids []string
	for id := range n.running {
		if !n.stopping[id] {
			ids = append(ids, id)
		}
	}
	n.mu.Unlock()
	n.log.Error().Str("why", why).Int("accounts", owned).Msg("cluster: lease lost; stopping every account here until etcd is reachable again")
	for _, id := range ids {
		n.stopAsync(id, false)
	}
	// A lease still alive in etcd (etcd restarted renews every lease)
	// would keep the keys of accounts this runner no longer serves: join
	// revokes it first.
	n.mu.Lock()
	n.stale = append(n.stale, old)
	n.mu.Unlock()
}

// stopAsync stops a running account in the background; release deletes
// its ownership key afterwards.
func (n *Node) stopAsync(id string, release bool) {
	n.mu.Lock()
	if !n.running[id] || n.stopping[id] {
		n.mu.Unlock()
		return
	}
	n.stopping[id] = true
	n.stopWG.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.stopWG.Done()
		n.hooks.Stop(id)
		n.mu.Lock()
		rev, owned := n.owned[id]
		if release {
			delete(n.owned, id)
		}
		delete(n.running, id)
		delete(n.stopping, id)
		delete(n.states, id)
		delete(n.dirty, id)
		n.mu.Unlock()
		if release && owned {
			n.release(id, rev)
		}
		n.poke()
	}()
}

// release deletes our ownership key of the account (and its state key).
func (n *Node) release(id string, rev int64) {
	ctx, cancel := context.WithTimeout(context.Background(), n.opTimeout())
	defer cancel()
	key := n.key("owners", id)
	_, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key), clientv3.OpDelete(n.key("state", id))).Commit()
	if err != nil {
		n.log.Warn().Err(err).Str("account", id).Msg("cluster: release ownership; it goes with the lease")
		return
	}
	n.log.Info().Str("account", id).Msg("cluster: released")
}

// shutdown hands every account over and leaves the cluster.
func (n *Node) shutdown() {
	n.mu.Lock()
	var ids []string
	for id := range n.running {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		n.stopAsync(id, true)
	}
	n.stopWG.Wait()
	n.mu.Lock()
	lease := n.lease
	n.lease, n.healthy = 0, false
	n.mu.Unlock()
	if lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), n.opTimeout())
		_, _ = n.cli.Revoke(ctx, lease)
		cancel()
	}
	n.log.Info().Msg("cluster: left")
}

// watch nudges the loop on every change of membership, ownership or
// state.
func (n *Node) watch(ctx context.Context) {
	for ctx.Err() == nil {
		wc := n.cli.Watch(clientv3.WithRequireLeader(ctx), n.cfg.Prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		for range wc {
			n.poke()
		}
		// The channel closes when ctx ends or the watch failed; a new
		// watch starts from now, and the resync covers what was missed.
		n.poke()
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.LeaseTTL / 4):
		}
	}
}

type owner struct {
	name string
	rev  int64
}

// reconcile reads the cluster and moves toward this runner's share.
func (n *Node) reconcile(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL)
	defer cancel()
	n.publish(ctx)
	resp, err := n.cli.Txn(ctx).Then(
		clientv3.OpGet(n.dir("runners"), clientv3.WithPrefix()),
		clientv3.OpGet(n.dir("owners"), clientv3.WithPrefix()),
		clientv3.OpGet(n.dir("state"), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return err
	}
	var runners []string
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		runners = append(runners, string(kv.Value))
	}
	owners := map[string]owner{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		id, _ := url.PathUnescape(strings.TrimPrefix(string(kv.Key), n.dir("owners")))
		owners[id] = owner{name: string(kv.Value), rev: kv.CreateRevision}
	}
	states := map[string]stateRec{}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		id, _ := url.PathUnescape(strings.TrimPrefix(string(kv.Key), n.dir("state")))
		var s stateRec
		if json.Unmarshal(kv.Value, &s) == nil {
			states[id] = s
		}
	}
	sort.Strings(runners)

	n.mu.Lock()
	accounts := slices.Clone(n.accounts)
	if !slices.Contains(runners, n.cfg.Name) && n.lease != 0 {
		// Our registration is gone: the lease expired in etcd.
		n.mu.Unlock()
		n.loseLease("this runner's registration is gone from etcd (lease expired)")
		return nil
	}
	n.runners = runners
	view := make([]AccountView, 0, len(accounts))
	for _, id := range accounts {
		o := owners[id]
		v := AccountView{ID: id, Owner: o.name}
		if s, ok := states[id]; ok && s.Owner == o.name {
			v.State, v.Session, v.Seq = s.State, s.Session, s.Seq
		}
		view = append(view, v)
	}
	sort.Slice(view, func(i, j int) bool { return view[i].ID < view[j].ID })
	n.view = view
	// Ownerships that are gone.
	for id, rev := range n.owned {
		if o, ok := owners[id]; !ok || o.rev != rev {
			delete(n.owned, id)
			n.log.Warn().Str("account", id).Msg("cluster: our ownership key is gone; stopping the account here")
		}
	}
	var stop, release []string
	for id := range n.running {
		if _, ok := n.owned[id]; !ok && !n.stopping[id] {
			stop = append(stop, id)
		}
	}
	// Orphaned ownerships (a start that never happened, an account
	// removed from the file) are released outright.
	for id := range n.owned {
		if !n.running[id] && !slices.Contains(accounts, id) {
			release = append(release, id)
		}
	}
	assign := Assign(runners, accounts)
	var handover []string
	for id := range n.running {
		if assign[id] != n.cfg.Name && !n.stopping[id] && !slices.Contains(stop, id) {
			handover = append(handover, id)
		}
	}
	var claim []string
	for _, id := range accounts {
		if assign[id] != n.cfg.Name || n.running[id] || n.stopping[id] {
			continue
		}
		if o, ok := owners[id]; ok && o.name != n.cfg.Name {
			continue // its owner hands it over once it sees the same assignment
		}
		claim = append(claim, id)
	}
	lease := n.lease
	n.mu.Unlock()

	for _, id := range stop {
		n.stopAsync(id, false)
	}
	for _, id := range handover {
		n.log.Info().Str("account", id).Str("to", assign[id]).Msg("cluster: handing the account over")
		n.stopAsync(id, true)
	}
	for _, id := range release {
		n.mu.Lock()
		rev := n.owned[id]
		delete(n.owned, id)
		n.mu.Unlock()
		n.release(id, rev)
	}
	for _, id := range claim {
		if err := n.claim(ctx, id, lease, owners); err != nil {
			return err
		}
	}
	return nil
}

// claim takes the account's ownership key (or adopts ours left from a
// start that did not happen) and starts the account.
func (n *Node) claim(ctx context.Context, id string, lease clientv3.LeaseID, owners map[string]owner) error {
	key := n.key("owners", id)
	var rev int64
	if o, ok := owners[id]; ok && o.name == n.cfg.Name {
		// Ours from this lease (a key of an older lease is revoked).
		r, err := n.cli.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(r.Kvs) == 0 || clientv3.LeaseID(r.Kvs[0].Lease) != lease {
			return nil
		}
		rev = r.Kvs[0].CreateRevision
	} else {
		r, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, n.cfg.Name, clientv3.WithLease(lease))).Commit()
		if err != nil {
			return err
		}
		if !r.Succeeded {
			return nil
		}
		rev = r.Header.Revision
	}
	n.mu.Lock()
	if n.lease != lease || !n.validLocked() {
		n.mu.Unlock()
		return nil
	}
	n.owned[id] = rev
	n.running[id] = true
	n.mu.Unlock()
	n.log.Info().Str("account", id).Msg("cluster: claimed")
	n.hooks.Start(id)
	return nil
}

// publish writes the changed states of our accounts, on our lease.
func (n *Node) publish(ctx context.Context) {
	n.mu.Lock()
	lease := n.lease
	type item struct {
		id  string
		rev int64
		b   []byte
	}
	var items []item
	for id := range n.dirty {
		rev, ok := n.owned[id]
		if !ok {
			delete(n.dirty, id)
			continue
		}
		b, _ := json.Marshal(n.states[id])
		items = append(items, item{id, rev, b})
		delete(n.dirty, id)
	}
	n.mu.Unlock()
	if lease == 0 {
		return
	}
	for _, it := range items {
		_, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(n.key("owners", it.id)), "=", it.rev)).
			Then(clientv3.OpPut(n.key("state", it.id), string(it.b), clientv3.WithLease(lease))).Commit()
		if err != nil {
			n.mu.Lock()
			n.dirty[it.id] = true
			n.mu.Unlock()
			return
		}
	}
}

// SetHooks sets the runner's hooks; call it before Run.
func (n *Node) SetHooks(h Hooks) { n.hooks = h }
