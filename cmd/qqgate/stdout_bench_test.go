package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/runner"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// replayStream makes a session on a fresh fake gateway and logs n message
// events on it while no connection carries it, so a RESUME from seq 1
// streams them all (seqs 2 to n+1, then RESUMED) as fast as the server can
// write: the same stream for every reader. It is the fixture of the client
// package's benchmarks.
func replayStream(b *testing.B, n int) (*gatewaytest.Server, *gatewaytest.Session) {
	b.Helper()
	srv := gatewaytest.NewTestServer(b, gatewaytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(b, err)
	frame, err := wire.EncodeFrame(wire.OpIdentify, wire.Identify{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), Intents: 1 << 25, Shard: [2]int{0, 1}})
	require.NoError(b, err)
	require.NoError(b, ws.Write(ctx, websocket.MessageText, frame))
	sess, err := srv.WaitSession(ctx)
	require.NoError(b, err)
	sess.Drop()
	ws.CloseNow()
	for i := 0; i < n; i++ {
		_, err := sess.EmitMessage(wire.EventGroupAtMessageCreate)
		require.NoError(b, err)
	}
	return srv, sess
}

// bareEnvelope is the envelope of the bare loop: the five fields, d raw.
type bareEnvelope struct {
	Op int             `json:"op"`
	S  uint64          `json:"s"`
	T  string          `json:"t"`
	ID string          `json:"id"`
	D  json.RawMessage `json:"d"`
}

// bareLoop reads the replay of sess with nothing but coder/websocket's
// conn.Read and encoding/json, and returns the time from the first event
// to RESUMED.
func bareLoop(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WebSocketURL(), nil)
	require.NoError(b, err)
	defer ws.CloseNow()
	ws.SetReadLimit(client.DefaultMaxMessageBytes)
	frame, err := wire.EncodeFrame(wire.OpResume, wire.Resume{Token: wire.TokenPrefix + srv.Token(gatewaytest.DefaultAppID), SessionID: sess.ID(), Seq: 1})
	require.NoError(b, err)
	require.NoError(b, ws.Write(ctx, websocket.MessageText, frame))
	var start time.Time
	events := 0
	for {
		_, data, err := ws.Read(ctx)
		require.NoError(b, err)
		var env bareEnvelope
		require.NoError(b, json.Unmarshal(data, &env))
		if env.Op != int(wire.OpDispatch) {
			continue
		}
		if env.T == wire.EventResumed {
			break
		}
		if events == 0 {
			start = time.Now()
		}
		events++
	}
	elapsed := time.Since(start)
	require.Equal(b, n, events)
	return elapsed
}

// drainLines reads r in large chunks, as a fast consumer of `qqgate run`
// would, until it has seen want lines. It returns the time from the first
// byte to the last line, and checks that the first line is the first
// replayed event and the last one RESUMED.
func drainLines(r io.Reader, want int) (time.Duration, error) {
	buf := make([]byte, 256<<10)
	var start time.Time
	var first, tail []byte
	lines := 0
	for lines < want {
		n, err := r.Read(buf)
		if n > 0 {
			if start.IsZero() {
				start = time.Now()
			}
			chunk := buf[:n]
			lines += bytes.Count(chunk, []byte{'\n'})
			if first == nil {
				if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
					first = append([]byte(nil), chunk[:i]...)
				}
			}
			// Keep the end of the stream, enough for the last line.
			tail = append(tail, chunk[max(0, n-4096):]...)
			if len(tail) > 8192 {
				tail = append(tail[:0], tail[len(tail)-4096:]...)
			}
		}
		if err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	var l testutil.Line
	if err := json.Unmarshal(first, &l); err != nil || l.Seq != 2 || l.Type != wire.EventGroupAtMessageCreate {
		return 0, errors.New("first line is not the first replayed event: " + string(first))
	}
	tail = bytes.TrimSuffix(tail, []byte{'\n'})
	last := tail[bytes.LastIndexByte(tail, '\n')+1:]
	if err := json.Unmarshal(last, &l); err != nil || l.Type != wire.EventResumed {
		return 0, errors.New("last line is not RESUMED: " + string(last))
	}
	return elapsed, nil
}

// saveResumable writes the record that makes the account resume sess from
// seq 1.
func saveResumable(b *testing.B, dir string, sess *gatewaytest.Session) {
	b.Helper()
	store, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
	require.NoError(b, err)
	defer store.Close()
	require.NoError(b, store.SaveNow(context.Background(), sessionstore.Record{AccountID: gatewaytest.DefaultAppID,
		AppID: gatewaytest.DefaultAppID, SessionID: sess.ID(), LastSeq: 1, HasSeq: true}))
}

// runBinary runs the built `qqgate run` on the replay of sess, its stdout
// a pipe drained by drainLines, and returns the time from the first line
// to RESUMED and the process's CPU time.
func runBinary(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) (time.Duration, time.Duration) {
	b.Helper()
	dir := b.TempDir()
	saveResumable(b, dir, sess)
	cmd := exec.Command(qqgateBinary(b), "run", "--api-base", srv.URL(), "--token-url", srv.TokenURL(),
		"--session-dir", dir, "--log-level", "error")
	cmd.Env = []string{"QQBOT_APP_ID=" + gatewaytest.DefaultAppID, "QQBOT_CLIENT_SECRET=" + gatewaytest.DefaultSecret, "HOME=" + dir}
	stderr := &testutil.SyncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	elapsed, derr := drainLines(out, n+1)
	cpu, cerr := procCPU(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() { _, _ = io.Copy(io.Discard, out) }() // until the process exits
	werr := cmd.Wait()
	require.NoError(b, derr, "stderr:\n%s", stderr.String())
	require.NoError(b, cerr)
	require.NoError(b, werr, "stderr:\n%s", stderr.String())
	return elapsed, cpu
}

// runInProcess runs the runner of `qqgate run` in this process on the
// replay of sess, with the stdout handler writing to a pipe drained by
// drainLines, and returns the time from the first line to RESUMED. Its
// CPU profile (go test -cpuprofile) covers the whole path.
func runInProcess(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) time.Duration {
	b.Helper()
	dir := b.TempDir()
	saveResumable(b, dir, sess)
	pr, pw, err := os.Pipe()
	require.NoError(b, err)
	defer pr.Close()
	r, err := runner.New(runner.Options{
		Config: &runner.Config{SessionDir: dir, Accounts: []runner.Account{{
			ID: gatewaytest.DefaultAppID, AppID: gatewaytest.DefaultAppID, Secret: gatewaytest.DefaultSecret, SecretFrom: "secret",
			APIBase: srv.URL(), TokenURL: srv.TokenURL(), Shard: [2]int{0, 1}, Handler: handler.Spec{Type: handler.TypeStdout},
		}}},
		Stdout: pw,
		Logger: zerolog.Nop(),
		Getenv: func(string) string { return "" },
	})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		runErr <- r.Run(ctx)
		pw.Close()
	}()
	elapsed, derr := drainLines(pr, n+1)
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }() // until the runner is done
	require.NoError(b, <-runErr)
	require.NoError(b, derr)
	return elapsed
}

// BenchmarkRunStdout measures the `qqgate run` stdout path (fake gateway,
// client, stdout handler writing JSON lines to a pipe that the benchmark
// drains) against the bare loop (coder/websocket conn.Read and
// encoding/json into the five-field envelope) on the same replay stream
// of b.N message events, one after the other in each iteration. Both are
// timed from their first event to the end of the stream. It reports
// events/s of each and run/bare, the ratio of the two; "binary" runs the
// built qqgate as a subprocess (and reports its CPU time per event),
// "inprocess" the same runner inside the benchmark process.
func BenchmarkRunStdout(b *testing.B) {
	for _, mode := range []string{"binary", "inprocess"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "binary" {
				qqgateBinary(b) // built before any timing
			}
			b.StopTimer()
			srv, sess := replayStream(b, b.N)
			b.StartTimer()
			bare := bareLoop(b, srv, sess, b.N)
			b.StopTimer()
			srv.Close()
			srv, sess = replayStream(b, b.N)
			b.StartTimer()
			var run, cpu time.Duration
			if mode == "binary" {
				run, cpu = runBinary(b, srv, sess, b.N)
			} else {
				run = runInProcess(b, srv, sess, b.N)
			}
			b.StopTimer()
			srv.Close()
			bareRate := float64(b.N) / bare.Seconds()
			runRate := float64(b.N) / run.Seconds()
			b.ReportMetric(bareRate, "bare-events/s")
			b.ReportMetric(runRate, "run-events/s")
			b.ReportMetric(runRate/bareRate, "run/bare")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "run-cpu-µs/event")
			}
		})
	}
}
