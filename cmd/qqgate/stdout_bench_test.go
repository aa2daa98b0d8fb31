package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/runner"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/internal/testutil/replay"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// span is one measured stretch of a stream: from its first event to its
// end, in wall time and in CPU time (of every process involved, the fake
// gateway's included).
type span struct{ wall, cpu time.Duration }

func (s *span) add(o span) { s.wall += o.wall; s.cpu += o.cpu }

// selfCPU is this process's user and system CPU time so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bareLoop times the bare loop (replay.BareRead) from its first event
// to RESUMED.
func bareLoop(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) span {
	b.Helper()
	var start time.Time
	var cpu0 time.Duration
	events := replay.BareRead(b, srv, sess, func() { start, cpu0 = time.Now(), selfCPU(b) })
	sp := span{wall: time.Since(start), cpu: selfCPU(b) - cpu0}
	require.Equal(b, n, events)
	return sp
}

// drainLines reads r in large chunks, as a fast consumer of `qqgate run`
// would, until it has seen want lines. It calls mark when the first bytes
// arrive and after the last line, and checks that the first line is the
// first replayed event and the last one RESUMED.
func drainLines(r io.Reader, want int, mark func()) error {
	buf := make([]byte, 256<<10)
	var first, tail []byte
	lines := 0
	for lines < want {
		n, err := r.Read(buf)
		if n > 0 {
			if first == nil && tail == nil {
				mark()
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
			return err
		}
	}
	mark()
	var l testutil.Line
	if err := json.Unmarshal(first, &l); err != nil || l.Seq != 2 || l.Type != wire.EventGroupAtMessageCreate {
		return errors.New("first line is not the first replayed event: " + string(first))
	}
	tail = bytes.TrimSuffix(tail, []byte{'\n'})
	last := tail[bytes.LastIndexByte(tail, '\n')+1:]
	if err := json.Unmarshal(last, &l); err != nil || l.Type != wire.EventResumed {
		return errors.New("last line is not RESUMED: " + string(last))
	}
	return nil
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

// marker records the two marks of drainLines: wall and CPU time at the
// first bytes and after the last line.
type marker struct {
	b     *testing.B
	pid   int // a child process whose CPU time counts too; 0 for none
	marks []span
}

func (m *marker) mark() {
	cpu := selfCPU(m.b)
	if m.pid != 0 {
		child, err := procCPU(m.pid)
		require.NoError(m.b, err)
		cpu += child
	}
	m.marks = append(m.marks, span{wall: time.Duration(time.Now().UnixNano()), cpu: cpu})
}

func (m *marker) span() span {
	require.Len(m.b, m.marks, 2)
	return span{wall: m.marks[1].wall - m.marks[0].wall, cpu: m.marks[1].cpu - m.marks[0].cpu}
}

// runBinary runs the built `qqgate run` on the replay of sess, its stdout
// a pipe drained by drainLines, and measures it from the first line to
// RESUMED; its CPU time counts that of the qqgate process (in clock ticks
// of 10ms).
func runBinary(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) span {
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
	m := &marker{b: b, pid: cmd.Process.Pid}
	derr := drainLines(out, n+1, m.mark)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() { _, _ = io.Copy(io.Discard, out) }() // until the process exits
	werr := cmd.Wait()
	require.NoError(b, derr, "stderr:\n%s", stderr.String())
	require.NoError(b, werr, "stderr:\n%s", stderr.String())
	return m.span()
}

// runInProcess runs the runner of `qqgate run` in this process on the
// replay of sess, with the stdout handler writing to a pipe drained by
// drainLines, and measures it from the first line to RESUMED. Its CPU
// profile (go test -cpuprofile) covers the whole path.
func runInProcess(b *testing.B, srv *gatewaytest.Server, sess *gatewaytest.Session, n int) span {
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
	m := &marker{b: b}
	derr := drainLines(pr, n+1, m.mark)
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }() // until the runner is done
	require.NoError(b, <-runErr)
	require.NoError(b, derr)
	return m.span()
}

// BenchmarkRunStdout measures the `qqgate run` stdout path (fake gateway,
// client, stdout handler writing JSON lines to a pipe that the benchmark
// drains) against the bare loop (coder/websocket conn.Read and
// encoding/json into the five-field envelope) on the same replay stream
// of b.N message events, side by side in one run: the two alternate for a
// few rounds, so that the load of a shared machine weighs on both alike,
// and the median round of each is reported. Each round is timed from its
// first event to the end of the stream.
//
// It reports the events/s of each and run/bare, their ratio; and the CPU
// time per event of each (every process involved: the fake gateway's
// share, the same for both, is included) and cpu-run/bare, the ratio of
// events per CPU second, which a loaded machine disturbs less than wall
// time. "binary" runs the built qqgate as a subprocess; "inprocess" runs
// the same runner inside the benchmark process, for a CPU profile of the
// whole path (go test -cpuprofile).
func BenchmarkRunStdout(b *testing.B) {
	const rounds = 5
	for _, mode := range []string{"binary", "inprocess"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "binary" {
				qqgateBinary(b) // built before any timing
			}
			b.StopTimer()
			srv, sess := replay.Stream(b, b.N)
			var bareRate, runRate, bareCPU, runCPU []float64
			for range rounds {
				b.StartTimer()
				bare := bareLoop(b, srv, sess, b.N)
				var run span
				if mode == "binary" {
					run = runBinary(b, srv, sess, b.N)
				} else {
					run = runInProcess(b, srv, sess, b.N)
				}
				b.StopTimer()
				bareRate = append(bareRate, float64(b.N)/bare.wall.Seconds())
				runRate = append(runRate, float64(b.N)/run.wall.Seconds())
				bareCPU = append(bareCPU, float64(bare.cpu.Nanoseconds())/1e3/float64(b.N))
				runCPU = append(runCPU, float64(run.cpu.Nanoseconds())/1e3/float64(b.N))
			}
			b.ReportMetric(median(bareRate), "bare-events/s")
			b.ReportMetric(median(runRate), "run-events/s")
			b.ReportMetric(median(runRate)/median(bareRate), "run/bare")
			b.ReportMetric(median(bareCPU), "bare-cpu-µs/event")
			b.ReportMetric(median(runCPU), "run-cpu-µs/event")
			b.ReportMetric(median(bareCPU)/median(runCPU), "cpu-run/bare")
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
