package main

import (
	"syscall"
	"testing"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// BenchmarkStartupToResumed is the time from starting the qqgate process
// with a valid session record to its RESUMED line on loopback.
func BenchmarkStartupToResumed(b *testing.B) {
	srv := gatewaytest.NewTestServer(b, gatewaytest.Options{})
	dir := b.TempDir()
	p := startRun(b, srv, dir, gatewaytest.DefaultSecret, "--log-level", "error")
	p.until(wire.EventReady)
	stopProc(b, p)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := startRun(b, srv, dir, gatewaytest.DefaultSecret, "--log-level", "error")
		p.until(wire.EventResumed)
		b.StopTimer()
		stopProc(b, p)
		b.StartTimer()
	}
}

// BenchmarkStartupToReady is the same with no record: IDENTIFY, READY.
func BenchmarkStartupToReady(b *testing.B) {
	srv := gatewaytest.NewTestServer(b, gatewaytest.Options{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		b.StartTimer()
		p := startRun(b, srv, dir, gatewaytest.DefaultSecret, "--log-level", "error")
		p.until(wire.EventReady)
		b.StopTimer()
		stopProc(b, p)
		b.StartTimer()
	}
}

func stopProc(b *testing.B, p *proc) {
	b.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		b.Fatalf("exit: %v", err)
	}
}
