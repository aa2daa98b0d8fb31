package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// procStatus reads a number field of a process's /proc status (in kB for
// the memory ones): "VmRSS:", "RssFile:", "Threads:".
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// procRSS reads a process's resident set size in bytes.
func procRSS(pid int) (int64, error) {
	kb, err := procStatus(pid, "VmRSS:")
	return kb << 10, err
}

// procCPU reads a process's user+system CPU time.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// startAccounts runs the real binary with n accounts on srv and waits
// until every one is READY.
func startAccounts(b *testing.B, srv *gatewaytest.Server, n int) *proc {
	b.Helper()
	dir := b.TempDir()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(2000 + i)
	}
	cfg := filepath.Join(dir, "qqgate.yaml")
	writeFile(b, cfg, accountsYAML(srv, filepath.Join(dir, "sessions"), freeAddr(b), ids...))
	p := startConfig(b, cfg, "--log-level", "error")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Wait(ctx, func() bool { return len(srv.Sessions()) >= n }); err != nil {
		b.Fatalf("%d accounts did not all connect: %v\n%s", n, err, p.Stderr.String())
	}
	for i := 0; i < n; i++ {
		p.until(wire.EventReady)
	}
	return p
}

// BenchmarkRunner200Accounts runs the real `qqgate run --config` with 200
// accounts on one fake gateway. It reports the resident memory per idle
// account (against a one-account runner) and the runner's CPU time per
// 1,000 events spread over the accounts, read from /proc.
func BenchmarkRunner200Accounts(b *testing.B) {
	const accounts = 200
	apps := map[string]string{}
	for i := 0; i < accounts; i++ {
		id := strconv.Itoa(2000 + i)
		apps[id] = "s-" + id
	}
	srv := gatewaytest.NewTestServer(b, gatewaytest.Options{Apps: apps,
		SessionStartLimit: wire.SessionStartLimit{Total: 100000, Remaining: 100000, ResetAfter: 86_400_000, MaxConcurrency: 1000}})

	one := startAccounts(b, gatewaytest.NewTestServer(b, gatewaytest.Options{Apps: map[string]string{"2000": "s-2000"}}), 1)
	p := startAccounts(b, srv, accounts)
	rss1, err := procRSS(one.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	rssN, err := procRSS(p.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	sessions := srv.Sessions()

	b.ResetTimer()
	cpu0, err := procCPU(p.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		for j := 0; j < 1000; j++ {
			if _, err := sessions[j%len(sessions)].EmitMessage(wire.EventGroupAtMessageCreate); err != nil {
				b.Fatal(err)
			}
		}
		for j := 0; j < 1000; j++ {
			p.Next()
		}
	}
	cpu1, err := procCPU(p.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(rssN-rss1)/(accounts-1)/1024, "KiB-RSS/idle-account")
	b.ReportMetric(float64(rssN)/(1<<20), "MiB-RSS-total")
	b.ReportMetric(float64(cpu1-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/1000-events")
	for _, q := range []*proc{p, one} {
		_ = q.Cmd.Process.Signal(syscall.SIGTERM)
		_ = q.Wait()
	}
}
