package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/wire"
)

func TestNewLoggerFormats(t *testing.T) {
	for _, tc := range []struct {
		format string
		json   bool
	}{{"", true}, {"auto", true}, {"AUTO", true}, {"json", true}, {"console", false}, {"Console", false}} {
		t.Run(tc.format, func(t *testing.T) {
			var b bytes.Buffer // not a terminal
			log, err := newLogger(&b, "info", tc.format)
			require.NoError(t, err)
			log.Info().Str("account", "shop").Msg("connected")
			line := strings.TrimSpace(b.String())
			if tc.json {
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &m), line)
				assert.Equal(t, "connected", m["message"])
				assert.Equal(t, "shop", m["account"])
			} else {
				assert.False(t, json.Valid([]byte(line)), line)
				assert.Contains(t, line, "INF connected")
				assert.Contains(t, line, "account=shop")
				assert.NotContains(t, line, "\x1b[", "no colours off a terminal")
			}
		})
	}
	_, err := newLogger(&bytes.Buffer{}, "info", "xml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown log format "xml" (use auto, console or json)`)
}

func TestIsTerminal(t *testing.T) {
	assert.False(t, isTerminal(&bytes.Buffer{}))
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	assert.False(t, isTerminal(null), "a character device that is not a terminal")
}

// assertJSONLogs checks that every stderr line is one JSON log entry.
func assertJSONLogs(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "a log line that is not JSON: %q", l)
		assert.Contains(t, m, "level", l)
		assert.Contains(t, m, "time", l)
	}
}

// assertConsoleLogs checks that the log is the console writer's, with the
// entries of a connection in it.
func assertConsoleLogs(t *testing.T, stderr string) {
	t.Helper()
	assert.NotContains(t, stderr, `{"level"`)
	assert.Contains(t, stderr, "IDENTIFY sent")
	assert.Regexp(t, `(?m)^\S+ (\x1b\[\d+m)?INF(\x1b\[0m)? `, stderr)
}

// stopRun sends SIGTERM and waits for a clean exit.
func stopRun(t *testing.T, p *proc) {
	t.Helper()
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "stderr:\n%s", p.Stderr.String())
}

func TestRunLogsJSONWhenPiped(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	p := startRun(t, srv, t.TempDir(), gatewaytest.DefaultSecret, "--log-level", "info")
	p.until(wire.EventReady)
	stopRun(t, p)
	assertJSONLogs(t, p.Stderr.String())
}

func TestRunLogFormatFlagAndEnv(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	// start runs one account with a session directory of its own, so each
	// run IDENTIFYs.
	start := func(t *testing.T, format string, env ...string) *proc {
		dir := t.TempDir()
		args := []string{"run", "--api-base", srv.URL(), "--token-url", srv.TokenURL(), "--session-dir", dir, "--log-level", "info"}
		if format != "" {
			args = append(args, "--log-format", format)
		}
		return spawn(t, args, append(env, "QQBOT_APP_ID="+gatewaytest.DefaultAppID, "QQBOT_CLIENT_SECRET="+gatewaytest.DefaultSecret, "HOME="+dir))
	}
	t.Run("flag", func(t *testing.T) {
		p := start(t, "console")
		p.until(wire.EventReady)
		stopRun(t, p)
		assertConsoleLogs(t, p.Stderr.String())
	})
	t.Run("env", func(t *testing.T) {
		p := start(t, "", "QQGATE_LOG_FORMAT=console")
		p.until(wire.EventReady)
		stopRun(t, p)
		assertConsoleLogs(t, p.Stderr.String())
	})
	t.Run("flag over env", func(t *testing.T) {
		p := start(t, "json", "QQGATE_LOG_FORMAT=console")
		p.until(wire.EventReady)
		stopRun(t, p)
		assertJSONLogs(t, p.Stderr.String())
	})
	t.Run("unknown", func(t *testing.T) {
		fetches := srv.TokenFetches()
		p := start(t, "xml")
		assert.Equal(t, 1, testutil.ExitCode(p.Wait()))
		assert.Equal(t, "qqgate: run: unknown log format \"xml\" (use auto, console or json)\n", p.Stderr.String())
		assert.Equal(t, fetches, srv.TokenFetches(), "nothing started")
	})
}
