package main

import (
	"bufio"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// idleAccounts is the account count of the idle-memory and restart
// benchmarks: the size the project promises to hold in one process.
const idleAccounts = 1000

// idleFleet is one fake gateway that admits idleAccounts apps, and the
// configuration file of a runner with all of them.
type idleFleet struct {
	srv    *gatewaytest.Server
	cfg    string
	listen string
}

func newIdleFleet(b *testing.B, n int) *idleFleet {
	b.Helper()
	apps := make(map[string]string, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(2000 + i)
		apps[ids[i]] = "s-" + ids[i]
	}
	// Every account is its own app, so the per-app IDENTIFY spacing never
	// serialises them; the budget is large so restarts never run out.
	srv := gatewaytest.NewTestServer(b, gatewaytest.Options{Apps: apps,
		SessionStartLimit: wire.SessionStartLimit{Total: 1 << 20, Remaining: 1 << 20, ResetAfter: 86_400_000, MaxConcurrency: 1000}})
	dir := b.TempDir()
	f := &idleFleet{srv: srv, cfg: filepath.Join(dir, "qqgate.yaml"), listen: freeAddr(b)}
	writeFile(b, f.cfg, accountsYAML(srv, filepath.Join(dir, "sessions"), f.listen, ids...))
	return f
}

// start runs the real binary on the fleet's configuration and waits for
// n lines of type typ (READY on a first start, RESUMED on a restart); it
// returns the process and the time from the start to the last such line.
func (f *idleFleet) start(b *testing.B, n int, typ string) (*proc, time.Duration) {
	b.Helper()
	t0 := time.Now()
	p := startConfig(b, f.cfg, "--log-level", "error")
	for seen := 0; seen < n; {
		l := p.Next()
		switch l.Type {
		case typ:
			seen++
		case wire.EventReady, wire.EventResumed:
			b.Fatalf("account %s: %s, want %s\nstderr:\n%s", l.Account, l.Type, typ, p.Stderr.String())
		}
	}
	return p, time.Since(t0)
}

// metric reads one unlabelled sample of the runner's /metrics.
func (f *idleFleet) metric(b *testing.B, name string) float64 {
	b.Helper()
	resp, err := http.Get("http://" + f.listen + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			return x
		}
	}
	b.Fatalf("no %s in /metrics", name)
	return 0
}

// waitSettled waits until read's value stops changing (by more than
// 0.5%) and returns the last reading.
func waitSettled(b *testing.B, read func() float64) float64 {
	b.Helper()
	prev := read()
	// A benchmark of a live process: it reads it over wall time.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 40; i++ {
		<-tick.C
		cur := read()
		if cur >= prev-prev/200 && cur <= prev+prev/200 {
			return cur
		}
		prev = cur
	}
	return prev
}

// settledRSS is the process's RSS once it stopped changing: after the last
// READY the runtime still returns freed start-up memory to the OS. It
// reads /proc only: a scrape of /metrics allocates (tens of KiB per
// account), and the heap's growth would be measured.
func settledRSS(b *testing.B, pid int) float64 {
	return waitSettled(b, func() float64 {
		r, err := procRSS(pid)
		if err != nil {
			b.Fatal(err)
		}
		return float64(r)
	})
}

// idleGoroutines is the runner's goroutine count at rest: the least of a
// few readings. Timers of the accounts (record refreshes, and the watches
// reading those writes back) start short-lived goroutines now and then.
func (f *idleFleet) idleGoroutines(b *testing.B) float64 {
	b.Helper()
	least := f.metric(b, "go_goroutines")
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 8; i++ {
		<-tick.C
		least = min(least, f.metric(b, "go_goroutines"))
	}
	return least
}

// BenchmarkRunnerIdleRSS starts `qqgate run --config` (the real binary)
// with 1,000 accounts against one fake gateway, waits until every account
// is READY and the memory settled, and reports the process's resident
// memory (VmRSS) divided by the accounts, the goroutines per account (from
// /metrics, against a one-account runner), the heap in use per account and
// the process's OS threads.
//
// It also reports the one-account runner's own RSS (the base: the
// binary's mapped code and data, the runtime, the ops server), how much
// of that is file-backed (the binary's pages), and the cost of each
// account beyond that base: (RSS - base) / (accounts - 1).
// Each iteration is one process.
func BenchmarkRunnerIdleRSS(b *testing.B) {
	one := newIdleFleet(b, 1)
	p1, _ := one.start(b, 1, wire.EventReady)
	g1 := one.idleGoroutines(b)
	base := settledRSS(b, p1.Cmd.Process.Pid) / 1024
	baseFile, err := procStatus(p1.Cmd.Process.Pid, "RssFile:")
	if err != nil {
		b.Fatal(err)
	}
	stopProc(b, p1)
	var rss, marginal, gor, heap, stack, threads, took float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh session directory each time, so every start IDENTIFYs.
		b.StopTimer()
		f := newIdleFleet(b, idleAccounts)
		b.StartTimer()
		p, d := f.start(b, idleAccounts, wire.EventReady)
		b.StopTimer()
		total := settledRSS(b, p.Cmd.Process.Pid) / 1024
		rss += total / idleAccounts
		marginal += (total - base) / (idleAccounts - 1)
		g := f.idleGoroutines(b)
		// Less the one-account runner's: its account's and the process's own.
		gor += (g - g1) / (idleAccounts - 1)
		heap += f.metric(b, "go_memstats_heap_inuse_bytes") / idleAccounts / 1024
		stack += f.metric(b, "go_memstats_stack_inuse_bytes") / idleAccounts / 1024
		stack += f.metric(b, "go_memstats_stack_inuse_bytes") / idleAccounts / 1024
		th, err := procStatus(p.Cmd.Process.Pid, "Threads:")
		if err != nil {
			b.Fatal(err)
		}
		threads += float64(th)
		took += d.Seconds()
		stopProc(b, p)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(rss/n, "KiB-RSS/account")
	b.ReportMetric(marginal/n, "KiB-RSS-beyond-base/account")
	b.ReportMetric(base/1024, "MiB-base-RSS")
	b.ReportMetric(float64(baseFile)/1024, "MiB-base-file-RSS")
	b.ReportMetric(heap/n, "KiB-heap/account")
	b.ReportMetric(stack/n, "KiB-stack/account")
	b.ReportMetric(stack/n, "KiB-stack/account")
	b.ReportMetric(gor/n, "goroutines/account")
	b.ReportMetric(threads/n, "OS-threads")
	b.ReportMetric(took/n, "s-to-all-READY")
}

// BenchmarkRunnerRestartResumed stops a runner of 1,000 connected
// accounts (SIGTERM, which saves every session) and measures the time
// from starting it again to the last account's RESUMED line.
func BenchmarkRunnerRestartResumed(b *testing.B) {
	f := newIdleFleet(b, idleAccounts)
	p, _ := f.start(b, idleAccounts, wire.EventReady)
	stopProc(b, p)
	var worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, d := f.start(b, idleAccounts, wire.EventResumed)
		worst = max(worst, d)
		b.StopTimer()
		stopProc(b, p)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(worst.Seconds(), "s-worst")
}
