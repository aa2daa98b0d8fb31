//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/cluster/etcdtest"
	"github.com/qqgate/qqgate/sessionstore"
)

// BenchmarkRecordWrites1000 saves the records of 1,000 owned accounts,
// each 100 times a second, for b.N seconds, and reports the writes that reached etcd per second: the
// throttle bounds them to about one per account per second.
func BenchmarkRecordWrites1000(b *testing.B) {
	etcd := etcdtest.Start(b)
	const accounts = 1000
	var ids []string
	for i := range accounts {
		ids = append(ids, fmt.Sprintf("bot-%04d", i))
	}
	n := startNodeTTL(b, etcd, DefaultLeaseTTL, "r1", ids...)
	require.Eventually(b, func() bool { return n.r.count() == accounts }, time.Minute, 10*time.Millisecond)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var saves atomic.Uint64
	var wg sync.WaitGroup
	// One goroutine per account, as the clients are, each saving every
	// 10 ms (100 events a second per account).
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for seq := uint64(1); time.Since(start) < time.Duration(b.N)*time.Second; seq++ {
				_ = n.store.Save(ctx, sessionstore.Record{AccountID: id, SessionID: "s", LastSeq: seq, HasSeq: true})
				saves.Add(1)
				<-tick.C
			}
		}()
	}
	wg.Wait()
	require.NoError(b, n.store.Flush(ctx), "%+v", n.Health())
	took := time.Since(start)
	b.StopTimer()
	var writes, errs uint64
	for _, id := range ids {
		st := n.store.Stats(id)
		writes += st.Writes
		errs += st.Errors
	}
	b.ReportMetric(float64(saves.Load())/took.Seconds(), "saves/s")
	b.ReportMetric(float64(writes)/took.Seconds(), "etcd-writes/s")
	b.ReportMetric(float64(errs), "errors")
}

// BenchmarkHandover measures a graceful handover of 10 accounts from a
// runner to one that joins (the etcd side: release, claim; the runner's
// own graceful close comes on top), per account.
func BenchmarkHandover(b *testing.B) {
	etcd := etcdtest.Start(b)
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("bot-%02d", i))
	}
	n1 := startBenchNode(b, etcd, "r1", ids...)
	require.Eventually(b, func() bool { return n1.r.count() == 20 }, time.Minute, time.Millisecond)
	b.ResetTimer()
	var total time.Duration
	for i := range b.N {
		start := time.Now()
		n2 := startBenchNode(b, etcd, fmt.Sprintf("r2-%d", i), ids...)
		require.Eventually(b, func() bool { return n1.r.count() == 10 && n2.r.count() == 10 }, time.Minute, time.Millisecond)
		total += time.Since(start)
		n2.stop()
		require.Eventually(b, func() bool { return n1.r.count() == 20 }, time.Minute, time.Millisecond)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N)/10, "ms/account")
}

func startBenchNode(b *testing.B, etcd *etcdtest.Server, name string, accounts ...string) *testNode {
	return startNodeTB(b, etcd, name, accounts...)
}
