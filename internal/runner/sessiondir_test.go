package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/sessionstore"
)

func TestSessionDirDefault(t *testing.T) {
	env := func(m map[string]string) Env { return func(k string) string { return m[k] } }
	both := env(map[string]string{"QQBOT_SESSION_DIR": "/env/dir", "HOME": "/home/bot"})
	assert.Equal(t, "/cfg/dir", SessionDir(&Config{SessionDir: "/cfg/dir"}, both), "the file's session_dir first")
	assert.Equal(t, "/env/dir", SessionDir(&Config{}, both), "then QQBOT_SESSION_DIR")
	assert.Equal(t, "/home/bot/.openclaw/qqbot/sessions", SessionDir(&Config{}, env(map[string]string{"HOME": "/home/bot"})))
	assert.Equal(t, "/tmp/.openclaw/qqbot/sessions", SessionDir(&Config{}, env(nil)), "the plugin's default without HOME")
}

func TestNewRefusesUnusableSessionDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	bad := filepath.Join(file, "sessions")
	_, err := New(Options{Config: &Config{SessionDir: bad, Accounts: []Account{{ID: "a", AppID: "1", Secret: "s"}}}})
	var de *sessionstore.DirError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, bad, de.Path)
}
