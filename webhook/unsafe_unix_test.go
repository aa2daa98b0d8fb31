//go:build unix

package webhook_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/webhook"
)

// A planted FIFO or link in place of the segment or the lock is refused
// at once: nothing hangs, nothing outside is touched.
func TestInboxRefusesPlantedFiles(t *testing.T) {
	for _, name := range []string{"seg-00000000000000000001.log", "lock"} {
		for _, kind := range []string{"fifo", "link"} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				dir := t.TempDir()
				inbox := webhook.InboxDir(dir, "a")
				require.NoError(t, os.Mkdir(inbox, 0o700))
				victim := filepath.Join(t.TempDir(), "victim")
				require.NoError(t, os.WriteFile(victim, []byte("keep"), 0o644))
				p := filepath.Join(inbox, name)
				if kind == "fifo" {
					require.NoError(t, syscall.Mkfifo(p, 0o600))
				} else {
					require.NoError(t, os.Symlink(victim, p))
				}
				_, err := webhook.OpenInbox(webhook.InboxConfig{Dir: dir, AccountID: "a"})
				require.ErrorIs(t, err, webhook.ErrUnsafePath)
				b, err := os.ReadFile(victim)
				require.NoError(t, err)
				assert.Equal(t, "keep", string(b))
				fi, err := os.Stat(victim)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
			})
		}
	}
}

// A loose inbox directory mode is tightened to 0700.
func TestInboxTightensItsDir(t *testing.T) {
	dir := t.TempDir()
	inbox := webhook.InboxDir(dir, "a")
	require.NoError(t, os.Mkdir(inbox, 0o755))
	require.NoError(t, os.Chmod(inbox, 0o755))
	in, err := webhook.OpenInbox(webhook.InboxConfig{Dir: dir, AccountID: "a"})
	require.NoError(t, err)
	defer in.Close()
	fi, err := os.Stat(inbox)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}
