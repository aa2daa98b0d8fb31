//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/wire"
)

// webhookAddr waits for the runner's "webhook listener started" and
// "webhook account started" log lines and returns the listener's address.
func webhookAddr(t testing.TB, p *proc) string {
	t.Helper()
	var addr string
	require.Eventually(t, func() bool {
		started := false
		for _, line := range strings.Split(p.Stderr.String(), "\n") {
			var l struct {
				Message string `json:"message"`
				Listen  string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			switch l.Message {
			case "webhook listener started":
				addr = l.Listen
			case "webhook account started":
				started = true
			}
		}
		return addr != "" && started
	}, procWait, time.Millisecond, "no webhook listener; stderr:\n%s", p.Stderr)
	return addr
}

// handledLines reads the ids the handler script finished, one a line.
func handledLines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

// A runner SIGKILLed after it acknowledged pushes, with one push in its
// handler and two not yet handed to it, handles all three after the
// restart, in order, each once; the platform's retry of one of them after
// the restart is acknowledged and not handled again.
func TestWebhookSIGKILLAfterACK(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	work := t.TempDir()
	handled := filepath.Join(work, "handled")
	blocked := filepath.Join(work, "blocked")
	script := filepath.Join(work, "handler.sh")
	// The first call blocks (the runner dies with it in hand); later calls
	// record the envelope id.
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
cat >/dev/null
if [ ! -e %[1]q ]; then echo $$ > %[1]q; exec sleep 600; fi
echo "$QQGATE_ID" >> %[2]q
`, blocked, handled)), 0o755))
	t.Cleanup(func() { // the orphaned sleep of the killed runner
		if b, err := os.ReadFile(blocked); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	cfg := filepath.Join(work, "qqgate.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`session_dir: %s
webhook: {listen: "127.0.0.1:0"}
accounts:
  - id: hook
    app_id: %q
    secret: %s
    api_base: %s
    token_url: %s
    transport: webhook
    handler: {type: exec, command: [%q]}
`, dir, gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL(), srv.TokenURL(), script)), 0o600))
	start := func() (*proc, *gatewaytest.WebhookPlatform) {
		p := spawn(t, []string{"run", "--config", cfg, "--log-level", "info", "--log-format", "json"}, []string{"HOME=" + dir})
		plat, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: "http://" + webhookAddr(t, p) + "/", AppID: gatewaytest.DefaultAppID, Secret: gatewaytest.DefaultSecret})
		require.NoError(t, err)
		t.Cleanup(plat.Close)
		return p, plat
	}
	ctx := context.Background()
	p, plat := start()
	require.NoError(t, plat.Validate(ctx, true))
	var ids []string
	for i := range 3 {
		res, err := plat.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{})
		require.NoError(t, err)
		require.True(t, res.Acked, "push %d: %+v", i, res.Attempts)
		ids = append(ids, res.ID)
		if i == 0 {
			require.Eventually(t, func() bool { _, err := os.Stat(blocked); return err == nil }, procWait, time.Millisecond, "the handler took the first push")
		}
	}
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
	_ = p.Wait()
	assert.Empty(t, handledLines(handled), "nothing finished before the kill")

	p2, plat2 := start()
	require.Eventually(t, func() bool { return len(handledLines(handled)) >= 3 }, procWait, time.Millisecond, "stderr:\n%s", p2.Stderr)
	assert.Equal(t, ids, handledLines(handled)[:3], "in order, each once")
	// The platform retries the second push (its 200 was late, say).
	again := plat2.Push(ctx, wire.EventC2CMessageCreate, json.RawMessage(`{"content":"retry"}`), gatewaytest.PushFault{ID: ids[1]})
	require.True(t, again.Acked)
	last, err := plat2.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(handledLines(handled)) >= 4 }, procWait, time.Millisecond)
	assert.Equal(t, append(ids, last.ID), handledLines(handled), "the retry was not handled again")
	require.NoError(t, p2.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p2.Wait())
}

// Plain HTTP on an address other than loopback: exit 1 at once, one line
// naming TLS and --webhook-insecure-http.
func TestWebhookPlainHTTPRefusedOffLoopback(t *testing.T) {
	dir := t.TempDir()
	p := spawn(t, []string{"run", "--transport", "webhook", "--webhook-listen", "0.0.0.0:0", "--session-dir", dir},
		[]string{"QQBOT_APP_ID=1", "QQBOT_CLIENT_SECRET=s", "HOME=" + dir})
	err := p.Wait()
	assert.Equal(t, 1, testutil.ExitCode(err))
	lines := strings.Split(strings.TrimSpace(p.Stderr.String()), "\n")
	require.Len(t, lines, 1, p.Stderr.String())
	assert.Contains(t, lines[0], "TLS")
	assert.Contains(t, lines[0], "--webhook-insecure-http")
	// The same through the environment.
	p = spawn(t, []string{"run", "--session-dir", dir},
		[]string{"QQBOT_APP_ID=1", "QQBOT_CLIENT_SECRET=s", "HOME=" + dir, "QQGATE_TRANSPORT=webhook", "QQGATE_WEBHOOK_LISTEN=:0"})
	assert.Equal(t, 1, testutil.ExitCode(p.Wait()))
	assert.Contains(t, p.Stderr.String(), "--webhook-insecure-http")
}
