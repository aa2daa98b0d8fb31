package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/qqgate/qqgate/client"
)

// IdentifyBudget shares each app's IDENTIFY budget (max_concurrency per
// [client.IdentifyWindow]) among the runners of the cluster: one key per
// app, <prefix>/identify/<app>, holds the times of the reservations still
// in the window, rewritten by compare-and-swap. Times are the runners'
// wall clocks, so clock skew between machines widens or narrows the
// window by as much. When etcd cannot be reached in time, the runner's
// own budget alone applies.
type IdentifyBudget struct {
	n *Node
}

var _ client.SharedIdentifyBudget = (*IdentifyBudget)(nil)

// IdentifyBudget returns the node's shared IDENTIFY budget.
func (n *Node) IdentifyBudget() *IdentifyBudget { return &IdentifyBudget{n: n} }

// maxBudgetTries bounds the compare-and-swap retries of one reservation.
const maxBudgetTries = 8

// Reserve implements [client.SharedIdentifyBudget].
func (b *IdentifyBudget) Reserve(appID string, maxConcurrency int, notBefore time.Time) time.Time {
	if maxConcurrency < 1 {
		maxConcurrency = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.n.opTimeout())
	defer cancel()
	key := b.n.key("identify", appID)
	for range maxBudgetTries {
		resp, err := b.n.cli.Get(ctx, key)
		if err != nil {
			b.n.log.Warn().Err(err).Str("app", appID).Msg("cluster: shared identify budget unreachable; this runner's own budget applies")
			return notBefore
		}
		var times []int64 // unix ms
		var rev int64
		if len(resp.Kvs) > 0 {
			rev = resp.Kvs[0].ModRevision
			_ = json.Unmarshal(resp.Kvs[0].Value, &times)
		}
		at := reserveAt(times, maxConcurrency, notBefore)
		keep := times[:0]
		for _, t := range times {
			if time.UnixMilli(t).Add(client.IdentifyWindow).After(b.n.now()) {
				keep = append(keep, t)
			}
		}
		keep = append(keep, at.UnixMilli())
		slices.Sort(keep)
		v, _ := json.Marshal(keep)
		r, err := b.n.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(v))).Commit()
		if err != nil {
			b.n.log.Warn().Err(err).Str("app", appID).Msg("cluster: shared identify budget unreachable; this runner's own budget applies")
			return notBefore
		}
		if r.Succeeded {
			return at
		}
	}
	b.n.log.Warn().Str("app", appID).Msg("cluster: shared identify budget too contended; this runner's own budget applies")
	return notBefore
}

// reserveAt is the earliest time at or after notBefore when fewer than
// maxConcurrency of the reservations fall within the window before it.
func reserveAt(times []int64, maxConcurrency int, notBefore time.Time) time.Time {
	at := notBefore
	var in []time.Time
	for _, t := range times {
		if tt := time.UnixMilli(t); tt.Add(client.IdentifyWindow).After(at) {
			in = append(in, tt)
		}
	}
	slices.SortFunc(in, func(a, b time.Time) int { return a.Compare(b) })
	if len(in) >= maxConcurrency {
		if next := in[len(in)-maxConcurrency].Add(client.IdentifyWindow); next.After(at) {
			at = next
		}
	}
	return at
}
