package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/wire"
)

func statusAccounts() []ops.AccountState {
	return []ops.AccountState{
		{
			ID: "shop-bot", AppID: "1020304", Running: true,
			Status: client.Status{
				State: client.StateConnected, SessionID: "sess-abc",
				LastSeqReceived: 120, LastSeqHandled: 118,
				Resumes: 3, Reconnects: 4, LastCloseCode: wire.CloseCode(4009),
				ConnectedSince: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			},
		},
		{
			ID: "support-bot", AppID: "1020305", Running: true,
			Status: client.Status{
				State: client.StateWaiting, NextRetry: 2 * time.Second,
				LastError: "dial tcp 127.0.0.1:1:\nconnection refused",
			},
		},
		{
			ID: "old-bot", AppID: "1020306", Fatal: "close 4914: bot is offline",
			Status: client.Status{State: client.StateFailed, LastCloseCode: wire.CloseCode(4914), Reconnects: 1},
		},
	}
}

// opsServer serves an ops.Server over loopback with the given accounts.
func opsServer(t *testing.T, accounts []ops.AccountState) *httptest.Server {
	t.Helper()
	s := ops.NewServer(func() []ops.AccountState { return accounts }, zerolog.Nop())
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func TestStatusTable(t *testing.T) {
	t.Parallel()
	hs := opsServer(t, statusAccounts())
	e, out, errb := sessionEnv(cliNow, nil)
	require.Equal(t, 0, cmdStatus(context.Background(), []string{"--url", hs.URL}, e), errb.String())
	assert.Empty(t, errb.String())

	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 4, out.String())
	assert.Equal(t, []string{"ACCOUNT", "STATE", "SESSION", "SEQ", "RECV", "SEQ", "COMMITTED", "RESUMES", "RECONNECTS", "LAST", "CLOSE", "ERROR"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"shop-bot", "connected", "sess-abc", "120", "118", "3", "4", "4009", "-"}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"support-bot", "waiting", "2s", "-", "0", "0", "0", "0", "-",
		"dial", "tcp", "127.0.0.1:1:", "connection", "refused"}, strings.Fields(lines[2]))
	assert.Equal(t, []string{"old-bot", "failed", "-", "0", "0", "0", "1", "4914",
		"close", "4914:", "bot", "is", "offline"}, strings.Fields(lines[3]))
	// Columns line up: the state column starts at the same offset.
	col := strings.Index(lines[0], "STATE")
	for _, l := range lines[1:] {
		assert.NotEqual(t, byte(' '), l[col], l)
		assert.Equal(t, byte(' '), l[col-1], l)
	}
}

func TestStatusJSONFlag(t *testing.T) {
	t.Parallel()
	hs := opsServer(t, statusAccounts())
	e, out, errb := sessionEnv(cliNow, nil)
	require.Equal(t, 0, cmdStatus(context.Background(), []string{"--url", hs.URL + "/status", "--json"}, e), errb.String())
	var got []ops.AccountStatus
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	require.Len(t, got, 3)
	for i, a := range statusAccounts() {
		assert.Equal(t, ops.StatusOf(a), got[i])
	}
	assert.True(t, strings.HasSuffix(out.String(), "]\n"))
	assert.Equal(t, 1, strings.Count(out.String(), "]\n"), "printed once")
}

func TestStatusListenAndEnv(t *testing.T) {
	t.Parallel()
	hs := opsServer(t, statusAccounts()[:1])
	addr := hs.Listener.Addr().String()

	e, out, errb := sessionEnv(cliNow, nil)
	require.Equal(t, 0, cmdStatus(context.Background(), []string{"--listen", addr}, e), errb.String())
	assert.Contains(t, out.String(), "shop-bot")

	e, out, errb = sessionEnv(cliNow, map[string]string{"QQGATE_LISTEN": addr})
	require.Equal(t, 0, cmdStatus(context.Background(), nil, e), errb.String())
	assert.Contains(t, out.String(), "shop-bot")

	// --url wins over the environment.
	e, out, errb = sessionEnv(cliNow, map[string]string{"QQGATE_LISTEN": "127.0.0.1:1"})
	require.Equal(t, 0, cmdStatus(context.Background(), []string{"--url", hs.URL + "/"}, e), errb.String())
	assert.Contains(t, out.String(), "shop-bot")
}

func TestStatusNoAccounts(t *testing.T) {
	t.Parallel()
	hs := opsServer(t, nil)
	e, out, errb := sessionEnv(cliNow, nil)
	require.Equal(t, 0, cmdStatus(context.Background(), []string{"--url", hs.URL}, e), errb.String())
	assert.Equal(t, "no accounts\n", out.String())
}

func TestStatusUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	e, out, errb := sessionEnv(cliNow, map[string]string{"QQGATE_LISTEN": addr})
	assert.Equal(t, 1, cmdStatus(context.Background(), nil, e))
	assert.Empty(t, out.String())
	msg := errb.String()
	assert.Equal(t, 1, strings.Count(msg, "\n"), msg)
	assert.True(t, strings.HasPrefix(msg, "qqgate: status: cannot reach the runner at http://"+addr+"/status: "), msg)
}

func TestStatusBadAnswers(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/broken/status", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/html/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("<html>not a runner</html>"))
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	e, _, errb := sessionEnv(cliNow, nil)
	assert.Equal(t, 1, cmdStatus(context.Background(), []string{"--url", hs.URL + "/broken"}, e))
	assert.Contains(t, errb.String(), "answered 500")
	assert.Equal(t, 1, strings.Count(errb.String(), "\n"))

	e, _, errb = sessionEnv(cliNow, nil)
	assert.Equal(t, 1, cmdStatus(context.Background(), []string{"--url", hs.URL + "/html", "--json"}, e))
	assert.Contains(t, errb.String(), "did not answer a status array")
}

func TestStatusUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--nope"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 1, `unexpected argument "extra"`},
		{[]string{"--listen", "127.0.0.1:1", "--url", "http://127.0.0.1:1"}, 1, "not both"},
		{[]string{"--listen", "no-port"}, 1, `--listen "no-port"`},
		{[]string{"--url", "ftp://x/"}, 1, `--url "ftp://x/"`},
	} {
		e, out, errb := sessionEnv(cliNow, nil)
		assert.Equal(t, tc.code, cmdStatus(context.Background(), tc.args, e), tc.args)
		assert.Contains(t, errb.String(), tc.msg, tc.args)
		assert.Empty(t, out.String())
	}
}

func TestStatusURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ listen, url, want string }{
		{"127.0.0.1:9464", "", "http://127.0.0.1:9464/status"},
		{":9464", "", "http://127.0.0.1:9464/status"},
		{"0.0.0.0:9464", "", "http://127.0.0.1:9464/status"},
		{"[::]:9464", "", "http://127.0.0.1:9464/status"},
		{"[::1]:9464", "", "http://[::1]:9464/status"},
		{"ops.internal:80", "", "http://ops.internal:80/status"},
		{"", "http://h:1", "http://h:1/status"},
		{"", "http://h:1/", "http://h:1/status"},
		{"", "https://h/qqgate/", "https://h/qqgate/status"},
		{"", "http://h:1/status", "http://h:1/status"},
	} {
		got, err := statusURL(tc.listen, tc.url)
		require.NoError(t, err, tc)
		assert.Equal(t, tc.want, got, tc)
	}
}
