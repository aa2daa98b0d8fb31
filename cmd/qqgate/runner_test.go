package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
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

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startConfig runs `qqgate run --config` as a subprocess.
func startConfig(t testing.TB, path string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"run", "--config", path, "--log-level", "info"}, extra...)
	return spawn(t, args, []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")})
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func accountsYAML(srv *gatewaytest.Server, dir, listen string, ids ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "session_dir: %s\nlisten: %s\ndefaults:\n  api_base: %s\n  token_url: %s\naccounts:\n", dir, listen, srv.URL(), srv.TokenURL())
	for _, id := range ids {
		fmt.Fprintf(&b, "  - id: bot-%s\n    app_id: %q\n    secret: s-%s\n", id, id, id)
	}
	return b.String()
}

func TestRunConfigThreeAccountsHotReload(t *testing.T) {
	apps := map[string]string{}
	for _, id := range []string{"1001", "1002", "1003", "1004"} {
		apps[id] = "s-" + id
	}
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Apps: apps,
		SessionStartLimit: wire.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: 86_400_000, MaxConcurrency: 100}})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "qqgate.yaml")
	listen := freeAddr(t)
	writeFile(t, cfg, accountsYAML(srv, filepath.Join(dir, "sessions"), listen, "1001", "1002", "1003"))
	p := startConfig(t, cfg)

	ready := map[string]bool{}
	for len(ready) < 3 {
		if l := p.Next(); l.Type == wire.EventReady {
			ready[l.Account] = true
		}
	}
	assert.Equal(t, map[string]bool{"bot-1001": true, "bot-1002": true, "bot-1003": true}, ready)
	conns := map[string]int{}
	for _, app := range []string{"1001", "1002", "1003"} {
		sess := srv.Session(app)
		require.NotNil(t, sess)
		conns[app] = sess.Conn()
		_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
		require.NoError(t, err)
	}
	seen := map[string]uint64{}
	for len(seen) < 3 {
		if l := p.Next(); l.Type == wire.EventC2CMessageCreate {
			seen[l.Account] = l.Seq
		}
	}
	code, body := testutil.Get(t, "http://"+listen+"/healthz")
	assert.Equal(t, http.StatusOK, code, body)
	_, metrics := testutil.Get(t, "http://"+listen+"/metrics")
	assert.Contains(t, metrics, `qqgate_events_received_total{account="bot-1001",type="C2C_MESSAGE_CREATE"} 1`)

	// Add a fourth: it connects; the three keep their connections.
	writeFile(t, cfg, accountsYAML(srv, filepath.Join(dir, "sessions"), listen, "1001", "1002", "1003", "1004"))
	for {
		if l := p.Next(); l.Type == wire.EventReady && l.Account == "bot-1004" {
			break
		}
	}
	for app, conn := range conns {
		assert.Equal(t, conn, srv.Session(app).Conn(), "app %s kept its connection", app)
	}
	assert.Len(t, srv.Identifies(), 4)
	assert.Empty(t, srv.Resumes())

	// Remove one: only that one closes.
	writeFile(t, cfg, accountsYAML(srv, filepath.Join(dir, "sessions"), listen, "1001", "1003", "1004"))
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	require.NoError(t, srv.Wait(ctx, func() bool { return srv.Session("1002").Conn() == 0 }))
	assert.Equal(t, conns["1001"], srv.Session("1001").Conn())
	assert.Equal(t, conns["1003"], srv.Session("1003").Conn())

	// A malformed edit changes nothing and is reported.
	before := srv.Connections()
	writeFile(t, cfg, "accounts:\n  - id: [broken\n")
	require.Eventually(t, func() bool { return strings.Contains(p.Stderr.String(), "config reload failed") }, procWait, time.Millisecond)
	assert.Contains(t, p.Stderr.String(), "qqgate.yaml")
	assert.Equal(t, before, srv.Connections())
	assert.Equal(t, conns["1001"], srv.Session("1001").Conn())
	_, err := srv.Session("1001").EmitMessage(wire.EventFriendAdd)
	require.NoError(t, err)
	for {
		if l := p.Next(); l.Type == wire.EventFriendAdd {
			assert.Equal(t, "bot-1001", l.Account)
			assert.Equal(t, seen["bot-1001"]+1, l.Seq, "seqs go on where they were")
			break
		}
	}

	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "stderr:\n%s", p.Stderr.String())
}

func TestRunExecHandlerKilledRunnerRedeliversUnsucceeded(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	script := filepath.Join(dir, "handle.sh")
	// Seq 3 fails until the file "ok" exists; everything handled is logged.
	writeFile(t, script, fmt.Sprintf(`#!/bin/sh
cat >/dev/null
if [ "$QQGATE_SEQ" = 3 ] && [ ! -f %[1]s/ok ]; then echo "fail $QQGATE_SEQ" >> %[1]s/attempts; exit 1; fi
echo "$QQGATE_SEQ $QQGATE_TYPE $QQGATE_ACCOUNT" >> %[1]s/handled
`, dir))
	require.NoError(t, os.Chmod(script, 0o700))
	cfg := filepath.Join(dir, "qqgate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`session_dir: %s
accounts:
  - id: exec-bot
    app_id: %q
    secret: %s
    api_base: %s
    token_url: %s
    handler: {type: exec, command: [%s], timeout: 10s, retries: 100}
`, filepath.Join(dir, "sessions"), gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL(), srv.TokenURL(), script))
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}

	p := startConfig(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	sess, err := srv.WaitSession(ctx)
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return strings.Contains(read("attempts"), "fail 3") }, procWait, time.Millisecond)
	assert.Equal(t, "1 READY exec-bot\n2 GROUP_AT_MESSAGE_CREATE exec-bot\n", read("handled"), "seq 4 waits behind the failing seq 3")
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
	_ = p.Wait()

	writeFile(t, filepath.Join(dir, "ok"), "")
	startConfig(t, cfg)
	require.Eventually(t, func() bool { return strings.Contains(read("handled"), "4 GROUP_AT_MESSAGE_CREATE") }, procWait, time.Millisecond)
	handled := strings.Split(strings.TrimSpace(read("handled")), "\n")
	assert.Contains(t, handled, "3 GROUP_AT_MESSAGE_CREATE exec-bot", "the unsucceeded event was redelivered")
	assert.Equal(t, "4 GROUP_AT_MESSAGE_CREATE exec-bot", handled[len(handled)-1])
	require.Len(t, srv.Resumes(), 1)
	assert.LessOrEqual(t, srv.Resumes()[0].Seq, uint64(2), "the record never committed past the failing event")
	assert.Equal(t, sess.ID(), srv.Resumes()[0].SessionID)
}

func TestRunSecondSignalForcesExit(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	script := filepath.Join(dir, "hang.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\ncat >/dev/null\necho $$ > %s/entered.tmp && mv %[1]s/entered.tmp %[1]s/entered\nexec sleep 600\n", dir))
	require.NoError(t, os.Chmod(script, 0o700))
	cfg := filepath.Join(dir, "qqgate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`session_dir: %s
accounts:
  - id: stuck-bot
    app_id: %q
    secret: %s
    api_base: %s
    token_url: %s
    handler: {type: exec, command: [%s], timeout: 10m}
`, filepath.Join(dir, "sessions"), gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL(), srv.TokenURL(), script))
	p := startConfig(t, cfg, "--shutdown-timeout", "10m")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "entered"))
		return err == nil
	}, procWait, time.Millisecond, "the handler is busy with READY")
	t.Cleanup(func() { // the forced exit leaves the handler's command behind
		if b, err := os.ReadFile(filepath.Join(dir, "entered")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	// Signals of one kind coalesce while pending: wait until the first
	// one started the graceful shutdown, which waits on the busy handler.
	require.Eventually(t, func() bool { return strings.Contains(p.Stderr.String(), `"state":"closing"`) },
		procWait, time.Millisecond)
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	err := p.Wait()
	assert.Equal(t, 1, testutil.ExitCode(err))
	assert.Contains(t, p.Stderr.String(), "second signal")
}

func TestRunExecHandlersDoNotSeeSecrets(t *testing.T) {
	const secret = "s3cr3t-of-env-bot"
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Apps: map[string]string{"4242": secret}})
	dir := t.TempDir()
	script := filepath.Join(dir, "env.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\ncat >/dev/null\nenv > %s/env.tmp && mv %[1]s/env.tmp %[1]s/env\n", dir))
	require.NoError(t, os.Chmod(script, 0o700))
	cfg := filepath.Join(dir, "qqgate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`session_dir: %s
accounts:
  - id: env-bot
    app_id: %q
    secret_env: ENV_BOT_SECRET
    api_base: %s
    token_url: %s
    handler: {type: exec, command: [%s]}
`, filepath.Join(dir, "sessions"), "4242", srv.URL(), srv.TokenURL(), script))
	p := spawn(t, []string{"run", "--config", cfg}, []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"ENV_BOT_SECRET=" + secret, "QQBOT_CLIENT_SECRET=another-secret", "KEEP_ME=visible"})
	var env string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "env"))
		env = string(b)
		return err == nil
	}, procWait, time.Millisecond, "the handler ran for READY")
	assert.Contains(t, env, "KEEP_ME=visible")
	assert.Contains(t, env, "QQGATE_ACCOUNT=env-bot")
	assert.NotContains(t, env, secret)
	assert.NotContains(t, env, "another-secret")
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait())
}
