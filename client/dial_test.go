package client_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
)

// A gateway that accepts the TCP connection and never answers the upgrade
// cannot hang the client, even with a caller's HTTPClient that has no
// Timeout: the WebSocket dial has its own.
func TestSilentUpgradeTimesOutWithoutHTTPClientTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	tokens := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, tokens, func(c *client.Config) {
		c.GatewayURL = "ws://" + ln.Addr().String() + "/websocket"
		c.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // no Timeout
	})
	client.SetDialTimeout(h.c, 50*time.Millisecond)
	h.start()
	h.eventually(func() bool { return len(h.recordedWaits()) >= 2 }, "dial attempts that gave up and retried")
	assert.True(t, strings.Contains(h.c.Status().LastError, "dial gateway"), h.c.Status().LastError)
	assert.Zero(t, h.c.Status().Connects)
}

// TestSilentDiscoveryTimesOutWithoutHTTPClientTimeout: a caller's
// HTTPClient without a Timeout does not let a silent /gateway endpoint hang
// the client; discovery gives up and is retried with backoff.
func TestSilentDiscoveryTimesOutWithoutHTTPClientTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // answer nothing until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); silent.Close() })
	tokens := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, tokens, func(c *client.Config) {
		c.APIBase = silent.URL
		c.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // no Timeout
	})
	client.SetDialTimeout(h.c, 50*time.Millisecond)
	h.start()
	h.eventually(func() bool { return len(h.recordedWaits()) >= 2 }, "discovery attempts that gave up and retried")
	assert.Contains(t, h.c.Status().LastError, "gateway discovery")
	assert.Zero(t, h.c.Status().Connects)
}
