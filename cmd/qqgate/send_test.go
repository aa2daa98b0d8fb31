package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/wire"
)

// sendRun runs the built binary with args and env (stdin from stdin) and
// returns its stdout, stderr and exit status.
func sendRun(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, qqgateBinary(t), args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), testutil.ExitCode(err)
}

// sendEnv is the credential environment of run, for the fake.
func sendEnv(srv *gatewaytest.Server) []string {
	return []string{"QQBOT_APP_ID=" + gatewaytest.DefaultAppID, "QQBOT_CLIENT_SECRET=" + gatewaytest.DefaultSecret,
		"QQBOT_API_BASE=" + srv.URL(), "QQBOT_TOKEN_URL=" + srv.TokenURL()}
}

// inboundRoute makes an inbound event in the fake and returns its route.
func inboundRoute(t *testing.T, srv *gatewaytest.Server, typ string) openapi.Target {
	t.Helper()
	in, err := srv.NewInbound(typ)
	require.NoError(t, err)
	route, err := openapi.RouteOf(openapi.Inbound{Type: in.Type, ID: in.ID, Data: in.Data})
	require.NoError(t, err)
	return route
}

type sendAnswer struct {
	ID               string          `json:"id"`
	MsgSeq           int             `json:"msg_seq"`
	AlreadyDelivered bool            `json:"already_delivered"`
	TraceID          string          `json:"trace_id"`
	Answer           json.RawMessage `json:"answer"`
}

func oneAnswer(t *testing.T, stdout string) sendAnswer {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 1, "one JSON line: %q", stdout)
	var a sendAnswer
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &a), lines[0])
	return a
}

func TestSendReplyAndExplicitSeq(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	route := inboundRoute(t, srv, wire.EventC2CMessageCreate)
	target := gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: route.ID}

	out, errs, code := sendRun(t, sendEnv(srv), "", "send", "--user", route.ID, "--reply-to", route.MsgID, "hello", "there")
	require.Equal(t, 0, code, errs)
	a := oneAnswer(t, out)
	assert.NotEmpty(t, a.ID)
	assert.NotEmpty(t, a.TraceID)
	assert.GreaterOrEqual(t, a.MsgSeq, openapi.FreshSeqMin, "a fresh msg_seq, clear of handler replies")
	var answer struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(a.Answer, &answer))
	assert.Equal(t, a.ID, answer.ID, "the platform's answer, as it came")

	// An explicit --seq, twice: the second is already delivered, exit 0.
	for i := range 2 {
		out, errs, code = sendRun(t, sendEnv(srv), "", "send", "--user", route.ID, "--reply-to", route.MsgID, "--seq", "2", "second")
		require.Equal(t, 0, code, errs)
		a = oneAnswer(t, out)
		assert.Equal(t, 2, a.MsgSeq)
		assert.Equal(t, i == 1, a.AlreadyDelivered, "send %d", i+1)
		if i == 1 {
			assert.Contains(t, out, `"already_delivered":true`)
		}
	}
	var seen []string
	for _, d := range srv.Delivered(target) {
		seen = append(seen, d.Content)
	}
	assert.Equal(t, []string{"hello there", "second"}, seen, "what the user saw")
}

// TEXT "-" reads stdin; --markdown sends it as markdown; --event-id
// answers an event.
func TestSendStdinMarkdownEventID(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	route := inboundRoute(t, srv, wire.EventGroupAddRobot)
	out, errs, code := sendRun(t, sendEnv(srv), "**welcome**\n", "send", "--group", route.ID, "--event-id", route.EventID, "--markdown", "-")
	require.Equal(t, 0, code, errs)
	oneAnswer(t, out)
	got := srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneGroup, ID: route.ID})
	require.Len(t, got, 1)
	assert.JSONEq(t, `{"content":"**welcome**"}`, string(got[0].Markdown))
	assert.Equal(t, route.EventID, got[0].EventID)
}

// A refused message exits 1 with one line naming the HTTP status, code,
// message and trace id; stdout stays empty.
func TestSendRefused(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	out, errs, code := sendRun(t, sendEnv(srv), "", "send", "--group", "G0000", "an active message")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	require.Len(t, lines, 1, "one line: %q", errs)
	assert.Regexp(t, `^qqgate: send: the platform refused the message: HTTP 400, code 40034102, message ".+", trace id \S+ \(\w+\)$`, lines[0])
	sent := srv.Sent()
	require.Len(t, sent, 1)
	assert.Contains(t, lines[0], "trace id "+sent[0].TraceID)
	assert.NotContains(t, errs, gatewaytest.DefaultSecret)
}

// --config picks the account's credentials and endpoints.
func TestSendConfigAccount(t *testing.T) {
	apps := map[string]string{"2001": "s-2001", "2002": "s-2002"}
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Apps: apps})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "qqgate.yaml")
	writeFile(t, cfg, fmt.Sprintf(`defaults: {api_base: %s, token_url: %s}
accounts:
  - {id: bot-2001, app_id: "2001", secret: s-2001}
  - {id: bot-2002, app_id: "2002", secret_env: BOT_2002_SECRET}
`, srv.URL(), srv.TokenURL()))
	srv.AllowActiveSends(true)

	_, errs, code := sendRun(t, []string{"BOT_2002_SECRET=s-2002"}, "", "send", "--config", cfg, "--channel", "123", "x")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "has 2 accounts: pick one with --account (bot-2001, bot-2002)")

	out, errs, code := sendRun(t, []string{"BOT_2002_SECRET=s-2002"}, "", "send", "--config", cfg, "--account", "bot-2002", "--user", "U1", "hi from 2002")
	require.Equal(t, 0, code, errs)
	oneAnswer(t, out)
	sent := srv.Sent()
	require.Len(t, sent, 1)
	assert.Equal(t, "2002", sent[0].Header.Get("X-Union-Appid"))
	assert.GreaterOrEqual(t, sent[0].MsgSeq, openapi.FreshSeqMin, "an active send gets a fresh msg_seq")
}

func TestSendUsageErrors(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "hi"}, "exactly one of --user, --group, --channel, --dm"},
		{[]string{"send", "--user", "u", "--group", "g", "hi"}, "exactly one of"},
		{[]string{"send", "--user", "u"}, "no TEXT"},
		{[]string{"send", "--user", "u", "--reply-to", "m", "--event-id", "e", "hi"}, "do not mix"},
		{[]string{"send", "--channel", "c", "--seq", "3", "hi"}, "--seq is for --user and --group"},
		{[]string{"send", "--user", "u", "--seq", "-1", "hi"}, "not in 1.."},
	} {
		out, errs, code := sendRun(t, sendEnv(srv), "", tc.args...)
		assert.Equal(t, 2, code, tc.args)
		assert.Empty(t, out)
		assert.Contains(t, errs, tc.want, tc.args)
	}
	_, errs, code := sendRun(t, sendEnv(srv), "  \n", "send", "--user", "u", "-")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "the text is empty")
	_, errs, code = sendRun(t, []string{"QQBOT_APP_ID=1"}, "", "send", "--user", "u", "hi")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "no client secret")
	assert.Empty(t, srv.Sent())
}
