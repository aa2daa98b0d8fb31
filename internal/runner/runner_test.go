package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/internal/testutil"
)

// waitFor bounds every wait for an asynchronous condition.
const waitFor = 15 * time.Second

// apps are the fake gateway's accounts: app id → secret.
var apps = map[string]string{"101": "sec-101", "102": "sec-102", "103": "sec-103", "104": "sec-104"}

func accountID(app string) string { return "bot-" + app }

// acct is one account of a config file the test writes; extra are more
// lines of the account, indented by the caller's YAML ("    key: value").
type acct struct {
	app   string
	extra string
}

// newGateway is a fake gateway for apps whose session_start_limit lets
// IDENTIFYs go at once (max_concurrency 1 spaces them 5 s apart).
func newGateway(t testing.TB) *gatewaytest.Server {
	limit := gatewaytest.DefaultSessionStartLimit
	limit.MaxConcurrency = 64
	return gatewaytest.NewTestServer(t, gatewaytest.Options{Apps: apps, SessionStartLimit: limit})
}

// rig is a runner on a fake gateway, with its config file.
type rig struct {
	t      *testing.T
	srv    *gatewaytest.Server
	dir    string // session dir
	path   string // config file
	out    *testutil.SyncBuffer
	reload chan struct{}
	r      *Runner
	cancel context.CancelFunc
	errc   chan error
}

func newRig(t *testing.T, mutate func(*Options), accounts ...acct) *rig {
	t.Helper()
	g := &rig{
		t:      t,
		srv:    newGateway(t),
		dir:    t.TempDir(),
		out:    &testutil.SyncBuffer{},
		reload: make(chan struct{}, 1),
	}
	g.path = filepath.Join(t.TempDir(), "qqgate.yaml")
	g.write(accounts...)
	opts := Options{
		ConfigPath:     g.path,
		Stdout:         g.out,
		Reload:         g.reload,
		ReloadDebounce: 10 * time.Millisecond,
		Client: func(c *client.Config) {
			c.Backoff.Initial = time.Millisecond
			c.Backoff.Max = 5 * time.Millisecond
		},
		HandlerBackoff: handler.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Jitter: -1},
	}
	if os.Getenv("QQGATE_TEST_LOG") != "" {
		opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).With().Timestamp().Logger()
	}
	if mutate != nil {
		mutate(&opts)
	}
	r, err := New(opts)
	require.NoError(t, err)
	g.r = r
	return g
}

// config renders a config file of accounts on the rig's gateway.
func (g *rig) config(accounts ...acct) string {
	var b strings.Builder
	fmt.Fprintf(&b, "session_dir: %s\ndefaults:\n  api_base: %s\n  token_url: %s\naccounts:\n", g.dir, g.srv.URL(), g.srv.TokenURL())
	for _, a := range accounts {
		fmt.Fprintf(&b, "  - id: %s\n    app_id: %q\n    secret: %s\n", accountID(a.app), a.app, apps[a.app])
		b.WriteString(a.extra)
	}
	return b.String()
}

// write replaces the config file at once (a rename, as editors do), so a
// reload never reads it half written.
func (g *rig) write(accounts ...acct) { g.writeRaw(g.config(accounts...)) }

func (g *rig) writeRaw(text string) {
	g.t.Helper()
	tmp := g.path + ".tmp"
	require.NoError(g.t, os.WriteFile(tmp, []byte(text), 0o600))
	require.NoError(g.t, os.Rename(tmp, g.path))
}

// start runs the runner until the test ends.
func (g *rig) start() *rig {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.errc = make(chan error, 1)
	go func() { g.errc <- g.r.Run(ctx) }()
	g.t.Cleanup(func() {
		cancel()
		select {
		case <-g.errc:
		case <-time.After(waitFor):
			g.t.Errorf("Run did not return after cancel")
		}
	})
	return g
}

// runErr waits for Run to return by itself.
func (g *rig) runErr() error {
	g.t.Helper()
	select {
	case err := <-g.errc:
		g.errc <- err // for the cleanup
		return err
	case <-time.After(waitFor):
		g.t.Fatal("Run did not return")
		return nil
	}
}

// running reports whether Run is still going.
func (g *rig) running() bool {
	select {
	case err := <-g.errc:
		g.errc <- err
		return false
	default:
		return true
	}
}

// waitGateway waits for cond over the fake gateway's state.
func (g *rig) waitGateway(what string, cond func() bool) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(g.t, g.srv.Wait(ctx, cond), "waiting for %s", what)
}

// connected waits until every app's session is carried by a connection
// and its account is connected in the runner's Snapshot.
func (g *rig) connected(appIDs ...string) {
	g.t.Helper()
	g.waitGateway("sessions of "+strings.Join(appIDs, ","), func() bool {
		for _, app := range appIDs {
			if s := g.srv.Session(app); s == nil || s.Conn() == 0 {
				return false
			}
		}
		return true
	})
	require.Eventually(g.t, func() bool {
		for _, app := range appIDs {
			st, ok := g.state(accountID(app))
			if !ok || st.Status.State != client.StateConnected {
				return false
			}
		}
		return true
	}, waitFor, time.Millisecond, "accounts connected in the Snapshot")
}

func (g *rig) state(id string) (ops.AccountState, bool) {
	for _, st := range g.r.Snapshot() {
		if st.ID == id {
			return st, true
		}
	}
	return ops.AccountState{}, false
}

func (g *rig) ids() []string {
	var out []string
	for _, st := range g.r.Snapshot() {
		out = append(out, st.ID)
	}
	return out
}

// conn is what must not change for an account a reload leaves alone.
type conn struct {
	session string
	conn    int
	seq     uint64
	resumes int
}

func (g *rig) conns(appIDs ...string) map[string]conn {
	out := map[string]conn{}
	for _, app := range appIDs {
		s := g.srv.Session(app)
		require.NotNil(g.t, s, app)
		st, ok := g.state(accountID(app))
		require.True(g.t, ok, app)
		out[app] = conn{session: s.ID(), conn: s.Conn(), seq: st.Status.LastSeqReceived, resumes: s.Resumes()}
	}
	return out
}

// emit sends n messages to app's session and waits until the runner
// committed them.
func (g *rig) emit(app string, n int) {
	g.t.Helper()
	s := g.srv.Session(app)
	var last uint64
	for range n {
		seq, err := s.EmitMessage("AT_MESSAGE_CREATE")
		require.NoError(g.t, err)
		last = seq
	}
	require.Eventually(g.t, func() bool {
		st, _ := g.state(accountID(app))
		return st.Status.LastSeqHandled >= last
	}, waitFor, time.Millisecond, "%s committed seq %d", app, last)
}

// reloaded waits until the runner applied n reloads in all.
func (g *rig) reloaded(n uint64) {
	g.t.Helper()
	require.Eventually(g.t, func() bool { return g.r.Reloads().Applied >= n }, waitFor, time.Millisecond, "reload %d applied", n)
}

func TestRunnerReload(t *testing.T) {
	a101, a102, a103, a104 := acct{app: "101"}, acct{app: "102"}, acct{app: "103"}, acct{app: "104"}
	g := newRig(t, nil, a101, a102, a103).start()
	g.connected("101", "102", "103")
	assert.Equal(t, []string{"bot-101", "bot-102", "bot-103"}, g.ids(), "Snapshot in file order")

	// Every account's events reach the shared stdout, as whole JSON lines
	// naming their account.
	for _, app := range []string{"101", "102", "103"} {
		g.emit(app, 2)
	}
	require.Eventually(t, func() bool {
		per := map[string]int{}
		for _, l := range testutil.ParseLines(t, g.out.String()) {
			per[l.Account]++
		}
		return per["bot-101"] == 3 && per["bot-102"] == 3 && per["bot-103"] == 3 // READY and two messages
	}, waitFor, time.Millisecond)
	for _, l := range testutil.ParseLines(t, g.out.String()) {
		assert.Contains(t, []string{"READY", "AT_MESSAGE_CREATE"}, l.Type)
	}
	before := g.conns("101", "102", "103")
	require.Equal(t, 3, g.srv.Connections())

	// Add a fourth: it connects; the three keep their connections and seqs.
	g.write(a101, a102, a103, a104)
	g.reloaded(1)
	g.connected("104")
	assert.Equal(t, before, g.conns("101", "102", "103"), "the three keep their connections")
	assert.Equal(t, 4, g.srv.Connections(), "one new connection only")
	assert.Len(t, g.srv.Identifies(), 4)
	assert.Equal(t, []string{"bot-101", "bot-102", "bot-103", "bot-104"}, g.ids())

	// Remove one: only it closes.
	g.write(a101, a103, a104)
	g.reloaded(2)
	g.waitGateway("102's connection closed", func() bool { return g.srv.Session("102").Conn() == 0 })
	assert.Equal(t, []string{"bot-101", "bot-103", "bot-104"}, g.ids())
	kept := g.conns("101", "103", "104")
	assert.Equal(t, before["101"], kept["101"])
	assert.Equal(t, before["103"], kept["103"])
	assert.Equal(t, 4, g.srv.Connections())

	// A malformed edit changes nothing and is reported.
	g.writeRaw("accounts: [\n")
	require.Eventually(t, func() bool { return g.r.Reloads().Failed == 1 }, waitFor, time.Millisecond)
	rs := g.r.Reloads()
	assert.Contains(t, rs.LastError, g.path)
	assert.Contains(t, rs.LastError, "not valid YAML")
	assert.EqualValues(t, 2, rs.Applied)
	// A well-formed file with a bad key is refused the same way, with its
	// line and key.
	bad := g.config(a101, a103) + "    colour: red\n"
	g.writeRaw(bad)
	require.Eventually(t, func() bool { return g.r.Reloads().Failed == 2 }, waitFor, time.Millisecond)
	wantLine := strings.Count(bad, "\n")
	assert.Contains(t, g.r.Reloads().LastError, fmt.Sprintf("%s:%d: accounts[1].colour: unknown key", g.path, wantLine))
	assert.Equal(t, kept, g.conns("101", "103", "104"), "a broken edit keeps the running set")
	assert.Equal(t, []string{"bot-101", "bot-103", "bot-104"}, g.ids())
	assert.Equal(t, 4, g.srv.Connections())

	// Changing one account restarts it alone; a fixed file clears the error.
	// New intents need a new session: it IDENTIFYs rather than resume.
	g.write(a101, a103, acct{app: "104", extra: "    intents: [public_guild_messages]\n"})
	g.reloaded(3)
	assert.Empty(t, g.r.Reloads().LastError)
	g.waitGateway("104 restarted", func() bool {
		s := g.srv.Session("104")
		return s.ID() != kept["104"].session && s.Conn() != 0
	})
	g.connected("104")
	assert.Equal(t, uint32(1<<30), g.srv.Session("104").Intents())
	after := g.conns("101", "103")
	assert.Equal(t, kept["101"], after["101"])
	assert.Equal(t, kept["103"], after["103"])

	// A change that leaves the gateway session as it was (the handler)
	// restarts the account, which resumes its session.
	g.emit("103", 1)
	seq103 := g.srv.Session("103").LastSeq()
	g.write(a101, acct{app: "103", extra: "    handler: {type: stdout, retries: 1}\n"}, acct{app: "104", extra: "    intents: [public_guild_messages]\n"})
	g.reloaded(4)
	g.waitGateway("103 resumed", func() bool { return g.srv.Session("103").Resumes() == 1 && g.srv.Session("103").Conn() != 0 })
	assert.Equal(t, kept["103"].session, g.srv.Session("103").ID())
	g.connected("103")
	st, _ := g.state("bot-103")
	assert.Equal(t, seq103+1, st.Status.LastSeqReceived, "resumed after its seq (RESUMED)")
	assert.Equal(t, kept["101"], g.conns("101")["101"])
	assert.True(t, g.running())
}

// TestRunnerSIGHUP: a reload request (SIGHUP) reads the file even when no
// file event fired.
func TestRunnerSIGHUP(t *testing.T) {
	g := newRig(t, func(o *Options) { o.ReloadDebounce = time.Hour }, acct{app: "101"}, acct{app: "102"}, acct{app: "103"}).start()
	g.connected("101", "102", "103")
	before := g.conns("101", "102", "103")
	g.write(acct{app: "101"}, acct{app: "102"}, acct{app: "103"}, acct{app: "104"})
	g.reload <- struct{}{}
	g.reloaded(1)
	g.connected("104")
	assert.Equal(t, before, g.conns("101", "102", "103"))

	// A request with an unchanged file changes nothing.
	g.reload <- struct{}{}
	g.reloaded(2)
	assert.Equal(t, 4, g.srv.Connections())
}

// metric returns the value of the sample named exactly series (name and
// labels), or -1 when absent.
func metric(t testing.TB, text, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, l)
			return v
		}
	}
	return -1
}

func (g *rig) opsURL() string {
	g.t.Helper()
	require.Eventually(g.t, func() bool { return g.r.Addr() != nil }, waitFor, time.Millisecond)
	return "http://" + g.r.Addr().String()
}

// TestRunnerFatal: a fatal close stops that account alone, marks it failed
// and turns /healthz 503; Run ends with ErrAllStopped once none is left.
// /metrics counts the events as they come.
func TestRunnerFatal(t *testing.T) {
	g := newRig(t, func(o *Options) { o.Listen = "127.0.0.1:0" }, acct{app: "101"}, acct{app: "102"}, acct{app: "103"}).start()
	base := g.opsURL()
	g.connected("101", "102", "103")

	code, body := testutil.Get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code, body)

	series := `qqgate_events_received_total{account="bot-101",type="AT_MESSAGE_CREATE"}`
	handled := `qqgate_events_handled_total{account="bot-101",type="AT_MESSAGE_CREATE"}`
	_, m := testutil.Get(t, base+"/metrics")
	assert.LessOrEqual(t, metric(t, m, series), 0.0, "no message yet")
	g.emit("101", 3)
	_, m = testutil.Get(t, base+"/metrics")
	assert.Equal(t, 3.0, metric(t, m, series))
	assert.Equal(t, 3.0, metric(t, m, handled))
	assert.Equal(t, 1.0, metric(t, m, `qqgate_connection_state{account="bot-101",state="connected"}`))
	g.emit("101", 2)
	_, m = testutil.Get(t, base+"/metrics")
	assert.Equal(t, 5.0, metric(t, m, series), "the counter moves")
	assert.Equal(t, 6.0, metric(t, m, `qqgate_last_seq_committed{account="bot-101"}`), "READY and five messages")

	before := g.conns("101", "103")
	g.srv.Session("102").CloseWith(4915, "bot banned")
	require.Eventually(t, func() bool {
		st, _ := g.state("bot-102")
		return st.State() == "failed" && !st.Running
	}, waitFor, time.Millisecond)
	st, _ := g.state("bot-102")
	assert.Contains(t, st.Fatal, "4915")
	code, body = testutil.Get(t, base+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	var h ops.Health
	require.NoError(t, json.Unmarshal([]byte(body), &h), body)
	assert.False(t, h.OK)
	for _, a := range h.Accounts {
		assert.Equal(t, a.ID != "bot-102", a.OK, a.ID)
	}
	_, m = testutil.Get(t, base+"/metrics")
	assert.Equal(t, 1.0, metric(t, m, `qqgate_account_fatal{account="bot-102"}`))
	assert.Equal(t, 4915.0, metric(t, m, `qqgate_last_close_code{account="bot-102"}`))

	// The others keep running, and so does Run.
	g.emit("103", 1)
	assert.Equal(t, before["101"], g.conns("101")["101"])
	assert.Equal(t, before["103"].conn, g.conns("103")["103"].conn)
	assert.True(t, g.running())
	code, body = testutil.Get(t, base+"/status")
	assert.Equal(t, http.StatusOK, code)
	var statuses []ops.AccountStatus
	require.NoError(t, json.Unmarshal([]byte(body), &statuses))
	require.Len(t, statuses, 3)
	assert.Equal(t, "failed", statuses[1].State)
	assert.NotContains(t, body, "sec-10", "never a secret")

	g.srv.Session("101").CloseWith(4915, "bot banned")
	g.srv.Session("103").CloseWith(4914, "bot offline")
	err := g.runErr()
	require.ErrorIs(t, err, ErrAllStopped)
	for _, id := range []string{"bot-101", "bot-102", "bot-103"} {
		assert.Contains(t, err.Error(), id)
	}
}

func TestRunnerExitOnFatal(t *testing.T) {
	g := newRig(t, func(o *Options) { o.ExitOnFatal = true; o.Listen = "127.0.0.1:0" },
		acct{app: "101"}, acct{app: "102"}, acct{app: "103"}).start()
	g.connected("101", "102", "103")
	g.srv.Session("102").CloseWith(4915, "bot banned")
	err := g.runErr()
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrAllStopped)
	assert.Contains(t, err.Error(), "bot-102")
	g.waitGateway("every connection closed", func() bool { return g.srv.LiveConnections() == 0 })
}

// committedWatch checks, every time it is called, that the committed seq
// of account id has not passed failSeq unless delivered(failSeq) already
// holds, and records whether it saw the account held back at failSeq-1.
type committedWatch struct {
	g         *rig
	id        string
	failSeq   uint64
	delivered func() bool
	sawHeld   bool
}

func (w *committedWatch) check() {
	st, _ := w.g.state(w.id)
	committed := st.Status.LastSeqHandled
	if committed >= w.failSeq {
		// Read after the snapshot: the delivery happened before the commit.
		require.True(w.g.t, w.delivered(), "seq %d committed before its handler succeeded", committed)
	} else if committed == w.failSeq-1 && st.Status.LastSeqReceived > w.failSeq {
		w.sawHeld = true
	}
}

func TestRunnerExecHandler(t *testing.T) {
	work := t.TempDir()
	script := filepath.Join(work, "handler.sh")
	// Fails seq 3 the first two times; records the others' stdin in order.
	require.NoError(t, os.WriteFile(script, []byte(`
stdin=$(cat)
if [ "$QQGATE_SEQ" = 3 ]; then
  n=$(cat "`+work+`/count" 2>/dev/null || echo 0)
  if [ "$n" -lt 2 ]; then
    echo $((n + 1)) > "`+work+`/count"
    echo "refusing seq 3" >&2
    exit 1
  fi
fi
printf '%s %s %s %s\n' "$QQGATE_ACCOUNT" "$QQGATE_SEQ" "$QQGATE_TYPE" "$QQGATE_ID" >> "`+work+`/env"
printf '%s\n' "$stdin" >> "`+work+`/events"
`), 0o600))
	handlerYAML := fmt.Sprintf("    handler: {type: exec, command: [sh, %q], timeout: 10s, concurrency: 1, retries: 3}\n", script)
	g := newRig(t, func(o *Options) {
		// Long enough a wait to watch the commit held back.
		o.HandlerBackoff = handler.Backoff{Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, Jitter: -1}
	}, acct{app: "101", extra: handlerYAML}, acct{app: "102"}).start()
	g.connected("101", "102")

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(work, name))
		if errors.Is(err, os.ErrNotExist) {
			return ""
		}
		require.NoError(t, err)
		return string(b)
	}
	s := g.srv.Session("101")
	var seqs []uint64
	for range 4 {
		seq, err := s.EmitMessage("C2C_MESSAGE_CREATE")
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	require.Equal(t, []uint64{2, 3, 4, 5}, seqs)
	w := &committedWatch{g: g, id: "bot-101", failSeq: 3, delivered: func() bool {
		return strings.Contains(read("env"), "bot-101 3 ")
	}}
	require.Eventually(t, func() bool {
		w.check()
		st, _ := g.state("bot-101")
		return st.Status.LastSeqHandled == 5
	}, waitFor, time.Millisecond)
	assert.True(t, w.sawHeld, "the commit was seen held before seq 3 while later events were received")
	assert.Equal(t, "2\n", read("count"), "two failed attempts")

	// In order, each once, with the environment and the stdout line form.
	env := strings.Split(strings.TrimSpace(read("env")), "\n")
	require.Len(t, env, 5)
	assert.Equal(t, "bot-101 1 READY ", env[0][:len("bot-101 1 READY ")])
	for i, e := range env[1:] {
		f := strings.Fields(e)
		require.Len(t, f, 4, e)
		assert.Equal(t, []string{"bot-101", strconv.Itoa(i + 2), "C2C_MESSAGE_CREATE"}, f[:3])
		assert.True(t, strings.HasPrefix(f[3], "C2C_MESSAGE_CREATE:"), f[3])
	}
	lines := testutil.ParseLines(t, read("events"))
	require.Len(t, lines, 5)
	for i, l := range lines {
		assert.Equal(t, uint64(i+1), l.Seq)
		assert.Equal(t, "bot-101", l.Account)
	}
	assert.JSONEq(t, string(s.Frames()[2].D), string(lines[2].Data), "the event's data as sent")

	st, _ := g.state("bot-101")
	assert.Zero(t, st.HandlerFailures)
	assert.Equal(t, uint64(4), st.HandledByType["C2C_MESSAGE_CREATE"])
	assert.Equal(t, uint64(5), st.HandlerLatency.Count)
	// The other account's events went to stdout, not to the script.
	for _, l := range testutil.ParseLines(t, g.out.String()) {
		assert.Equal(t, "bot-102", l.Account)
	}
}

// TestRunnerExecHandlerGivesUp: a handler failing past its retries is
// counted as failed and the stream goes on.
func TestRunnerExecHandlerGivesUp(t *testing.T) {
	work := t.TempDir()
	script := filepath.Join(work, "handler.sh")
	require.NoError(t, os.WriteFile(script, []byte(`cat > /dev/null
echo "$QQGATE_SEQ" >> "`+work+`/attempts"
[ "$QQGATE_SEQ" != 2 ]
`), 0o600))
	g := newRig(t, nil, acct{app: "101", extra: fmt.Sprintf("    handler: {type: exec, command: [sh, %q], retries: 2}\n", script)}).start()
	g.connected("101")
	g.emit("101", 2)
	st, _ := g.state("bot-101")
	assert.Equal(t, uint64(1), st.HandlerFailures)
	assert.Equal(t, uint64(1), st.HandledByType["AT_MESSAGE_CREATE"])
	b, err := os.ReadFile(filepath.Join(work, "attempts"))
	require.NoError(t, err)
	assert.Equal(t, "1\n2\n2\n2\n3\n", string(b), "seq 2 tried three times, then the stream goes on")
}

func TestRunnerHTTPHandler(t *testing.T) {
	var mu sync.Mutex
	var got []testutil.Line // every successful delivery, in order
	attempts := map[uint64]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var l testutil.Line
		if err := json.NewDecoder(r.Body).Decode(&l); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[l.Seq]++
		if l.Seq == 3 && attempts[l.Seq] == 1 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		got = append(got, l)
	}))
	t.Cleanup(ts.Close)
	delivered := func(seq uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range got {
			if l.Seq == seq {
				return true
			}
		}
		return false
	}
	g := newRig(t, func(o *Options) {
		o.HandlerBackoff = handler.Backoff{Initial: 30 * time.Millisecond, Max: 30 * time.Millisecond, Jitter: -1}
	}, acct{app: "101", extra: fmt.Sprintf("    handler: {type: http, url: %q, timeout: 5s}\n", ts.URL+"/events")}).start()
	g.connected("101")
	s := g.srv.Session("101")
	for range 4 {
		_, err := s.EmitMessage("GROUP_AT_MESSAGE_CREATE")
		require.NoError(t, err)
	}
	w := &committedWatch{g: g, id: "bot-101", failSeq: 3, delivered: func() bool { return delivered(3) }}
	require.Eventually(t, func() bool {
		w.check()
		st, _ := g.state("bot-101")
		return st.Status.LastSeqHandled == 5
	}, waitFor, time.Millisecond)
	assert.True(t, w.sawHeld, "the commit was seen held before seq 3")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 5)
	for i, l := range got {
		assert.Equal(t, uint64(i+1), l.Seq, "in order")
		assert.Equal(t, "bot-101", l.Account)
	}
	assert.Equal(t, 2, attempts[3])
	assert.Equal(t, 1, attempts[4])
	st, _ := g.state("bot-101")
	assert.Zero(t, st.HandlerFailures)
}

// TestRunnerNoFile: with Options.Config and no file, a reload request
// does nothing, and Run ends cleanly on cancel.
func TestRunnerNoFile(t *testing.T) {
	srv := newGateway(t)
	cfg := &Config{SessionDir: t.TempDir(), Accounts: []Account{{
		ID: "solo", AppID: "101", Secret: "sec-101", APIBase: srv.URL(), TokenURL: srv.TokenURL(), Shard: [2]int{0, 1},
	}}}
	reload := make(chan struct{}, 1)
	r, err := New(Options{Config: cfg, Stdout: &testutil.SyncBuffer{}, Reload: reload})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), waitFor)
	defer wcancel()
	require.NoError(t, srv.Wait(wctx, func() bool { s := srv.Session("101"); return s != nil && s.Conn() != 0 }))
	reload <- struct{}{}
	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	assert.Zero(t, r.Reloads().Applied)
	assert.Nil(t, r.Addr())
	require.NoError(t, srv.Wait(wctx, func() bool { return srv.LiveConnections() == 0 }))
}

func TestNewErrors(t *testing.T) {
	_, err := New(Options{})
	assert.Error(t, err, "no account")
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("accounts: []\n"), 0o600))
	_, err = New(Options{ConfigPath: path})
	assert.True(t, IsConfigError(err))
}

func TestRunnerReloadRetriesAFailedAccount(t *testing.T) {
	g := newRig(t, func(o *Options) { o.ReloadDebounce = time.Hour }, acct{app: "101"}, acct{app: "102"}).start()
	g.connected("101", "102")
	before := g.conns("101")
	g.srv.Session("102").CloseWith(4915, "bot banned")
	require.Eventually(t, func() bool {
		st, _ := g.state("bot-102")
		return st.State() == "failed" && !st.Running
	}, waitFor, time.Millisecond)

	g.reload <- struct{}{} // the file is unchanged
	g.reloaded(1)
	require.Eventually(t, func() bool {
		st, _ := g.state("bot-102")
		return st.Running && st.Fatal == "" && st.Status.State.String() == "connected"
	}, waitFor, time.Millisecond, "the failed account runs again")
	assert.Equal(t, before, g.conns("101"), "the healthy account was not touched")
}

// TestRunnerEventTypesBounded: the per-type counters and their metric
// labels hold at most ops.MaxEventTypes types however many the gateway
// invents; the rest count under "other", and every event is still handled.
func TestRunnerEventTypesBounded(t *testing.T) {
	g := newRig(t, func(o *Options) { o.Listen = "127.0.0.1:0" }, acct{app: "101"}).start()
	base := g.opsURL()
	g.connected("101")
	s := g.srv.Session("101")
	const n = 200
	var last uint64
	for i := range n {
		seq, err := s.Emit(fmt.Sprintf("INVENTED_%03d_%s", i, strings.Repeat("X", 100)), map[string]int{"i": i})
		require.NoError(t, err)
		last = seq
	}
	require.Eventually(t, func() bool {
		st, _ := g.state("bot-101")
		return st.Status.LastSeqHandled >= last
	}, waitFor, time.Millisecond)
	st, _ := g.state("bot-101")
	assert.LessOrEqual(t, len(st.ReceivedByType), ops.MaxEventTypes+1)
	assert.LessOrEqual(t, len(st.HandledByType), ops.MaxEventTypes+1)
	var recv, handled uint64
	for typ, c := range st.ReceivedByType {
		recv += c
		assert.Equal(t, c, st.HandledByType[typ], typ)
	}
	for _, c := range st.HandledByType {
		handled += c
	}
	assert.Equal(t, uint64(n+1), recv, "READY and every invented event counted")
	assert.Equal(t, recv, handled)
	assert.Equal(t, uint64(1), st.ReceivedByType["READY"])
	assert.Positive(t, st.ReceivedByType[ops.OtherEventType])

	_, m := testutil.Get(t, base+"/metrics")
	assert.LessOrEqual(t, strings.Count(m, "qqgate_events_received_total{"), ops.MaxEventTypes+1)
	assert.Equal(t, float64(st.ReceivedByType[ops.OtherEventType]),
		metric(t, m, `qqgate_events_received_total{account="bot-101",type="other"}`))
}

// panicOn panics on writes holding its word and passes the others on.
type panicOn struct {
	word string
	out  *testutil.SyncBuffer
}

func (w panicOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.word) {
		panic("handler bug")
	}
	return w.out.Write(p)
}

// TestRunnerHandlerPanicIsAFailure: an event whose handler panics on every
// attempt counts as a handler failure, not as handled.
func TestRunnerHandlerPanicIsAFailure(t *testing.T) {
	out := &testutil.SyncBuffer{}
	g := newRig(t, func(o *Options) { o.Stdout = panicOn{word: "AT_MESSAGE_CREATE", out: out} }, acct{app: "101"}).start()
	g.connected("101")
	g.emit("101", 1)
	st, _ := g.state("bot-101")
	assert.Equal(t, uint64(1), st.HandlerFailures)
	assert.Zero(t, st.HandledByType["AT_MESSAGE_CREATE"])
	assert.Equal(t, uint64(1), st.HandledByType["READY"], "%+v %+v", st.HandledByType, st.ReceivedByType)
	assert.Equal(t, uint64(1), st.Status.HandlerErrors)
}

// TestRunnerDeliversOddIDs: events whose envelope id or type hold a NUL or
// a line break reach an exec handler (those variables quoted) and an http
// handler (those headers quoted): handled, not failed.
func TestRunnerDeliversOddIDs(t *testing.T) {
	work := t.TempDir()
	script := filepath.Join(work, "handler.sh")
	require.NoError(t, os.WriteFile(script, []byte(`cat > /dev/null
printf '%s %s\n' "$QQGATE_TYPE" "$QQGATE_ID" >> "`+work+`/env"
`), 0o600))
	var mu sync.Mutex
	var headers []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		headers = append(headers, r.Header.Get("X-QQGate-Type")+" "+r.Header.Get("X-QQGate-Id"))
	}))
	t.Cleanup(ts.Close)
	g := newRig(t, nil,
		acct{app: "101", extra: fmt.Sprintf("    handler: {type: exec, command: [sh, %q], retries: 0}\n", script)},
		acct{app: "102", extra: fmt.Sprintf("    handler: {type: http, url: %q, retries: 0}\n", ts.URL)}).start()
	g.connected("101", "102")
	for _, app := range []string{"101", "102"} {
		s := g.srv.Session(app)
		_, err := s.EmitWithID("C2C_MESSAGE_CREATE", "C2C:a\x00b", map[string]string{"content": "hi"})
		require.NoError(t, err)
		last, err := s.EmitWithID("ODD\r\nTYPE", "id\n2", map[string]string{"content": "hi"})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			st, _ := g.state(accountID(app))
			return st.Status.LastSeqHandled >= last
		}, waitFor, time.Millisecond)
		st, _ := g.state(accountID(app))
		assert.Zero(t, st.HandlerFailures, app)
		assert.Equal(t, uint64(1), st.HandledByType["C2C_MESSAGE_CREATE"], app)
		assert.Equal(t, uint64(1), st.HandledByType[ops.OtherEventType], app)
	}
	b, err := os.ReadFile(filepath.Join(work, "env"))
	require.NoError(t, err)
	assert.Equal(t, `C2C_MESSAGE_CREATE "C2C:a\x00b"`+"\n"+`"ODD\r\nTYPE" "id\n2"`+"\n", strings.TrimPrefix(string(b), "READY \n"))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"READY ", `C2C_MESSAGE_CREATE "C2C:a\x00b"`, `"ODD\r\nTYPE" "id\n2"`}, headers)
}
