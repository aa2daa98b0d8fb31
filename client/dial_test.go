package client_test

import (
	"net"
	"net/http"
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
