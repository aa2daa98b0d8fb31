package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The demo is an echo bot: each line the fake user wrote is followed by
// the answer as the fake platform recorded it, the one written while the
// connection was down included.
func TestDemoEchoBot(t *testing.T) {
	out, errs, code := sendRun(t, nil, "", "demo")
	require.Equal(t, 0, code, "stderr:\n%s", errs)
	assert.Equal(t, []string{
		`the user wrote: "hello, bot"`,
		`the user saw: "echo: hello, bot" (msg_id ROBOT1.0_demo.1, msg_seq 1)`,
		`the user wrote: "what is 6 x 7?"`,
		`the user saw: "echo: what is 6 x 7?" (msg_id ROBOT1.0_demo.2, msg_seq 1)`,
		`the user wrote: "are you still there?" (the bot is disconnected)`,
		`the user saw: "echo: are you still there?" (msg_id ROBOT1.0_demo.3, msg_seq 1)`,
	}, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))
	assert.Contains(t, errs, "the message it missed was replayed and answered")
	assert.Contains(t, errs, "1 resume(s), 3 reply requests, 3 messages the user saw")
}

// The webhook demo: validation, a push delivered twice answered once, the
// runner (a subprocess) killed after an ACK and restarted, the push
// answered once after the restart.
func TestDemoWebhook(t *testing.T) {
	out, errs, code := sendRun(t, nil, "", "demo", "--webhook")
	require.Equal(t, 0, code, "stderr:\n%s", errs)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 10, out)
	assert.Regexp(t, `^the platform validated the callback URL http://127\.0\.0\.1:\d+/ \(op 13`, lines[0])
	assert.Equal(t, []string{
		`the user wrote: "hello, bot"`,
		`the user saw: "echo: hello, bot" (msg_id ROBOT1.0_demo.1, msg_seq 1)`,
		`the user wrote: "what is 6 x 7?" (the platform delivers it twice, as when its first 200 comes too late)`,
		`the user saw: "echo: what is 6 x 7?" (msg_id ROBOT1.0_demo.2, msg_seq 1)`,
		`the user wrote: "are you still there?"`,
		`the runner acknowledged it (HTTP 200) and was killed (SIGKILL) before answering`,
		`the user saw: "echo: are you still there?" (msg_id ROBOT1.0_demo.3, msg_seq 1)`,
		`the runner restarted and handled the push its inbox kept`,
		`the user saw 3 answers to 3 messages (one delivered twice, one retried after the crash): each answered once`,
	}, lines[1:])
	assert.Contains(t, errs, "the runner is a real subprocess")
	assert.Contains(t, errs, "killing the runner with SIGKILL")
}
