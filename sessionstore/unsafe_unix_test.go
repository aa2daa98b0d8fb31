//go:build unix

package sessionstore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nobody is the uid and gid the ownership tests give away files to; only
// root can do that.
const nobody = 65534

// blockWait bounds a call that must not block.
const blockWait = 3 * time.Second

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
}

// bounded runs f and fails the test if it has not returned within
// blockWait: the calls under test used to block forever.
func bounded(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(blockWait):
		t.Fatalf("%s blocked", what)
	}
}

const victimText = "IMPORTANT USER DATA\n"

// victim is a file outside the session directory that a planted link
// points at.
func victim(t *testing.T, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "victim.txt")
	require.NoError(t, os.WriteFile(p, []byte(victimText), mode))
	require.NoError(t, os.Chmod(p, mode)) // whatever the umask
	return p
}

func assertUntouched(t *testing.T, p string, mode fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, victimText, string(b), "the link's target was written")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, mode, fi.Mode().Perm(), "the link's target changed mode")
}

func TestLockRefusesPlantedLinks(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"symlink", "hard link"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s, _ := newTestStore(t)
			require.NoError(t, s.Prepare())
			v := victim(t, 0o600)
			lock := filepath.Join(s.Dir(), "session-a.lock")
			if kind == "symlink" {
				require.NoError(t, os.Symlink(v, lock))
			} else {
				require.NoError(t, os.Link(v, lock))
			}
			_, err := s.Lock("a")
			require.ErrorIs(t, err, ErrUnsafePath)
			var ue *UnsafePathError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, lock, ue.Path)
			assertUntouched(t, v, 0o600)
		})
	}
}

func TestSpecialFilesNeverBlock(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	require.NoError(t, s.Prepare())
	ctx := context.Background()
	for _, name := range []string{"session-a.json", "session-a.lock", "session-b.json.corrupt-1", "session-b.json.tmp-1"} {
		require.NoError(t, syscall.Mkfifo(filepath.Join(s.Dir(), name), 0o600))
	}
	bounded(t, "Load", func() {
		_, err := s.Load(ctx, "a", "")
		require.ErrorIs(t, err, ErrUnsafePath)
		assert.Contains(t, err.Error(), "named pipe")
	})
	bounded(t, "Peek", func() {
		_, err := s.Peek(ctx, "a")
		require.ErrorIs(t, err, ErrUnsafePath)
	})
	bounded(t, "List", func() {
		entries, err := s.List(ctx)
		require.NoError(t, err)
		require.Len(t, entries, 2)
		for _, e := range entries {
			require.ErrorIs(t, e.Err, ErrUnsafePath, e.Path)
		}
	})
	bounded(t, "RemoveExpired", func() {
		removed, err := s.RemoveExpired(ctx)
		require.ErrorIs(t, err, ErrUnsafePath)
		assert.Empty(t, removed, "only regular files are removed")
	})
	bounded(t, "Clear", func() {
		require.ErrorIs(t, s.Clear(ctx, "a"), ErrUnsafePath)
	})
	bounded(t, "Lock", func() {
		_, err := s.Lock("a")
		require.ErrorIs(t, err, ErrUnsafePath)
	})
	bounded(t, "Watch", func() {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s.watchReady = cancel // the baseline read of the FIFO is done
		require.ErrorIs(t, s.Watch(wctx, "a", func(Change) {}), context.Canceled)
	})
	bounded(t, "SaveNow", func() {
		// A write replaces the FIFO by renaming over it: nothing is opened.
		require.NoError(t, s.SaveNow(ctx, rec("a", 1)))
	})
	_, err := s.Load(ctx, "a", "")
	require.NoError(t, err)
}

func TestReadsNeverFollowLinks(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	ctx := context.Background()
	require.NoError(t, s.SaveNow(ctx, rec("a", 1)))
	data, err := os.ReadFile(s.Path("a"))
	require.NoError(t, err)
	// A valid record, readable by others, reached through a link.
	v := filepath.Join(t.TempDir(), "index.html")
	require.NoError(t, os.WriteFile(v, data, 0o644))
	require.NoError(t, os.Chmod(v, 0o644))
	require.NoError(t, os.Remove(s.Path("a")))
	require.NoError(t, os.Symlink(v, s.Path("a")))
	hard := s.Path("b")
	require.NoError(t, os.WriteFile(hard, []byte(`{"accountId":"b","savedAt":0}`), 0o644))
	other := filepath.Join(t.TempDir(), "other.json")
	require.NoError(t, os.Link(hard, other))
	require.NoError(t, os.Chmod(hard, 0o644))

	_, err = s.Peek(ctx, "a")
	require.ErrorIs(t, err, ErrUnsafePath)
	assert.Contains(t, err.Error(), "symbolic link")
	_, err = s.Load(ctx, "a", "")
	require.ErrorIs(t, err, ErrUnsafePath)
	_, err = s.Load(ctx, "b", "")
	require.ErrorIs(t, err, ErrUnsafePath)
	assert.Contains(t, err.Error(), "hard links")
	entries, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	for _, e := range entries {
		require.ErrorIs(t, e.Err, ErrUnsafePath, e.Path)
	}
	clk.Advance(time.Hour)
	_, err = s.RemoveExpired(ctx)
	require.ErrorIs(t, err, ErrUnsafePath)
	require.ErrorIs(t, s.Clear(ctx, "a"), ErrUnsafePath)

	fi, err := os.Stat(v)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), fi.Mode().Perm(), "a read changed the link target's mode")
	fi, err = os.Stat(other)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), fi.Mode().Perm(), "a read changed a hard-linked file's mode")
	assert.FileExists(t, v)
	b, err := os.ReadFile(v)
	require.NoError(t, err)
	assert.Equal(t, data, b)
}

func TestDirOfAnotherUserRefused(t *testing.T) {
	needRoot(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chmod(dir, 0o777))
	require.NoError(t, os.Chown(dir, nobody, nobody))
	v := victim(t, 0o600)
	require.NoError(t, os.Symlink(v, filepath.Join(dir, "session-a.lock")))
	s, _ := newTestStoreIn(t, dir)
	ctx := context.Background()

	err := s.Prepare()
	var de *DirError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dir, de.Path)
	require.ErrorIs(t, err, ErrUnsafePath)
	assert.Contains(t, err.Error(), dir)
	assert.Contains(t, err.Error(), "owned by uid 65534")

	_, err = s.Lock("a")
	require.ErrorAs(t, err, &de)
	require.ErrorIs(t, s.SaveNow(ctx, rec("a", 1)), ErrUnsafePath)
	_, err = s.Load(ctx, "a", "")
	require.ErrorIs(t, err, ErrUnsafePath)
	_, err = s.List(ctx)
	require.ErrorIs(t, err, ErrUnsafePath)
	_, err = s.RemoveExpired(ctx)
	require.ErrorIs(t, err, ErrUnsafePath)
	require.ErrorIs(t, s.Watch(ctx, "a", func(Change) {}), ErrUnsafePath)

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o777), fi.Mode().Perm(), "another user's dir is not chmod-ed")
	assertUntouched(t, v, 0o600)
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, des, 1, "nothing was created in it")
}

func TestFileOfAnotherUserRefused(t *testing.T) {
	needRoot(t)
	t.Parallel()
	s, _ := newTestStore(t)
	ctx := context.Background()
	require.NoError(t, s.SaveNow(ctx, rec("a", 1)))
	require.NoError(t, os.Chown(s.Path("a"), nobody, nobody))
	require.NoError(t, os.Chmod(s.Path("a"), 0o644))
	lock := filepath.Join(s.Dir(), "session-b.lock")
	require.NoError(t, os.WriteFile(lock, []byte(victimText), 0o600))
	require.NoError(t, os.Chown(lock, nobody, nobody))

	_, err := s.Load(ctx, "a", "")
	require.ErrorIs(t, err, ErrUnsafePath)
	assert.Contains(t, err.Error(), "owned by uid 65534")
	_, err = s.Lock("b")
	require.ErrorIs(t, err, ErrUnsafePath)
	b, err := os.ReadFile(lock)
	require.NoError(t, err)
	assert.Equal(t, victimText, string(b), "another user's lock file was truncated")
	fi, err := os.Stat(s.Path("a"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), fi.Mode().Perm())
}

func TestPrepareTightensOwnDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	s, _ := newTestStoreIn(t, dir)
	require.NoError(t, s.Prepare())
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())

	// A directory that cannot be made is one error naming it.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	bad, _ := newTestStoreIn(t, filepath.Join(file, "sessions"))
	err = bad.Prepare()
	var de *DirError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, filepath.Join(file, "sessions"), de.Path)
	assert.False(t, errors.Is(err, ErrUnsafePath))
	assert.Contains(t, err.Error(), filepath.Join(file, "sessions"))
}

func TestDirBelowAnUnsafeAncestorRefused(t *testing.T) {
	t.Parallel()
	t.Run("writable by everyone", func(t *testing.T) {
		t.Parallel()
		ww := filepath.Join(t.TempDir(), "ww")
		require.NoError(t, os.Mkdir(ww, 0o777))
		require.NoError(t, os.Chmod(ww, 0o777))
		dir := filepath.Join(ww, "sessions")
		s, _ := newTestStoreIn(t, dir)
		err := s.Prepare()
		var de *DirError
		require.ErrorAs(t, err, &de)
		require.ErrorIs(t, err, ErrUnsafePath)
		assert.Contains(t, err.Error(), ww+": it is writable by every user")

		// With the sticky bit (as /tmp), nobody else may rename it.
		require.NoError(t, os.Chmod(ww, 0o777|os.ModeSticky))
		require.NoError(t, s.Prepare())
	})
	t.Run("owned by another user", func(t *testing.T) {
		needRoot(t)
		t.Parallel()
		// As /tmp/.openclaw made by someone else before the bot's first
		// run without HOME.
		other := filepath.Join(t.TempDir(), ".openclaw")
		require.NoError(t, os.Mkdir(other, 0o755))
		require.NoError(t, os.Chown(other, nobody, nobody))
		s, _ := newTestStoreIn(t, filepath.Join(other, "qqbot", "sessions"))
		err := s.Prepare()
		require.ErrorIs(t, err, ErrUnsafePath)
		assert.Contains(t, err.Error(), other+": it is owned by uid 65534")
	})
	t.Run("reached through a link", func(t *testing.T) {
		t.Parallel()
		ww := filepath.Join(t.TempDir(), "ww")
		require.NoError(t, os.Mkdir(ww, 0o777))
		require.NoError(t, os.Chmod(ww, 0o777))
		require.NoError(t, os.Mkdir(filepath.Join(ww, "sessions"), 0o700))
		link := filepath.Join(t.TempDir(), "link")
		require.NoError(t, os.Symlink(ww, link))
		s, _ := newTestStoreIn(t, filepath.Join(link, "sessions"))
		require.ErrorIs(t, s.Prepare(), ErrUnsafePath)
	})
}
