//go:build unix

package runner

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoadConfigRefusesFIFOsWithoutBlocking: a FIFO as the config or as a
// secret_file fails at once (a read would wait for a writer forever, on
// the loop that also handles signals), and so does an oversized secret
// file.
func TestLoadConfigRefusesFIFOsWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	load := func(path string) error {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			_, err := LoadConfig(path, testEnv)
			errc <- err
		}()
		select {
		case err := <-errc:
			return err
		case <-time.After(waitFor):
			// Unblock the reader so that the goroutine ends.
			if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
			<-errc
			t.Fatalf("LoadConfig(%s) blocked", path)
			return nil
		}
	}
	err := load(fifo)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a regular file")

	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("accounts:\n  - id: a\n    app_id: \"1\"\n    secret_file: "+fifo+"\n"), 0o600))
	err = load(cfg)
	require.True(t, IsConfigError(err), "%v", err)
	assert.Contains(t, err.Error(), cfg+":4: accounts[0].secret_file: ")
	assert.Contains(t, err.Error(), "not a regular file")

	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, maxSecretBytes+1), 0o600))
	require.NoError(t, os.WriteFile(cfg, []byte("accounts:\n  - id: a\n    app_id: \"1\"\n    secret_file: "+big+"\n"), 0o600))
	err = load(cfg)
	require.True(t, IsConfigError(err), "%v", err)
	assert.Contains(t, err.Error(), "file too large")
}
