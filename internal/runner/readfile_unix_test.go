//go:build unix

package runner

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noBlock runs f and fails the test if it has not returned within a
// generous bound: the reads under test used to block forever on a FIFO.
func noBlock(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s blocked", what)
	}
}

const oneAccount = "accounts:\n  - id: a\n    app_id: \"1\"\n"

func TestLoadConfigRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "config.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	noBlock(t, "LoadConfig of a FIFO", func() {
		_, err := LoadConfig(fifo, nil)
		require.ErrorIs(t, err, ErrNotRegular)
		assert.Contains(t, err.Error(), fifo)
		assert.Contains(t, err.Error(), "named pipe")
	})
	_, err := LoadConfig(os.DevNull, nil)
	require.ErrorIs(t, err, ErrNotRegular, "a device is not a config file")
	assert.Contains(t, err.Error(), "device")

	// A huge file is refused after reading no more than the bound.
	huge := filepath.Join(dir, "huge.yaml")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<40)) // sparse: costs no disk
	require.NoError(t, f.Close())
	_, err = LoadConfig(huge, nil)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestSecretFileBoundedAndRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "secret")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	noBlock(t, "secret_file on a FIFO", func() {
		_, err := ParseConfig("c.yaml", []byte(oneAccount+"    secret_file: "+fifo+"\n"), nil)
		require.Error(t, err)
		assert.True(t, IsConfigError(err), "%v", err)
		assert.Contains(t, err.Error(), "named pipe")
	})

	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("s", maxSecretBytes+1)), 0o600))
	_, err := ParseConfig("c.yaml", []byte(oneAccount+"    secret_file: "+big+"\n"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "too large")
	assert.NotContains(t, err.Error(), "sss", "the secret is never in an error")

	ok := filepath.Join(dir, "ok")
	require.NoError(t, os.WriteFile(ok, []byte(" s3cret\n"), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(ok, link)) // mounted secrets are often links
	got, err := ReadSecretFile(link)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", got)
}
