package runner

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfigReplyAndSendAPI(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "send-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("  tok-123\n"), 0o600))
	src := "send_api:\n  token_file: " + tokenFile + "\n  allow_remote: true\n" + okAccount +
		"    handler: {type: exec, command: [cat], reply: text}\n" +
		"  - id: b\n    app_id: \"2\"\n    secret: s\n    handler: {type: http, url: \"http://127.0.0.1:1/\", reply: json}\n" +
		"  - id: c\n    app_id: \"3\"\n    secret: s\n    handler: {type: exec, command: [cat], reply: off}\n"
	cfg, err := ParseConfig("c.yaml", []byte(src), testEnv)
	require.NoError(t, err)
	assert.Equal(t, SendAPI{TokenFile: tokenFile, Token: "tok-123", AllowRemote: true}, cfg.SendAPI)
	assert.Equal(t, "text", cfg.Accounts[0].Handler.Reply)
	assert.Equal(t, "json", cfg.Accounts[1].Handler.Reply)
	assert.Equal(t, "off", cfg.Accounts[2].Handler.Reply)

	cfg, err = ParseConfig("c.yaml", []byte(okAccount), testEnv)
	require.NoError(t, err)
	assert.Equal(t, SendAPI{}, cfg.SendAPI, "off by default")
	assert.Equal(t, "", cfg.Accounts[0].Handler.Reply, "replies off by default")
}

func TestParseConfigReplyAndSendAPIErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	for _, tc := range []badCase{
		{"reply on stdout", okAccount + "    handler: {type: stdout, reply: text}\n", 5, "accounts[0].handler", "reply is for exec and http"},
		{"reply unknown", okAccount + "    handler: {type: exec, command: [cat], reply: markdown}\n", 5, "accounts[0].handler", `unknown reply "markdown"`},
		{"reply empty", okAccount + "    handler: {type: exec, command: [cat], reply: \"\"}\n", 5, "accounts[0].handler.reply", "text, json or off"},
		{"send_api unknown key", "send_api: {token: x}\n" + okAccount, 1, "send_api.token", "unknown key"},
		{"send_api missing token file", "send_api: {token_file: /nonexistent/tok}\n" + okAccount, 1, "send_api.token_file", "cannot read"},
		{"send_api empty token file", "send_api: {token_file: " + empty + "}\n" + okAccount, 1, "send_api.token_file", "empty"},
		{"allow_remote not a bool", "send_api: {allow_remote: yes}\n" + okAccount, 1, "send_api.allow_remote", "true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(tc.src), testEnv)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, tc.line, ce.Line, "%v", err)
			assert.Equal(t, tc.key, ce.Key, "%v", err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}
