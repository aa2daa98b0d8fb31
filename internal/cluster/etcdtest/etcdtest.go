//go:build cluster

// Package etcdtest runs a real etcd server (the etcd code itself,
// embedded) on loopback for tests: random ports, a temporary data
// directory, and a restart on the same directory and ports to simulate
// an outage.
package etcdtest

import (
	"net"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Server is an embedded etcd.
type Server struct {
	tb      testing.TB
	dir     string
	client  url.URL
	peer    url.URL
	e       *embed.Etcd
	stopped bool
}

// Start starts a one-node etcd; the test's cleanup stops it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, dir: tb.TempDir(), client: freeURL(tb), peer: freeURL(tb)}
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

func freeURL(tb testing.TB) url.URL {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return url.URL{Scheme: "http", Host: addr}
}

func (s *Server) start() {
	s.tb.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = s.dir
	cfg.ListenClientUrls = []url.URL{s.client}
	cfg.AdvertiseClientUrls = []url.URL{s.client}
	cfg.ListenPeerUrls = []url.URL{s.peer}
	cfg.AdvertisePeerUrls = []url.URL{s.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "fatal"
	cfg.LogOutputs = []string{"stderr"}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		s.tb.Fatalf("start etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		e.Close()
		s.tb.Fatal("etcd did not become ready")
	}
	s.e, s.stopped = e, false
}

// Endpoint is the client URL.
func (s *Server) Endpoint() string { return s.client.String() }

// Stop stops the server (idempotent).
func (s *Server) Stop() {
	if s.stopped || s.e == nil {
		return
	}
	s.stopped = true
	s.e.Close()
	<-s.e.Server.StopNotify()
}

// Restart starts the server again on the same data and ports.
func (s *Server) Restart() {
	s.tb.Helper()
	s.start()
}
