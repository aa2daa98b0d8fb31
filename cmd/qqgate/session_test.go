package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/sessionstore"
)

// sessionEnv is an env over buffers at a fixed time, with the given
// environment variables.
func sessionEnv(now time.Time, vars map[string]string) (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return vars[k] },
		now:    func() time.Time { return now },
	}, &out, &errb
}

var cliNow = time.UnixMilli(1767225600000).UTC() // 2026-01-01T00:00:00Z

// seedDir writes records saved at the given ages before cliNow, plus a
// corrupt file, and returns the directory.
func seedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(r sessionstore.Record, age time.Duration) {
		t.Helper()
		clock := fixedClock(cliNow.Add(-age))
		st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir, Clock: clock})
		require.NoError(t, err)
		require.NoError(t, st.SaveNow(context.Background(), r))
		require.NoError(t, st.Close())
	}
	write(sessionstore.Record{AccountID: "fresh", SessionID: "s1", LastSeq: 42, HasSeq: true, IntentLevelIndex: 1, AppID: "app"}, time.Minute)
	write(sessionstore.Record{AccountID: "old.bot", SessionID: "s2", LastSeq: 7, HasSeq: true}, time.Hour)
	write(sessionstore.Record{AccountID: "noseq", SessionID: "s3", IntentLevelIndex: 2}, 0)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "session-broken.json"), []byte(`{"accountId":`), 0o600))
	past := cliNow.Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "session-broken.json"), past, past))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "session-x.json.corrupt-1"), []byte(`x`), 0o600))
	return dir
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }
func (c fixedClock) AfterFunc(d time.Duration, f func()) sessionstore.Timer {
	return time.AfterFunc(d, f)
}

func TestSessionListJSON(t *testing.T) {
	t.Parallel()
	dir := seedDir(t)
	e, out, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	require.Equal(t, 0, cmdSession(context.Background(), []string{"list"}, e), errb.String())

	var lines []listLine
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var l listLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		lines = append(lines, l)
	}
	require.Len(t, lines, 5)
	byPath := map[string]listLine{}
	for _, l := range lines {
		byPath[filepath.Base(l.Path)] = l
	}
	fresh := byPath["session-fresh.json"]
	require.NotNil(t, fresh.ListRecord)
	assert.Equal(t, "fresh", fresh.AccountID)
	require.NotNil(t, fresh.SessionID)
	assert.Equal(t, "s1", *fresh.SessionID)
	assert.Equal(t, cliNow.Add(-time.Minute).UnixMilli(), fresh.SavedAt, "ms since the epoch, as in the record")
	assert.Equal(t, "app", fresh.AppID)
	require.NotNil(t, fresh.LastSeq)
	assert.Equal(t, uint64(42), *fresh.LastSeq)
	assert.Equal(t, 60.0, fresh.AgeSeconds)
	assert.False(t, fresh.Expired)
	assert.Equal(t, 1, fresh.IntentLevelIndex)

	old := byPath["session-old_bot.json"]
	assert.Equal(t, "old.bot", old.AccountID)
	assert.True(t, old.Expired)

	assert.Nil(t, byPath["session-noseq.json"].LastSeq)
	assert.NotEmpty(t, byPath["session-broken.json"].Error)
	assert.Nil(t, byPath["session-broken.json"].ListRecord, "no record fields for a file that does not parse")
	assert.NotEmpty(t, byPath["session-x.json.corrupt-1"].Error)
}

// session list --json and session show speak the record's vocabulary:
// every field show prints, list prints under the same name with the same
// value (savedAt and lastConnectedAt in ms), plus what it derives.
func TestSessionListSpeaksTheRecordsVocabulary(t *testing.T) {
	t.Parallel()
	dir := seedDir(t)
	e, out, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	require.Equal(t, 0, cmdSession(context.Background(), []string{"list"}, e), errb.String())
	listed := map[string]map[string]any{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		if id, ok := m["accountId"].(string); ok {
			listed[id] = m
		} else {
			assert.ElementsMatch(t, []string{"path", "expired", "error"}, keys(m), "an unreadable file: %s", sc.Text())
		}
	}
	require.Len(t, listed, 3)
	for id, l := range listed {
		assert.NotContains(t, l, "account")
		e, out, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
		require.Equal(t, 0, cmdSession(context.Background(), []string{"show", id}, e), errb.String())
		var shown map[string]any
		require.NoError(t, json.Unmarshal(out.Bytes(), &shown))
		for k, v := range shown {
			assert.Equal(t, v, l[k], "%s: field %q", id, k)
		}
		derived := []string{"ageSeconds", "expired", "path"}
		assert.ElementsMatch(t, append(keys(shown), derived...), keys(l), id)
	}
	assert.Nil(t, listed["noseq"]["lastSeq"])
	assert.Equal(t, float64(cliNow.Add(-time.Hour).UnixMilli()), listed["old.bot"]["savedAt"])
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSessionListTableAndFlags(t *testing.T) {
	t.Parallel()
	dir := seedDir(t)
	// --session-dir wins over the environment; flags may follow the command.
	e, out, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": "/nonexistent"})
	require.Equal(t, 0, cmdSession(context.Background(), []string{"list", "--session-dir", dir, "--json"}, e), errb.String())
	assert.Equal(t, 5, strings.Count(out.String(), "\n"))

	// The table itself (normally only on a terminal).
	e, out, _ = sessionEnv(cliNow, nil)
	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir, Clock: fixedClock(cliNow)})
	require.NoError(t, err)
	defer st.Close()
	require.Equal(t, 0, sessionList(context.Background(), st, false, e))
	table := out.String()
	assert.Contains(t, table, "ACCOUNT")
	assert.Regexp(t, `fresh\s+s1\s+42\s+1m0s\s+valid\s+1`, table)
	assert.Regexp(t, `old\.bot\s+s2\s+7\s+1h0m0s\s+expired\s+0`, table)
	assert.Regexp(t, `noseq\s+s3\s+null\s+0s\s+not resumable\s+2`, table)
	assert.Contains(t, table, "corrupt")

	// A buffer is not a terminal.
	assert.False(t, isCharDevice(&bytes.Buffer{}))
}

func TestSessionDefaultDir(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	dir := sessionstore.DirForHome(home)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir, Clock: fixedClock(cliNow)})
	require.NoError(t, err)
	require.NoError(t, st.SaveNow(context.Background(), sessionstore.Record{AccountID: "a", SessionID: "s", HasSeq: true}))
	require.NoError(t, st.Close())

	e, out, errb := sessionEnv(cliNow, map[string]string{"HOME": home})
	require.Equal(t, 0, cmdSession(context.Background(), []string{"show", "a"}, e), errb.String())
	assert.Contains(t, out.String(), `"accountId": "a"`)
}

func TestSessionShow(t *testing.T) {
	t.Parallel()
	dir := seedDir(t)
	ctx := context.Background()
	e, out, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	require.Equal(t, 0, cmdSession(ctx, []string{"show", "fresh"}, e), errb.String())
	r, err := sessionstore.ParseRecord(bytes.TrimSpace(out.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, uint64(42), r.LastSeq)
	assert.Equal(t, "app", r.AppID)
	assert.Empty(t, errb.String())

	// Expired records are shown, with a note, and not removed.
	e, out, errb = sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	require.Equal(t, 0, cmdSession(ctx, []string{"show", "old.bot"}, e))
	assert.Contains(t, out.String(), `"sessionId": "s2"`)
	assert.Contains(t, errb.String(), "expired")
	assert.FileExists(t, filepath.Join(dir, "session-old_bot.json"))

	// Missing and foreign accounts are reported, non-zero.
	for _, acct := range []string{"nobody", "old_bot"} {
		e, out, errb = sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
		assert.Equal(t, 1, cmdSession(ctx, []string{"show", acct}, e), acct)
		assert.Empty(t, out.String())
		assert.Contains(t, errb.String(), acct)
		assert.Contains(t, errb.String(), "no session")
	}

	// A corrupt record is an error, left in place.
	e, _, errb = sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	assert.Equal(t, 1, cmdSession(ctx, []string{"show", "broken"}, e))
	assert.Contains(t, errb.String(), "corrupt")
	assert.FileExists(t, filepath.Join(dir, "session-broken.json"))
}

func TestSessionClear(t *testing.T) {
	t.Parallel()
	dir := seedDir(t)
	ctx := context.Background()
	e, out, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	require.Equal(t, 0, cmdSession(ctx, []string{"clear", "fresh"}, e), errb.String())
	assert.Contains(t, out.String(), "cleared")
	assert.NoFileExists(t, filepath.Join(dir, "session-fresh.json"))

	e, _, errb = sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	assert.Equal(t, 1, cmdSession(ctx, []string{"clear", "fresh"}, e), "already gone")
	assert.Contains(t, errb.String(), "no session")

	e, _, _ = sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	assert.Equal(t, 1, cmdSession(ctx, []string{"clear", "old_bot"}, e), "foreign")
	assert.FileExists(t, filepath.Join(dir, "session-old_bot.json"))

	// A running process holds the account: clear warns.
	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	u, err := st.Lock("noseq")
	require.NoError(t, err)
	e, _, errb = sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	assert.Equal(t, 0, cmdSession(ctx, []string{"clear", "noseq"}, e))
	assert.Contains(t, errb.String(), "in use by process with pid ")
	require.NoError(t, u.Unlock())
	require.NoError(t, st.Close())
}

func TestSessionCleanup(t *testing.T) {
	t.Parallel()
	dir := seedDir(t)
	ctx := context.Background()
	e, out, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": dir})
	require.Equal(t, 0, cmdSession(ctx, []string{"cleanup"}, e), errb.String())
	for _, n := range []string{"session-old_bot.json", "session-broken.json", "session-x.json.corrupt-1"} {
		assert.Contains(t, out.String(), "removed "+filepath.Join(dir, n))
		assert.NoFileExists(t, filepath.Join(dir, n))
	}
	assert.Contains(t, out.String(), "3 file(s) removed")
	assert.FileExists(t, filepath.Join(dir, "session-fresh.json"))
	assert.FileExists(t, filepath.Join(dir, "session-noseq.json"))

	// Nothing to do, and a directory that does not exist, are both fine.
	e, out, _ = sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": filepath.Join(dir, "none")})
	require.Equal(t, 0, cmdSession(ctx, []string{"cleanup"}, e))
	assert.Contains(t, out.String(), "0 file(s) removed")
}

func TestSessionUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"show"}, 2, "exactly one ACCOUNT"},
		{[]string{"show", "a", "b"}, 2, "exactly one ACCOUNT"},
		{[]string{"list", "extra"}, 2, "unexpected argument"},
		{[]string{"list", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"help"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			e, _, errb := sessionEnv(cliNow, map[string]string{"QQBOT_SESSION_DIR": t.TempDir()})
			assert.Equal(t, tt.code, cmdSession(context.Background(), tt.args, e))
			assert.Contains(t, errb.String(), tt.msg)
		})
	}
}

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	e, _, _ := sessionEnv(cliNow, nil)
	// "--" ends the flags: an account may start with a dash.
	code := cmdSession(context.Background(), []string{"show", "--session-dir", t.TempDir(), "--", "-odd"}, e)
	assert.Equal(t, 1, code)
}
