package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// oneAccountYAML is a config of one stdout account against srv, with the
// given top-level session_dir line ("" for none).
func oneAccountYAML(srv *gatewaytest.Server, sessionDirLine string) string {
	return fmt.Sprintf(`%s
accounts:
  - id: cfg-bot
    app_id: %q
    secret: %s
    api_base: %s
    token_url: %s
`, sessionDirLine, gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL(), srv.TokenURL())
}

func TestRunConfigDefaultsToSessionDirEnv(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	root := t.TempDir()
	home, envDir := filepath.Join(root, "home"), filepath.Join(root, "envdir")
	require.NoError(t, os.Mkdir(home, 0o700))
	cfg := filepath.Join(root, "qqgate.yaml")
	writeFile(t, cfg, oneAccountYAML(srv, ""))
	p := spawn(t, []string{"run", "--config", cfg, "--log-level", "warn"},
		[]string{"HOME=" + home, "QQBOT_SESSION_DIR=" + envDir, "PATH=" + os.Getenv("PATH")})
	p.until(wire.EventReady)
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "stderr:\n%s", p.Stderr.String())

	assert.FileExists(t, filepath.Join(envDir, sessionstore.FileName("cfg-bot")),
		"the record is where QQBOT_SESSION_DIR says, as `qqgate session list` looks")
	assert.NoDirExists(t, filepath.Join(home, ".openclaw"))
}

// assertDirRefused checks that p exited with status 78 and one stderr line
// naming dir and how to fix it, without connecting.
func assertDirRefused(t *testing.T, p *proc, srv *gatewaytest.Server, dir string, fix ...string) {
	t.Helper()
	err := p.Wait()
	out := p.Stderr.String()
	assert.Equal(t, exitConfig, testutil.ExitCode(err), "stderr:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, "one clear line, not a log: %q", out)
	assert.True(t, strings.HasPrefix(lines[0], "qqgate: "), lines[0])
	assert.Contains(t, lines[0], dir)
	for _, f := range fix {
		assert.Contains(t, lines[0], f)
	}
	assert.Equal(t, 0, srv.TokenFetches(), "nothing started")
	assert.Equal(t, 0, srv.Connections())
}

func TestRunUnusableSessionDirExitsEXConfig(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	root := t.TempDir()
	file := filepath.Join(root, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	bad := filepath.Join(file, "sessions") // cannot be made: its parent is a file

	t.Run("flag", func(t *testing.T) {
		p := startRun(t, srv, bad, gatewaytest.DefaultSecret, "--log-level", "info")
		assertDirRefused(t, p, srv, bad, "--session-dir", "QQBOT_SESSION_DIR")
	})
	t.Run("env", func(t *testing.T) {
		p := spawn(t, []string{"run", "--api-base", srv.URL(), "--token-url", srv.TokenURL()},
			[]string{"QQBOT_APP_ID=" + gatewaytest.DefaultAppID, "QQBOT_CLIENT_SECRET=" + gatewaytest.DefaultSecret,
				"QQBOT_SESSION_DIR=" + bad, "HOME=" + root})
		assertDirRefused(t, p, srv, bad, "QQBOT_SESSION_DIR")
	})
	t.Run("config", func(t *testing.T) {
		cfg := filepath.Join(root, "qqgate.yaml")
		writeFile(t, cfg, oneAccountYAML(srv, "session_dir: "+bad))
		p := startConfig(t, cfg)
		assertDirRefused(t, p, srv, bad, "session_dir", cfg)
	})
	t.Run("config, env default", func(t *testing.T) {
		cfg := filepath.Join(root, "default.yaml")
		writeFile(t, cfg, oneAccountYAML(srv, ""))
		p := spawn(t, []string{"run", "--config", cfg},
			[]string{"HOME=" + root, "QQBOT_SESSION_DIR=" + bad, "PATH=" + os.Getenv("PATH")})
		assertDirRefused(t, p, srv, bad, "QQBOT_SESSION_DIR")
	})
}

func TestRunRefusesSessionDirOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving the directory to another user needs root")
	}
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chown(dir, 65534, 65534))
	victim := filepath.Join(t.TempDir(), "victim.txt")
	require.NoError(t, os.WriteFile(victim, []byte("keep me\n"), 0o600))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "session-"+gatewaytest.DefaultAppID+".lock")))

	p := startRun(t, srv, dir, gatewaytest.DefaultSecret)
	assertDirRefused(t, p, srv, dir, "owned by uid 65534")
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep me\n", string(b))
}

func TestRunRefusesPlantedLockLink(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim.txt")
	require.NoError(t, os.WriteFile(victim, []byte("IMPORTANT USER DATA\n"), 0o600))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "session-"+gatewaytest.DefaultAppID+".lock")))

	p := startRun(t, srv, dir, gatewaytest.DefaultSecret, "--log-level", "error")
	assert.Equal(t, 1, testutil.ExitCode(p.Wait()))
	assert.Contains(t, p.Stderr.String(), "symbolic link")
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "IMPORTANT USER DATA\n", string(b), "the link's target was clobbered")
}

func TestSessionListDoesNotHangOnFIFO(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, sessionstore.FileName("acct")), 0o600))
	p := spawn(t, []string{"session", "list", "--json", "--session-dir", dir}, []string{"HOME=" + dir})
	require.NoError(t, p.Wait(), "stderr:\n%s", p.Stderr.String())
}

func TestRunSecretFileMustBeRegular(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	fifo := filepath.Join(dir, "secret")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	p := spawn(t, []string{"run", "--api-base", srv.URL(), "--token-url", srv.TokenURL(), "--session-dir", dir,
		"--app-id", gatewaytest.DefaultAppID, "--secret-file", fifo}, []string{"HOME=" + dir})
	assert.Equal(t, 1, testutil.ExitCode(p.Wait()))
	assert.Contains(t, p.Stderr.String(), "named pipe")
	assert.Equal(t, 0, srv.TokenFetches())
}

func TestSessionShowRecordFromTheFuture(t *testing.T) {
	dir := t.TempDir()
	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir, Clock: fixedClock(cliNow.Add(time.Hour))})
	require.NoError(t, err)
	require.NoError(t, st.SaveNow(context.Background(), sessionstore.Record{AccountID: "ahead", SessionID: "s", HasSeq: true}))
	require.NoError(t, st.Close())
	e, _, errb := sessionEnv(cliNow, nil)
	require.Equal(t, 0, cmdSession(context.Background(), []string{"show", "ahead", "--session-dir", dir}, e))
	assert.Contains(t, errb.String(), "saved 1h0m0s in the future")
	assert.NotContains(t, errb.String(), "-")
}

func TestRunDoesNotHangOnPlantedFIFO(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, sessionstore.FileName(gatewaytest.DefaultAppID)), 0o600))
	p := startRun(t, srv, dir, gatewaytest.DefaultSecret, "--log-level", "warn")
	p.until(wire.EventReady) // the record is refused, not read: IDENTIFY
	assert.Contains(t, p.Stderr.String(), "named pipe")
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "stderr:\n%s", p.Stderr.String())
}

func TestSessionListChangesNothingThroughALink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "index.html")
	require.NoError(t, os.WriteFile(target, []byte(`{"accountId":"acct2","savedAt":0}`), 0o644))
	require.NoError(t, os.Chmod(target, 0o644))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, sessionstore.FileName("acct2"))))
	p := spawn(t, []string{"session", "list", "--json", "--session-dir", dir}, []string{"HOME=" + dir})
	lines := p.Rest()
	require.NoError(t, p.Wait(), "stderr:\n%s", p.Stderr.String())
	require.Len(t, lines, 1, "the link is listed, as an error")
	fi, err := os.Stat(target)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "a read-only command changed the link target's mode")
}
