//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
)

// nobodyID is the uid and gid the test runs qqgate as: root reads any
// /proc entry, so the check needs an ordinary user.
const nobodyID = 65534

// TestRunExecHandlerCannotReadParentSecrets runs the real binary as an
// unprivileged user with an exec handler that tries to read the runner's
// environment through /proc/$PPID/environ, where secret_env variables
// live. The runner makes itself non-dumpable, so the kernel refuses.
func TestRunExecHandlerCannotReadParentSecrets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run qqgate as another user (uid 65534): as the test's own user, " +
			"only a second user can show that the runner's /proc entries are closed to its handlers")
	}
	const secret = "s3cr3t-in-the-runner-env"
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Apps: map[string]string{"4343": secret}})

	// Everything the other user needs: a directory it can reach holding
	// the binary, the handler and the config, a session directory it
	// owns, and an output directory it can write.
	base, err := os.MkdirTemp("", "qqgate-nodump-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	bin := filepath.Join(base, "qqgate")
	copyFile(t, qqgateBinary(t), bin, 0o755)
	out := filepath.Join(base, "out")
	require.NoError(t, os.Mkdir(out, 0o777))
	require.NoError(t, os.Chmod(out, 0o777))
	sessions := filepath.Join(base, "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o700))
	require.NoError(t, os.Chown(sessions, nobodyID, nobodyID))
	script := filepath.Join(base, "peek.sh")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
cat >/dev/null
{ tr '\0' '\n' < /proc/$PPID/environ; } > %[1]s/environ 2>&1
echo $? > %[1]s/rc.tmp && mv %[1]s/rc.tmp %[1]s/rc
`, out)), 0o755))
	require.NoError(t, os.Chmod(script, 0o755))
	cfg := filepath.Join(base, "qqgate.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`session_dir: %s
accounts:
  - id: peek-bot
    app_id: "4343"
    secret_env: PEEK_BOT_SECRET
    api_base: %s
    token_url: %s
    handler: {type: exec, command: [%s], retries: -1}
`, sessions, srv.URL(), srv.TokenURL(), script)), 0o644))
	require.NoError(t, os.Chmod(cfg, 0o644))

	cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "warn")
	cmd.Dir = base
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + out, "PEEK_BOT_SECRET=" + secret}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID}}
	p, err := testutil.Start(t, cmd, testutil.Text)
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("cannot switch to uid %d here: %v", nobodyID, err)
	}
	require.NoError(t, err)
	stderr := p.Stderr

	// The handler runs for READY.
	var rc []byte
	require.Eventually(t, func() bool {
		rc, err = os.ReadFile(filepath.Join(out, "rc"))
		return err == nil
	}, procWait, time.Millisecond, "the handler never ran; stderr:\n%s", stderr.String())
	got, err := os.ReadFile(filepath.Join(out, "environ"))
	require.NoError(t, err)
	assert.NotContains(t, string(got), secret, "the handler read the runner's secret from /proc/$PPID/environ")
	assert.NotContains(t, string(got), "PEEK_BOT_SECRET=")
	assert.NotEqual(t, "0", strings.TrimSpace(string(rc)), "reading /proc/$PPID/environ succeeded: %s", got)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "stderr:\n%s", stderr.String())
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, mode))
	require.NoError(t, os.Chmod(to, mode))
}
