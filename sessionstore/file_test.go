package sessionstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newTestStore returns a FileStore over a fresh directory with a fake clock
// at fixtureSaved, closed at cleanup.
func newTestStore(t testing.TB) (*FileStore, *fakeClock) {
	t.Helper()
	return newTestStoreIn(t, t.TempDir())
}

func newTestStoreIn(t testing.TB, dir string) (*FileStore, *fakeClock) {
	t.Helper()
	clk := newFakeClock(fixtureSaved)
	s, err := NewFileStore(FileStoreConfig{Dir: dir, Clock: clk})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

func rec(account string, seq uint64) Record {
	return Record{AccountID: account, SessionID: "sess-" + account, LastSeq: seq, HasSeq: true, IntentLevelIndex: 1}
}

// onDisk parses the account's record file.
func onDisk(t testing.TB, s *FileStore, account string) Record {
	t.Helper()
	b, err := os.ReadFile(s.Path(account))
	require.NoError(t, err)
	r, err := ParseRecord(b)
	require.NoError(t, err)
	return r
}

func copyFixture(t testing.TB, dir, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(dst, readFixture(t, name), 0o644))
	return dst
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	s, err := NewFileStore(FileStoreConfig{})
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, DefaultDir(), s.Dir())
	assert.Equal(t, SystemClock{}, s.clock)
	assert.Equal(t, 100*time.Millisecond, s.debounce)
	assert.Equal(t, ThrottleInterval, s.t.interval)
	assert.Equal(t, filepath.Join("/home/x", ".openclaw", "qqbot", "sessions"), DirForHome("/home/x"))
	assert.Equal(t, "/tmp/.openclaw/qqbot/sessions", DirForHome(""))
	_, err = NewFileStore(FileStoreConfig{WatchDebounce: -1})
	require.Error(t, err)
}

func TestLoadFixtures(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	for _, n := range []string{"session-full.json", "session-null-seq.json", "session-no-appid.json",
		"session-extra.json", "session-null-session.json", "session-__bot__.json"} {
		copyFixture(t, s.Dir(), n)
	}
	clk.Advance(time.Minute)
	ctx := context.Background()

	r, err := s.Load(ctx, "full", "102005678")
	require.NoError(t, err)
	assert.Equal(t, uint64(42), r.LastSeq)
	assert.Equal(t, "c4b1e0a2-5f9d-4e36-9a1b-7d2f0e8c6a11", r.SessionID)

	_, err = s.Load(ctx, "no-appid", "any-app")
	require.NoError(t, err)
	_, err = s.Load(ctx, "ü.bot😀", "")
	require.NoError(t, err)

	// Ours but not resumable: the record comes back with ErrNoSession.
	r, err = s.Load(ctx, "null-seq", "")
	require.ErrorIs(t, err, ErrNoSession)
	assert.False(t, r.HasSeq)
	r, err = s.Load(ctx, "null-session", "")
	require.ErrorIs(t, err, ErrNoSession)
	assert.Equal(t, 3, r.IntentLevelIndex, "intent level survives a null session")
	assert.FileExists(t, s.Path("null-session"))

	// A rewrite keeps the unknown fields as the plugin wrote them.
	r, err = s.Load(ctx, "extra", "")
	require.NoError(t, err)
	r.LastSeq = 1002
	require.NoError(t, s.SaveNow(ctx, r))
	got, err := os.ReadFile(s.Path("extra"))
	require.NoError(t, err)
	want := strings.Replace(string(readFixture(t, "session-extra.json")), `"lastSeq": 1001`, `"lastSeq": 1002`, 1)
	want = strings.Replace(want, `"savedAt": 1767225600000`, `"savedAt": 1767225660000`, 1)
	assert.Equal(t, want, string(got))
}

// TestWrittenRecordFollowsPluginRules checks what we write against the
// plugin's reader: field names and JSON types, the file name rule, and,
// when Node is installed, the plugin's own loadSession code.
func TestWrittenRecordFollowsPluginRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewFileStore(FileStoreConfig{Dir: dir}) // real clock: Node uses Date.now()
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	account := "bot.一"
	require.NoError(t, s.SaveNow(ctx, Record{AccountID: account, SessionID: "sid", LastSeq: 9, HasSeq: true,
		LastConnectedAt: time.Now(), IntentLevelIndex: 2, AppID: "app"}))
	require.NoError(t, s.SaveNow(ctx, Record{AccountID: "nulls"}))

	path := filepath.Join(dir, "session-bot__.json")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.IsType(t, "", m["sessionId"])
	assert.IsType(t, float64(0), m["lastSeq"])
	assert.IsType(t, float64(0), m["lastConnectedAt"])
	assert.IsType(t, float64(0), m["intentLevelIndex"])
	assert.Equal(t, account, m["accountId"])
	assert.IsType(t, float64(0), m["savedAt"])
	assert.Equal(t, "app", m["appId"])

	b, err = os.ReadFile(filepath.Join(dir, "session-nulls.json"))
	require.NoError(t, err)
	m = nil
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Contains(t, m, "sessionId")
	assert.Nil(t, m["sessionId"])
	assert.Nil(t, m["lastSeq"])
	assert.NotContains(t, m, "appId")

	node, err := execLookPath("node")
	if err != nil {
		t.Log("node not installed: skipping the plugin's own reader")
		return
	}
	// The plugin's loadSession, verbatim in its checks.
	script := `
const fs = require("fs"), path = require("path");
const [dir, accountId] = process.argv.slice(1);
const safeId = accountId.replace(/[^a-zA-Z0-9_-]/g, "_");
const state = JSON.parse(fs.readFileSync(path.join(dir, "session-" + safeId + ".json"), "utf-8"));
if (Date.now() - state.savedAt > 5 * 60 * 1000) { console.log("expired"); process.exit(0); }
if (!state.sessionId || state.lastSeq === null || state.lastSeq === undefined) { console.log("invalid"); process.exit(0); }
console.log(JSON.stringify({sessionId: state.sessionId, lastSeq: state.lastSeq, accountId: state.accountId, intentLevelIndex: state.intentLevelIndex}));
`
	out, err := execCommand(ctx, node, "-e", script, dir, account)
	require.NoError(t, err, string(out))
	assert.JSONEq(t, `{"sessionId":"sid","lastSeq":9,"accountId":"bot.一","intentLevelIndex":2}`, string(out))
}

func TestThrottleThousandSaves(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	writes := countWrites(s)
	ctx := context.Background()
	for i := range 1000 {
		require.NoError(t, s.Save(ctx, rec("a", uint64(i))))
		clk.Advance(time.Millisecond / 2) // 1000 saves in half a second
	}
	assert.Equal(t, int64(1), writes.Load(), "the first save writes at once")
	assert.Equal(t, uint64(0), onDisk(t, s, "a").LastSeq)
	clk.Advance(ThrottleInterval)
	assert.Equal(t, int64(2), writes.Load(), "one trailing write")
	got := onDisk(t, s, "a")
	assert.Equal(t, uint64(999), got.LastSeq, "the newest state is on disk")
	assert.Equal(t, fixtureSaved.Add(ThrottleInterval), got.SavedAt, "savedAt is the trailing write's time")
	assert.Zero(t, clk.pending())
	clk.Advance(10 * ThrottleInterval)
	assert.Equal(t, int64(2), writes.Load(), "nothing more to write")
}

func TestThrottleAccountsIndependent(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	writes := countWrites(s)
	ctx := context.Background()
	accounts := []string{"a", "b", "c"}
	for i := range 30 {
		for _, a := range accounts {
			require.NoError(t, s.Save(ctx, rec(a, uint64(i))))
		}
		clk.Advance(10 * time.Millisecond)
	}
	assert.Equal(t, int64(3), writes.Load(), "each account wrote once at once")
	clk.Advance(ThrottleInterval)
	assert.Equal(t, int64(6), writes.Load())
	for _, a := range accounts {
		assert.Equal(t, uint64(29), onDisk(t, s, a).LastSeq)
	}
	// After a quiet interval the next save writes at once again.
	clk.Advance(ThrottleInterval)
	require.NoError(t, s.Save(ctx, rec("b", 100)))
	assert.Equal(t, int64(7), writes.Load())
}

func TestFlushAndCloseWritePending(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	writes := countWrites(s)
	ctx := context.Background()
	require.NoError(t, s.Save(ctx, rec("a", 1)))
	require.NoError(t, s.Save(ctx, rec("a", 2)))
	require.NoError(t, s.Flush(ctx))
	assert.Equal(t, int64(2), writes.Load())
	assert.Equal(t, uint64(2), onDisk(t, s, "a").LastSeq)
	clk.Advance(ThrottleInterval)
	assert.Equal(t, int64(2), writes.Load(), "the flushed timer does not write again")

	require.NoError(t, s.Save(ctx, rec("a", 3)))
	require.NoError(t, s.Save(ctx, rec("a", 4)))
	require.NoError(t, s.Save(ctx, rec("b", 1)))
	require.NoError(t, s.Save(ctx, rec("b", 2)))
	assert.Equal(t, uint64(3), onDisk(t, s, "a").LastSeq)
	require.NoError(t, s.Close())
	assert.Equal(t, uint64(4), onDisk(t, s, "a").LastSeq, "Close wrote the pending state")
	assert.Equal(t, uint64(2), onDisk(t, s, "b").LastSeq)
	assert.Zero(t, clk.pending())
	require.NoError(t, s.Close(), "Close is idempotent")
	require.ErrorIs(t, s.Save(ctx, rec("a", 5)), ErrClosed)
	require.ErrorIs(t, s.SaveNow(ctx, rec("a", 5)), ErrClosed)
	require.ErrorIs(t, s.Watch(ctx, "a", func(Change) {}), ErrClosed)
}

func TestSaveNowAndClearCancelPending(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	writes := countWrites(s)
	ctx := context.Background()
	require.NoError(t, s.Save(ctx, rec("a", 1)))
	require.NoError(t, s.Save(ctx, rec("a", 2))) // pending
	require.NoError(t, s.SaveNow(ctx, rec("a", 3)))
	clk.Advance(ThrottleInterval)
	assert.Equal(t, int64(2), writes.Load())
	assert.Equal(t, uint64(3), onDisk(t, s, "a").LastSeq, "the older pending state never lands")

	require.NoError(t, s.Save(ctx, rec("a", 4)))
	require.NoError(t, s.Save(ctx, rec("a", 5))) // pending
	require.NoError(t, s.Clear(ctx, "a"))
	clk.Advance(ThrottleInterval)
	assert.NoFileExists(t, s.Path("a"), "a cleared record stays cleared")
	require.NoError(t, s.Clear(ctx, "a"), "clearing nothing is fine")
}

func TestConcurrentSaves(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				switch i % 3 {
				case 0:
					assert.NoError(t, s.Save(ctx, rec("a", uint64(g*100+i))))
				case 1:
					assert.NoError(t, s.SaveNow(ctx, rec("b", uint64(i))))
				default:
					clk.Advance(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.Flush(ctx))
	onDisk(t, s, "a")
	onDisk(t, s, "b")
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	ctx := context.Background()
	require.NoError(t, s.SaveNow(ctx, rec("a", 1)))
	require.NoError(t, s.SaveNow(ctx, rec("b", 1)))
	clk.Advance(Expiry)
	_, err := s.Load(ctx, "a", "")
	require.NoError(t, err, "exactly five minutes old is still valid")

	clk.Advance(time.Millisecond)
	_, err = s.Load(ctx, "a", "")
	require.ErrorIs(t, err, ErrNoSession)
	assert.Contains(t, err.Error(), "expired")
	assert.NoFileExists(t, s.Path("a"), "expired record removed on load")

	require.NoError(t, s.SaveNow(ctx, rec("c", 1))) // fresh
	entries, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.True(t, entries[0].Expired)  // b
	assert.False(t, entries[1].Expired) // c
	removed, err := s.RemoveExpired(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{s.Path("b")}, removed)
	assert.FileExists(t, s.Path("c"))
}

func TestRecordSavedInTheFutureExpires(t *testing.T) {
	t.Parallel()
	// Two stores over one directory: the writer's clock runs ahead.
	dir := t.TempDir()
	reader, clk := newTestStoreIn(t, dir)
	ahead := newFakeClock(clk.Now().Add(time.Hour))
	writer, err := NewFileStore(FileStoreConfig{Dir: dir, Clock: ahead})
	require.NoError(t, err)
	t.Cleanup(func() { _ = writer.Close() })
	ctx := context.Background()
	require.NoError(t, writer.SaveNow(ctx, rec("future", 3)))
	skewed, err := NewFileStore(FileStoreConfig{Dir: dir, Clock: newFakeClock(clk.Now().Add(MaxClockSkew / 2))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = skewed.Close() })
	require.NoError(t, skewed.SaveNow(ctx, rec("skewed", 4)))

	entries, err := reader.List(ctx)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.True(t, entries[0].Expired, "saved an hour ahead: expired")
	assert.False(t, entries[1].Expired, "within the clock skew: valid")

	removed, err := reader.RemoveExpired(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{reader.Path("future")}, removed)
	_, err = reader.Load(ctx, "skewed", "")
	require.NoError(t, err)

	require.NoError(t, writer.SaveNow(ctx, rec("future", 5)))
	_, err = reader.Load(ctx, "future", "")
	require.ErrorIs(t, err, ErrNoSession, "a record from the future is never resumed")
	assert.Contains(t, err.Error(), "in the future")
	assert.NoFileExists(t, reader.Path("future"))
}

func TestForeignAndAppID(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	ctx := context.Background()
	// "a.b" and "a_b" share a file name; the file is a_b's.
	r := rec("a_b", 7)
	r.AppID = "app1"
	require.NoError(t, s.SaveNow(ctx, r))
	require.Equal(t, s.Path("a_b"), s.Path("a.b"))

	_, err := s.Load(ctx, "a.b", "")
	require.ErrorIs(t, err, ErrNoSession)
	assert.Contains(t, err.Error(), "belongs to")
	require.NoError(t, s.Clear(ctx, "a.b"))
	clk.Advance(Expiry + time.Second)
	_, err = s.Load(ctx, "a.b", "")
	require.ErrorIs(t, err, ErrNoSession)
	assert.FileExists(t, s.Path("a_b"), "a foreign record is neither loaded nor deleted, even expired")

	require.NoError(t, s.SaveNow(ctx, r))
	_, err = s.Load(ctx, "a_b", "app2")
	require.ErrorIs(t, err, ErrNoSession)
	assert.Contains(t, err.Error(), "app")
	assert.FileExists(t, s.Path("a_b"))
	got, err := s.Load(ctx, "a_b", "app1")
	require.NoError(t, err)
	assert.Equal(t, uint64(7), got.LastSeq)
	_, err = s.Load(ctx, "a_b", "")
	require.NoError(t, err)

	_, err = s.Load(ctx, "missing", "")
	require.ErrorIs(t, err, ErrNoSession)
}

func TestCorruptFiles(t *testing.T) {
	t.Parallel()
	full := readFixture(t, "session-full.json")
	tests := map[string][]byte{
		"truncated":   readFixture(t, "session-corrupt.json"),
		"empty":       {},
		"not json":    []byte("this is not json"),
		"binary":      {0xff, 0xfe, 0, 1, 2},
		"wrong typed": bytes.Replace(full, []byte(`"lastSeq": 42`), []byte(`"lastSeq": "42"`), 1),
		"array":       []byte(`[1,2,3]`),
		"huge":        append(bytes.TrimSuffix(full, []byte("\n}")), []byte(`, "pad": "`+strings.Repeat("x", 100<<10)+`"}`)...),
		"too long":    bytes.Repeat([]byte(" "), 10<<20),
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, clk := newTestStore(t)
			clk.Advance(time.Minute)
			path := s.Path("full")
			require.NoError(t, os.WriteFile(path, content, 0o600))
			ctx := context.Background()

			entries, err := s.List(ctx)
			require.NoError(t, err)
			require.Len(t, entries, 1)
			var ce *CorruptError
			require.ErrorAs(t, entries[0].Err, &ce)
			assert.Empty(t, ce.KeptAs, "List changes nothing")

			_, err = s.Load(ctx, "full", "")
			require.ErrorAs(t, err, &ce)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, path, ce.Path)
			require.NotEmpty(t, ce.KeptAs)
			kept, err := os.ReadFile(ce.KeptAs)
			require.NoError(t, err)
			assert.Equal(t, content, kept, "nothing lost")
			assert.NoFileExists(t, path)

			_, err = s.Load(ctx, "full", "")
			require.ErrorIs(t, err, ErrNoSession, "the account starts afresh")

			entries, err = s.List(ctx)
			require.NoError(t, err)
			require.Len(t, entries, 1)
			require.ErrorAs(t, entries[0].Err, &ce)
			assert.Equal(t, path, ce.Path)
			assert.Equal(t, entries[0].Path, ce.KeptAs)

			removed, err := s.RemoveExpired(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{entries[0].Path}, removed)
		})
	}
}

func TestRemoveExpiredBadFiles(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	ctx := context.Background()
	require.NoError(t, os.MkdirAll(s.Dir(), 0o700))
	young := copyFixture(t, s.Dir(), "session-corrupt.json")
	old := filepath.Join(s.Dir(), "session-old.json")
	require.NoError(t, os.WriteFile(old, []byte("{"), 0o600))
	tmp := filepath.Join(s.Dir(), "session-x.json.tmp-123")
	require.NoError(t, os.WriteFile(tmp, []byte("{"), 0o600))
	lock := filepath.Join(s.Dir(), "session-x.lock")
	require.NoError(t, os.WriteFile(lock, nil, 0o600))
	other := filepath.Join(s.Dir(), "notes.txt")
	require.NoError(t, os.WriteFile(other, nil, 0o600))
	now := time.Now()
	clk.Advance(now.Sub(clk.Now()))
	require.NoError(t, os.Chtimes(young, now, now))
	past := now.Add(-time.Hour)
	require.NoError(t, os.Chtimes(old, past, past))
	require.NoError(t, os.Chtimes(tmp, past, past))

	removed, err := s.RemoveExpired(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{old, tmp}, removed)
	assert.FileExists(t, young, "a fresh bad file may be a write in progress")
	assert.FileExists(t, lock)
	assert.FileExists(t, other)
}

func TestPermissionsTightened(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Chmod(dir, 0o755)) // whatever the umask
	path := copyFixture(t, dir, "session-full.json")
	require.NoError(t, os.Chmod(path, 0o644))
	s, clk := newTestStoreIn(t, dir)
	clk.Advance(time.Minute)
	ctx := context.Background()

	_, err := s.Load(ctx, "full", "")
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "file tightened on read")

	require.NoError(t, s.SaveNow(ctx, rec("new", 1)))
	fi, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm(), "dir tightened on write")
	fi, err = os.Stat(s.Path("new"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())

	// A directory we create is 0700 all the way.
	s2, _ := newTestStoreIn(t, filepath.Join(t.TempDir(), "a", "b"))
	require.NoError(t, s2.SaveNow(ctx, rec("x", 1)))
	fi, err = os.Stat(s2.Dir())
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())
}

func TestUnwritableDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("not a directory", func(t *testing.T) {
		t.Parallel()
		// Works as root too: the "directory" is under a regular file.
		file := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		s, clk := newTestStoreIn(t, filepath.Join(file, "sessions"))
		err := s.SaveNow(ctx, rec("a", 1))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "save session")
		clk.Advance(ThrottleInterval)
		require.Error(t, s.Save(ctx, rec("a", 2)), "an immediate throttled write reports too")
		require.NoError(t, s.Save(ctx, rec("a", 3)), "a pending one does not")
		clk.Advance(ThrottleInterval) // the trailing write fails, is logged, stays pending
		require.Error(t, s.Flush(ctx))
		_, err = s.Load(ctx, "a", "")
		require.Error(t, err)
		_, err = s.Lock("a")
		require.Error(t, err)
		require.Error(t, s.Close(), "Close reports the state it could not write")
	})
	t.Run("read-only", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions; the not-a-directory case covers the error path")
		}
		dir := t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o500))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		s, _ := newTestStoreIn(t, dir)
		require.ErrorIs(t, s.SaveNow(ctx, rec("a", 1)), fs.ErrPermission)
	})
}

func TestListMissingDir(t *testing.T) {
	t.Parallel()
	s, _ := newTestStoreIn(t, filepath.Join(t.TempDir(), "none"))
	entries, err := s.List(context.Background())
	require.NoError(t, err)
	assert.Empty(t, entries)
	removed, err := s.RemoveExpired(context.Background())
	require.NoError(t, err)
	assert.Empty(t, removed)
}

func TestPeek(t *testing.T) {
	t.Parallel()
	s, clk := newTestStore(t)
	ctx := context.Background()
	require.NoError(t, s.SaveNow(ctx, rec("a", 1)))
	clk.Advance(time.Hour)
	r, err := s.Peek(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), r.LastSeq)
	assert.FileExists(t, s.Path("a"), "Peek never removes")
	_, err = s.Peek(ctx, "a.x")
	require.ErrorIs(t, err, ErrNoSession)
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Load(ctx, "a", "")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, s.Save(ctx, rec("a", 1)), context.Canceled)
	require.ErrorIs(t, s.SaveNow(ctx, rec("a", 1)), context.Canceled)
	require.ErrorIs(t, s.Clear(ctx, "a"), context.Canceled)
	require.ErrorIs(t, s.Flush(ctx), context.Canceled)
	_, err = s.List(ctx)
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.RemoveExpired(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, s.Watch(ctx, "a", func(Change) {}), context.Canceled)
	require.False(t, errors.Is(err, ErrNoSession))
}

func TestFileStoreCountsWrites(t *testing.T) {
	dir := t.TempDir()
	st, err := NewFileStore(FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	require.NoError(t, st.SaveNow(ctx, Record{AccountID: "a", SessionID: "s", LastSeq: 1, HasSeq: true}))
	require.NoError(t, st.SaveNow(ctx, Record{AccountID: "a", SessionID: "s", LastSeq: 2, HasSeq: true}))
	assert.Equal(t, WriteStats{Writes: 2}, st.Stats("a"))
	assert.Equal(t, WriteStats{}, st.Stats("b"))

	blocked := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocked, nil, 0o600))
	bad, err := NewFileStore(FileStoreConfig{Dir: filepath.Join(blocked, "sub")})
	require.NoError(t, err)
	defer bad.Close()
	assert.Error(t, bad.SaveNow(ctx, Record{AccountID: "a", SessionID: "s", LastSeq: 1, HasSeq: true}))
	assert.Equal(t, WriteStats{Errors: 1}, bad.Stats("a"))
}

func TestFailedTrailingWriteIsRetried(t *testing.T) {
	root := t.TempDir()
	parent := filepath.Join(root, "parent")
	require.NoError(t, os.WriteFile(parent, nil, 0o600)) // the directory cannot be made
	s, clk := newTestStoreIn(t, filepath.Join(parent, "sessions"))
	ctx := context.Background()
	assert.Error(t, s.Save(ctx, rec("a", 1)), "the first save writes at once, and fails")
	require.NoError(t, s.Save(ctx, rec("a", 2)), "the second waits for the throttle")
	clk.Advance(ThrottleInterval) // the trailing write fails, and is kept
	assert.Equal(t, WriteStats{Errors: 2}, s.Stats("a"))

	require.NoError(t, os.Remove(parent)) // the disk recovers
	require.NoError(t, os.Mkdir(parent, 0o700))
	clk.Advance(retryAfterFailure * ThrottleInterval)
	assert.Equal(t, WriteStats{Writes: 1, Errors: 2}, s.Stats("a"), "retried with no further Save")
	got, err := s.Peek(ctx, "a")
	require.NoError(t, err)
	assert.EqualValues(t, 2, got.LastSeq)
}
