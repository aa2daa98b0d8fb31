package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// at makes the rig's runner read its config from path instead (which must
// hold the same accounts), before start.
func (g *rig) at(path string) *rig {
	g.t.Helper()
	opts := g.r.opts
	opts.ConfigPath = path
	require.NoError(g.t, g.r.store.Close())
	r, err := New(opts)
	require.NoError(g.t, err)
	g.r, g.path = r, path
	return g
}

// TestRunnerReloadsOnDirectorySymlinkSwap: a config reached through a
// symlinked directory (a Kubernetes ConfigMap volume: qqgate.yaml ->
// ..data/qqgate.yaml, ..data -> ..v1) is reloaded when the directory link
// is swapped by renaming a new link over it.
func TestRunnerReloadsOnDirectorySymlinkSwap(t *testing.T) {
	g := newRig(t, nil, acct{app: "101"})
	base := t.TempDir()
	for v, accounts := range map[string][]acct{"..v1": {{app: "101"}}, "..v2": {{app: "101"}, {app: "102"}}} {
		require.NoError(t, os.Mkdir(filepath.Join(base, v), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(base, v, "qqgate.yaml"), []byte(g.config(accounts...)), 0o600))
	}
	require.NoError(t, os.Symlink("..v1", filepath.Join(base, "..data")))
	require.NoError(t, os.Symlink("..data/qqgate.yaml", filepath.Join(base, "qqgate.yaml")))
	g.at(filepath.Join(base, "qqgate.yaml")).start()
	g.connected("101")
	before := g.conns("101")

	// The kubelet's atomic swap; then it removes the old directory.
	require.NoError(t, os.Symlink("..v2", filepath.Join(base, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(base, "..data_tmp"), filepath.Join(base, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(base, "..v1")))
	g.reloaded(1)
	g.connected("102")
	assert.Equal(t, []string{"bot-101", "bot-102"}, g.ids())
	assert.Equal(t, before, g.conns("101"), "the unchanged account keeps its connection")

	// The next swap is seen too: the watch follows the new directory.
	require.NoError(t, os.Mkdir(filepath.Join(base, "..v3"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(base, "..v3", "qqgate.yaml"), []byte(g.config(acct{app: "102"})), 0o600))
	require.NoError(t, os.Symlink("..v3", filepath.Join(base, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(base, "..data_tmp"), filepath.Join(base, "..data")))
	g.reloaded(2)
	g.waitGateway("101's connection closed", func() bool { return g.srv.Session("101").Conn() == 0 })
	assert.Equal(t, []string{"bot-102"}, g.ids())
	assert.Zero(t, g.r.Reloads().Failed)
}

// TestRunnerReloadsThroughFileSymlink: a config that is a symlink to a
// file in another directory is reloaded when that file is replaced there.
func TestRunnerReloadsThroughFileSymlink(t *testing.T) {
	g := newRig(t, nil, acct{app: "101"})
	real := filepath.Join(t.TempDir(), "real.yaml")
	require.NoError(t, os.WriteFile(real, []byte(g.config(acct{app: "101"})), 0o600))
	link := filepath.Join(t.TempDir(), "qqgate.yaml")
	require.NoError(t, os.Symlink(real, link))
	g.at(link).start()
	g.connected("101")

	// An editor's save: a new file renamed over the old one.
	tmp := real + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(g.config(acct{app: "101"}, acct{app: "102"})), 0o600))
	require.NoError(t, os.Rename(tmp, real))
	g.reloaded(1)
	g.connected("102")

	// Repointing the link reloads as well.
	other := filepath.Join(t.TempDir(), "other.yaml")
	require.NoError(t, os.WriteFile(other, []byte(g.config(acct{app: "102"})), 0o600))
	require.NoError(t, os.Symlink(other, link+".tmp"))
	require.NoError(t, os.Rename(link+".tmp", link))
	g.reloaded(2)
	assert.Equal(t, []string{"bot-102"}, g.ids())
}

func TestConfigPaths(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(base, "..v1"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(base, "..v1", "c.yaml"), nil, 0o600))
	require.NoError(t, os.Symlink("..v1", filepath.Join(base, "..data")))
	require.NoError(t, os.Symlink("..data/c.yaml", filepath.Join(base, "c.yaml")))
	names, dirs := configPaths(filepath.Join(base, "c.yaml"))
	for _, n := range []string{"c.yaml", "..data", "..v1", "..v1/c.yaml"} {
		assert.True(t, names[filepath.Join(base, n)], n)
	}
	assert.False(t, names[filepath.Join(base, "session-x.json")])
	assert.Equal(t, map[string]bool{base: true, filepath.Join(base, "..v1"): true}, dirs)

	// A missing file: its directory is watched for its creation.
	names, dirs = configPaths(filepath.Join(base, "none.yaml"))
	assert.True(t, names[filepath.Join(base, "none.yaml")])
	assert.Equal(t, map[string]bool{base: true}, dirs)

	// A symlink loop ends.
	require.NoError(t, os.Symlink("loop", filepath.Join(base, "loop")))
	_, dirs = configPaths(filepath.Join(base, "loop"))
	assert.Equal(t, map[string]bool{base: true}, dirs)
}

// TestRunnerReloadAmidOtherFiles: writes of other files in the config's
// directory (session records kept beside it, say), faster than the
// debounce, neither postpone nor replace the reload of the config.
func TestRunnerReloadAmidOtherFiles(t *testing.T) {
	g := newRig(t, nil, acct{app: "101"}).start()
	g.connected("101")
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		other := filepath.Join(filepath.Dir(g.path), "other.json")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = os.WriteFile(other, []byte{byte(i)}, 0o600)
		}
	}()
	defer func() { close(stop); <-done }()
	g.write(acct{app: "101"}, acct{app: "102"})
	g.reloaded(1)
	g.connected("102")
}

// TestRunnerReloadsRelativePath: a config path relative to the working
// directory is watched as well.
func TestRunnerReloadsRelativePath(t *testing.T) {
	g := newRig(t, nil, acct{app: "101"})
	t.Chdir(filepath.Dir(g.path))
	g.at(filepath.Base(g.path)).start()
	g.connected("101")
	g.write(acct{app: "101"}, acct{app: "102"})
	g.reloaded(1)
	g.connected("102")
}
