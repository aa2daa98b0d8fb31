package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// TestRunShutdownBoundedWhenStdoutIsStuck stops a runner whose stdout
// handler is stuck in a write to a pipe nobody reads (it ignores its
// context): the process still exits soon after --shutdown-timeout, the
// event in hand stays uncommitted, and the next run gets it again.
func TestRunShutdownBoundedWhenStdoutIsStuck(t *testing.T) {
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	cmd := exec.Command(qqgateBinary(t), "run", "--api-base", srv.URL(), "--token-url", srv.TokenURL(),
		"--session-dir", dir, "--log-level", "warn", "--shutdown-timeout", "200ms")
	cmd.Env = []string{"QQBOT_APP_ID=" + gatewaytest.DefaultAppID, "QQBOT_CLIENT_SECRET=" + gatewaytest.DefaultSecret, "HOME=" + dir}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &testutil.SyncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	r := bufio.NewReaderSize(out, 64<<10)
	line, err := r.ReadString('\n')
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	var ready testutil.Line
	require.NoError(t, json.Unmarshal([]byte(line), &ready))
	require.Equal(t, wire.EventReady, ready.Type)
	sess := srv.Session(gatewaytest.DefaultAppID)
	require.NotNil(t, sess)

	// One line far larger than a pipe's buffer: once its first bytes
	// arrive, the write is in progress and cannot finish while nobody
	// reads.
	big := strings.Repeat("x", 512<<10)
	seq, err := sess.Emit(wire.EventC2CMessageCreate, map[string]string{"content": big})
	require.NoError(t, err)
	head := make([]byte, 4096)
	_, err = io.ReadFull(r, head)
	require.NoError(t, err)
	require.Contains(t, string(head), `"type":"C2C_MESSAGE_CREATE"`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		exited <- err
		assert.NoError(t, err, "a stop is still a graceful one; stderr:\n%s", stderr.String())
	case <-time.After(procWait):
		t.Fatalf("qqgate did not exit after SIGTERM with a stuck handler\nstderr:\n%s", stderr.String())
	}
	assert.Contains(t, stderr.String(), "abandon")

	// The stuck event was not committed; the session stays resumable.
	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
	require.NoError(t, err)
	defer st.Close()
	rec, err := st.Load(context.Background(), gatewaytest.DefaultAppID, gatewaytest.DefaultAppID)
	require.NoError(t, err)
	assert.Equal(t, sess.ID(), rec.SessionID)
	assert.Equal(t, ready.Seq, rec.LastSeq, "the event in hand stays uncommitted")

	// The next run resumes and gets it again.
	p := startRun(t, srv, dir, gatewaytest.DefaultSecret, "--log-level", "warn")
	got := p.until(wire.EventResumed)
	require.NotEmpty(t, got)
	assert.Equal(t, seq, got[0].Seq, "the abandoned event is delivered again")
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait())
}
