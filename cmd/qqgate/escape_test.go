package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/sessionstore"
)

// hostile holds what a terminal acts on: ESC sequences (clear, title,
// colour), BEL, BS, CR, DEL, the 8-bit CSI, a bidi override.
const hostile = "\x1b[2J\x1b]0;owned\a\x1b[31mFAKE OK\b\r\x7f\u009b1m\u202egnp.exe"

// assertTermSafe checks that out holds no character a terminal would act
// on (line ends aside) and no byte that is not UTF-8.
func assertTermSafe(t *testing.T, out []byte, what string) {
	t.Helper()
	require.True(t, utf8.Valid(out), "%s is not UTF-8: %q", what, out)
	for _, r := range string(out) {
		bad := (r < 0x20 && r != '\n' && r != '\r') || (0x7f <= r && r <= 0x9f) ||
			r == '\u061c' || r == '\u200e' || r == '\u200f' || (0x202a <= r && r <= 0x202e) || (0x2066 <= r && r <= 0x2069)
		if bad {
			t.Errorf("%s prints %U raw: %q", what, r, out)
			return
		}
	}
}

func TestTermSafe(t *testing.T) {
	assert.Equal(t, "plain text, 中文, back\\slash", termSafe("plain text, 中文, back\\slash"))
	assert.Equal(t, `\x1b[2J\a\b\r\n\t\x7f\u009b\u202e\xff\xfe ok `+"\ufffd",
		termSafe("\x1b[2J\a\b\r\n\t\x7f\u009b\u202e\xff\xfe ok \ufffd"), "a real U+FFFD is kept")
	assert.Equal(t, "-", cell(""))
	assert.Equal(t, `a b \x1b[31m`, cell("a\n\tb \x1b[31m"))

	in := []byte("{\"a\":\"x\u009by\x7f\u202e\xff\",\n \"b\":[1, 2]}")
	out := jsonTermSafe(in)
	assertTermSafe(t, out, "jsonTermSafe")
	var got, want map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	require.NoError(t, json.Unmarshal(in, &want))
	assert.Equal(t, want, got, "the same value")
	clean := []byte(`{"a":"b"}`)
	assert.Equal(t, clean, jsonTermSafe(clean))
}

// TestStatusEscapesControlCharacters: `qqgate status` prints the strings a
// runner (or anything answering at --url) serves with every control and
// bidi character escaped, in the table, in --json and in errors.
func TestStatusEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	bin := qqgateBinary(t)
	accounts, err := json.Marshal([]ops.AccountStatus{{
		ID: "bot" + hostile, AppID: "1", Running: true, State: "connected" + hostile,
		SessionID: "sess" + hostile, LastError: "token endpoint said: " + hostile,
	}, {
		ID: "dead", State: "failed", Fatal: "close 4914: " + hostile,
	}})
	require.NoError(t, err)
	// encoding/json escapes C0 controls but keeps DEL, C1 and the bidi
	// characters raw; add a byte that is not UTF-8 as well.
	body := bytes.Replace(accounts, []byte(`"app_id":"1"`), []byte("\"app_id\":\"1\x9b31m\""), 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok/status", func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	mux.HandleFunc("/bad/status", func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 500 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "\x1b[2J\x1b[32mall good\a")
		buf.Flush()
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	run := func(args ...string) (stdout []byte, stderr string, err error) {
		cmd := exec.Command(bin, append([]string{"status"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		return out.Bytes(), errb.String(), err
	}

	out, stderr, err := run("--url", hs.URL+"/ok")
	require.NoError(t, err, stderr)
	assertTermSafe(t, out, "the status table")
	assert.Contains(t, string(out), `bot\x1b[2J\x1b]0;owned\a\x1b[31mFAKE`)
	assert.Contains(t, string(out), `close 4914: \x1b[2J`)
	assert.Len(t, strings.Split(strings.TrimRight(string(out), "\n"), "\n"), 3, "a row per account: %s", out)

	out, stderr, err = run("--url", hs.URL+"/ok", "--json")
	require.NoError(t, err, stderr)
	assertTermSafe(t, out, "status --json")
	var got []ops.AccountStatus
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got, 2)
	assert.Equal(t, "bot"+hostile, got[0].ID, "the JSON still holds the values")
	assert.Equal(t, "1\uFFFD31m", got[0].AppID)

	out, stderr, err = run("--url", hs.URL+"/bad")
	require.Error(t, err)
	assert.Empty(t, out)
	assertTermSafe(t, []byte(stderr), "the error line")
	assert.Contains(t, stderr, `500 \x1b[2J\x1b[32mall good\a`)
}

// plantRecord writes a session record file as anyone with access to the
// directory could, for an account id holding terminal controls.
func plantRecord(t *testing.T, dir, account, session string, savedAt time.Time) {
	t.Helper()
	ms := savedAt.UnixMilli()
	rec := fmt.Sprintf(`{"sessionId":%s,"lastSeq":7,"lastConnectedAt":%d,"savedAt":%d,"intentLevelIndex":0,"accountId":%s,"note":"x`+"\u009b\x9b"+`"}`,
		jsonString(t, session), ms, ms, jsonString(t, account))
	require.NoError(t, os.WriteFile(filepath.Join(dir, sessionstore.FileName(account)), []byte(rec), 0o600))
}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

// TestSessionCommandsEscapeControlCharacters: records and file names in
// the session directory (which any process with access may plant) reach
// the terminal escaped: the list table (on a terminal), its JSON lines,
// show and cleanup.
func TestSessionCommandsEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	bin := qqgateBinary(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	evil := "evil" + hostile
	plantRecord(t, dir, evil, "sess"+hostile, time.Now())
	plantRecord(t, dir, "stale", "old", time.Now().Add(-time.Hour))
	badName := filepath.Join(dir, "session-\x1b[2J\x1b]0;owned\a.json")
	require.NoError(t, os.WriteFile(badName, []byte("{not json"), 0o600))
	past := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(badName, past, past))

	session := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"session"}, args...)...)
		cmd.Env = append(os.Environ(), "QQBOT_SESSION_DIR="+dir, "HOME="+dir)
		return cmd
	}
	run := func(args ...string) ([]byte, string) {
		t.Helper()
		cmd := session(args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), "%v: %s", args, errb.String())
		return out.Bytes(), errb.String()
	}

	// JSON lines (stdout is not a terminal).
	out, stderr := run("list")
	assertTermSafe(t, out, "session list (JSON)")
	assertTermSafe(t, []byte(stderr), "session list's stderr")
	var accounts []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ll listLine
		require.NoError(t, json.Unmarshal([]byte(l), &ll), l)
		if ll.ListRecord != nil { // nil for a file that does not parse
			accounts = append(accounts, ll.AccountID)
		}
	}
	assert.Contains(t, accounts, evil, "the JSON still holds the value")

	// show: the record as JSON, unknown fields included.
	out, _ = run("show", evil)
	assertTermSafe(t, out, "session show")
	var shown map[string]any
	require.NoError(t, json.Unmarshal(out, &shown))
	assert.Equal(t, evil, shown["accountId"])

	// The table, on a terminal.
	tout, stderr, err := runOnTerminal(t, session("list"))
	require.NoError(t, err, stderr)
	assertTermSafe(t, tout, "session list (table)")
	assert.Contains(t, string(tout), `evil\x1b[2J\x1b]0;owned\a\x1b[31mFAKE OK\b\r\x7f\u009b1m\u202egnp.exe`)
	assert.Contains(t, string(tout), `session-\x1b[2J\x1b]0;owned\a.json`, "the bad file, named escaped")

	// cleanup prints the names of what it removed.
	out, _ = run("cleanup")
	assertTermSafe(t, out, "session cleanup")
	assert.Contains(t, string(out), `session-\x1b[2J\x1b]0;owned\a.json`)
}
