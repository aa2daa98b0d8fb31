//go:build unix

package main

import (
	"context"
	"encoding/json"
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
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// recordSeq reads the committed seq of account's session record, 0 when
// there is none yet.
func recordSeq(dir, account string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, sessionstore.FileName(account)))
	if err != nil {
		return 0
	}
	var rec struct {
		LastSeq *uint64 `json:"lastSeq"`
	}
	if json.Unmarshal(b, &rec) != nil || rec.LastSeq == nil {
		return 0
	}
	return *rec.LastSeq
}

// TestReplySurvivesSIGKILLBeforeCommit kills the runner after its reply
// reached the user but before the event was committed (the platform's
// answer is lost on the way back, so the handler is still in hand), then
// restarts it: the handler runs again, re-sends with the same msg_seq,
// the platform answers 40054005, qqgate counts that as delivered and
// commits, and the user saw the reply once.
func TestReplySurvivesSIGKILLBeforeCommit(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	sessions := filepath.Join(dir, "sessions")
	runs := filepath.Join(dir, "runs")
	script := filepath.Join(dir, "echo.sh")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
line=$(cat)
echo "$QQGATE_TYPE $QQGATE_SEQ" >> `+runs+`
case "$QQGATE_TYPE" in C2C_MESSAGE_CREATE) ;; *) exit 0 ;; esac
echo "echo: $(printf '%s' "$line" | sed -n 's/.*"content":"\([^"]*\)".*/\1/p')"
`), 0o755))
	cfg := filepath.Join(dir, "qqgate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`session_dir: %s
accounts:
  - id: echo-bot
    app_id: %q
    secret: %s
    api_base: %s
    token_url: %s
    handler: {type: exec, command: [%q], reply: text}
`, sessions, gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL(), srv.TokenURL(), script))

	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	p := startConfig(t, cfg)
	sess, err := srv.WaitSession(ctx)
	require.NoError(t, err)
	// READY handled and committed on disk: a restart resumes from it.
	require.Eventually(t, func() bool { return recordSeq(sessions, "echo-bot") >= 1 }, procWait, time.Millisecond,
		"READY committed; stderr:\n%s", p.Stderr.String())

	// The reply is delivered, but its answer never comes back.
	srv.FailNextSends(1, gatewaytest.FaultLoseAnswer)
	seq, err := sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	sent, err := srv.WaitSent(ctx, 1)
	require.NoError(t, err)
	require.True(t, sent[0].Delivered, "the user has the reply")
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
	_ = p.Wait()
	assert.Less(t, recordSeq(sessions, "echo-bot"), seq, "the event was not committed")

	p = startConfig(t, cfg)
	sent, err = srv.WaitSent(ctx, 2)
	require.NoError(t, err, "stderr:\n%s", p.Stderr.String())
	require.Eventually(t, func() bool { return recordSeq(sessions, "echo-bot") >= seq }, procWait, time.Millisecond,
		"committed after the re-send; stderr:\n%s", p.Stderr.String())
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait())

	require.Len(t, sent, 2)
	assert.Equal(t, sent[0].MsgID, sent[1].MsgID)
	assert.Equal(t, 1, sent[0].MsgSeq)
	assert.Equal(t, 1, sent[1].MsgSeq, "the same msg_seq")
	assert.Equal(t, openapi.CodeDuplicateSeq, sent[1].Code, "the platform dropped the repeat")
	assert.False(t, sent[1].Delivered)
	assert.Len(t, srv.Resumes(), 1, "the restart resumed")

	target := sent[0].Target
	got := srv.Delivered(target)
	require.Len(t, got, 1, "the user saw the reply once")
	assert.Regexp(t, `^echo: hello \d+$`, got[0].Content)

	b, err := os.ReadFile(runs)
	require.NoError(t, err)
	ran := strings.Count(string(b), fmt.Sprintf("%s %d\n", wire.EventC2CMessageCreate, seq))
	assert.Equal(t, 2, ran, "the handler ran again after the restart:\n%s", b)
	assert.Contains(t, p.Stderr.String(), "already delivered")
}

// TestREADMEEchoScript runs the README's echo script as an exec handler
// with reply: text: the user sees the echo.
func TestREADMEEchoScript(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("the README's script uses jq, which is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "```sh\n#!/bin/sh\n# echo.sh")
	require.True(t, ok, "the README has the echo script")
	body, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	script := "#!/bin/sh\n# echo.sh" + body
	assert.Equal(t, 5, strings.Count(script, "\n"), "five lines:\n%s", script)

	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "echo.sh")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	cfg := filepath.Join(dir, "qqgate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`session_dir: %s
accounts:
  - {id: echo-bot, app_id: %q, secret: %s, api_base: %s, token_url: %s,
     handler: {type: exec, command: [%q], reply: text}}
`, filepath.Join(dir, "sessions"), gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL(), srv.TokenURL(), path))
	p := startConfig(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	sess, err := srv.WaitSession(ctx)
	require.NoError(t, err)
	_, err = sess.EmitMessage(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	sent, err := srv.WaitSent(ctx, 1)
	require.NoError(t, err, "stderr:\n%s", p.Stderr.String())
	got := srv.Delivered(sent[0].Target)
	require.Len(t, got, 1, "stderr:\n%s", p.Stderr.String())
	assert.Regexp(t, `^echo: hello \d+$`, got[0].Content)
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait())
}
