package main

import (
	"context"
	"encoding/json"
	"os/exec"
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

// procWait bounds every wait for a subprocess.
const procWait = testutil.Wait

// proc is a running qqgate subprocess whose stdout event lines are
// collected as they arrive.
type proc struct {
	*testutil.Proc[testutil.Line]
	t testing.TB
}

// startRun starts the binary against srv with the session dir and extra
// flags; the secret travels in the environment, as an operator would set it.
func startRun(t testing.TB, srv *gatewaytest.Server, dir, secret string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"run", "--api-base", srv.URL(), "--token-url", srv.TokenURL(),
		"--session-dir", dir, "--log-level", "debug"}, extra...)
	return spawn(t, args, []string{"QQBOT_APP_ID=" + gatewaytest.DefaultAppID, "QQBOT_CLIENT_SECRET=" + secret, "HOME=" + dir})
}

// spawn starts the built binary with args and env, collecting its stdout
// lines and stderr; the test's cleanup kills it if it still runs.
func spawn(t testing.TB, args, env []string) *proc {
	t.Helper()
	cmd := exec.Command(qqgateBinary(t), args...)
	cmd.Env = env
	return &proc{Proc: testutil.Spawn(t, cmd, testutil.ParseLine), t: t}
}

// until reads lines up to and including one of type typ.
func (p *proc) until(typ string) []testutil.Line {
	p.t.Helper()
	var got []testutil.Line
	for {
		l := p.Next()
		got = append(got, l)
		if l.Type == typ {
			return got
		}
	}
}

func TestRunPrintsEventsAsJSONLinesAndStopsGracefully(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	p := startRun(t, srv, dir, gatewaytest.DefaultSecret, "--account", "shop.bot")

	ready := p.Next()
	require.Equal(t, wire.EventReady, ready.Type)
	assert.Equal(t, "shop.bot", ready.Account)
	assert.EqualValues(t, 1, ready.Seq)
	sess := srv.Session(gatewaytest.DefaultAppID)
	require.NotNil(t, sess)
	var rd wire.Ready
	require.NoError(t, json.Unmarshal(ready.Data, &rd))
	assert.Equal(t, sess.ID(), rd.SessionID)

	for _, typ := range []string{wire.EventC2CMessageCreate, wire.EventGroupAtMessageCreate} {
		_, err := sess.EmitMessage(typ)
		require.NoError(t, err)
	}
	c2c := p.Next()
	assert.Equal(t, wire.EventC2CMessageCreate, c2c.Type)
	assert.EqualValues(t, 2, c2c.Seq)
	assert.True(t, strings.HasPrefix(c2c.ID, wire.EventC2CMessageCreate+":"), c2c.ID)
	var msg wire.Message
	require.NoError(t, json.Unmarshal(c2c.Data, &msg))
	assert.NotEmpty(t, msg.Author.UserOpenID)
	grp := p.Next()
	assert.EqualValues(t, 3, grp.Seq)

	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "SIGTERM exits 0; stderr:\n%s", p.Stderr.String())
	assert.NotContains(t, p.Stderr.String(), gatewaytest.DefaultSecret)
	assert.NotContains(t, p.Stderr.String(), srv.Token(gatewaytest.DefaultAppID))

	// The graceful close kept the session resumable on disk at the handled seq.
	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer st.Close()
	rec, err := st.Load(context.Background(), "shop.bot", gatewaytest.DefaultAppID)
	require.NoError(t, err)
	assert.Equal(t, sess.ID(), rec.SessionID)
	assert.EqualValues(t, 3, rec.LastSeq)
}

func TestRunFatalCloseExitsWithOneClearLine(t *testing.T) {
	for _, code := range []int{4914, 4915} {
		t.Run(wire.CloseCode(code).String(), func(t *testing.T) {
			srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
			srv.CloseNextAfterHello(wire.CloseCode(code), "go away")
			p := startRun(t, srv, t.TempDir(), gatewaytest.DefaultSecret, "--log-level", "error")
			err := p.Wait()
			assert.Equal(t, 1, testutil.ExitCode(err), "stderr:\n%s", p.Stderr.String())
			assert.Equal(t, 1, srv.Connections(), "no second connection")
			lines := strings.Split(strings.TrimSpace(p.Stderr.String()), "\n")
			last := lines[len(lines)-1]
			assert.True(t, strings.HasPrefix(last, "qqgate: "), last)
			assert.Contains(t, last, wire.CloseCode(code).String())
		})
	}
}

func TestRunWrongSecretExitsWithoutRetry(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	const secret = "definitely-wrong-secret"
	p := startRun(t, srv, t.TempDir(), secret)
	err := p.Wait()
	assert.Equal(t, 1, testutil.ExitCode(err))
	out := p.Stderr.String()
	assert.Contains(t, out, "invalid appid or secret")
	assert.NotContains(t, out, secret)
	assert.Equal(t, 1, srv.TokenFetches())
	assert.Equal(t, 0, srv.Connections())
}

func TestRunRejectsPlainHTTPOffLoopback(t *testing.T) {
	e, _, errb := sessionEnv(time.Now(), map[string]string{"QQBOT_APP_ID": "1", "QQBOT_CLIENT_SECRET": "s"})
	code := cmdRun(context.Background(), []string{"--api-base", "http://example.com", "--session-dir", t.TempDir()}, e)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "loopback")
}

func TestRunSecondProcessForSameAccountFailsFast(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	first := startRun(t, srv, dir, gatewaytest.DefaultSecret)
	first.until(wire.EventReady)
	second := startRun(t, srv, dir, gatewaytest.DefaultSecret)
	assert.Equal(t, 1, testutil.ExitCode(second.Wait()))
	assert.Contains(t, second.Stderr.String(), "in use by process")
	assert.Equal(t, 1, srv.Connections(), "the second process never connected")
}

func TestRunAuthFailedThreeTimesStops(t *testing.T) {
	// A generous identify budget, so that only the backoff (about 1 s, then
	// 2 s, jittered) separates the attempts.
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{SessionStartLimit: wire.SessionStartLimit{
		Total: 1000, Remaining: 1000, ResetAfter: 86_400_000, MaxConcurrency: 100}})
	for i := 0; i < 3; i++ {
		srv.CloseNextAfterHello(wire.CloseAuthenticationFailed, "authentication failed")
	}
	p := startRun(t, srv, t.TempDir(), gatewaytest.DefaultSecret, "--log-level", "error")
	err := p.Wait()
	assert.Equal(t, 1, testutil.ExitCode(err), "stderr:\n%s", p.Stderr.String())
	assert.Equal(t, 3, srv.Connections(), "no fourth connection")
	assert.Equal(t, 3, srv.TokenFetches(), "the token is refetched after every 4004")
	assert.Contains(t, p.Stderr.String(), "4004")
}

func TestRunWarnsWhenAnotherProcessRewritesTheRecord(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	p := startRun(t, srv, dir, gatewaytest.DefaultSecret, "--log-level", "warn")
	p.until(wire.EventReady)
	other, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer other.Close()
	require.Eventually(t, func() bool {
		_, err := other.Peek(context.Background(), gatewaytest.DefaultAppID)
		return err == nil
	}, procWait, time.Millisecond)
	// Rewrite until it is noticed: the runner's watch may start after a
	// first write, which then is its baseline, not a change.
	seq := uint64(9)
	require.Eventually(t, func() bool {
		seq++
		require.NoError(t, other.SaveNow(context.Background(), sessionstore.Record{
			AccountID: gatewaytest.DefaultAppID, SessionID: "someone-else", LastSeq: seq, HasSeq: true}))
		return strings.Contains(p.Stderr.String(), "another process rewrote")
	}, procWait, 300*time.Millisecond) // slower than the watch debounce, which each write restarts
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait())
}
