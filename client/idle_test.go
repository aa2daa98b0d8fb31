package client_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
)

// An idle connected client parks one goroutine, Run's own, which reads the
// connection: its timers are callbacks that run only when they fire, and
// the dispatcher runs only while events wait. (Not parallel: it counts
// every goroutine in the process.)
func TestIdleConnectionParksOneGoroutine(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	h := newHarness(t, srv, nil).start()
	h.session()
	h.eventually(func() bool { return h.c.Status().State == client.StateConnected }, "connected")
	var stacks []string
	if !assert.Eventually(t, func() bool {
		stacks = clientGoroutines()
		return len(stacks) == 1 && strings.Contains(stacks[0], "client.(*Client).Run")
	}, waitFor, time.Millisecond, "one goroutine, Run's") {
		t.Logf("goroutines of the client:\n%s", strings.Join(stacks, "\n\n"))
	}
}

// clientGoroutines gives the stacks of the goroutines running methods of
// package client (not its paused parallel tests).
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if strings.HasPrefix(line, "github.com/qqgate/qqgate/client.(") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
