package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatVersion(t *testing.T) {
	stamp := func(kv ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/qqgate/qqgate", Version: "(devel)"}}
		for i := 0; i < len(kv); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return info
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name, ver, commit string
		info              *debug.BuildInfo
		want              string
	}{
		{"git checkout", "dev", "", stamp("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-01-01T00:00:00Z", "vcs.modified", "false"),
			"qqgate dev (commit " + rev + ", committed 2026-01-01T00:00:00Z, go1.26.8)"},
		{"uncommitted changes", "dev", "", stamp("vcs.revision", rev, "vcs.time", "2026-01-01T00:00:00Z", "vcs.modified", "true"),
			"qqgate dev (commit " + rev + ", modified, committed 2026-01-01T00:00:00Z, go1.26.8)"},
		{"no stamp", "dev", "", stamp(), "qqgate dev (commit unknown, go1.26.8)"},
		{"no build info", "dev", "", nil, "qqgate dev (commit unknown, go1.26.8)"},
		{"ldflags", "v1.2.3", "abc123", stamp(), "qqgate v1.2.3 (commit abc123, go1.26.8)"},
		{"stamp over ldflags commit", "v1.2.3", "abc123", stamp("vcs.revision", rev), "qqgate v1.2.3 (commit " + rev + ", go1.26.8)"},
		{"go install @version", "dev", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "qqgate v0.4.0 (commit unknown, go1.26.8)"},
		{"ldflags version wins", "v9", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "qqgate v9 (commit unknown, go1.26.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, formatVersion(tc.ver, tc.commit, tc.info, "go1.26.8"))
		})
	}
}

// TestVersionFromGitCheckout builds qqgate from a git checkout of the
// current tree (a fresh repository: Go stamps no revision in a git
// worktree) and checks that `qqgate version` names its commit.
func TestVersionFromGitCheckout(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@t", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	// The tree as it is now, committed changes or not, minus what git ignores.
	files := strings.Split(git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00")
	dir := t.TempDir()
	for _, f := range files {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	git(dir, "init", "-q")
	git(dir, "add", "-A")
	git(dir, "commit", "-q", "-m", "snapshot")
	head := git(dir, "rev-parse", "HEAD")

	bin := filepath.Join(t.TempDir(), "qqgate")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/qqgate")
	build.Dir = dir
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	out, err = exec.Command(bin, "version").Output()
	require.NoError(t, err)
	// Go stamps a pseudo-version too (v0.0.0-20260101000000-<short rev>).
	assert.Regexp(t, `^qqgate v0\.0\.0-20260101000000-`+head[:12]+` \(commit `+head+`, committed 2026-01-01T00:00:00Z, go1\.\d+`, string(out))
}
