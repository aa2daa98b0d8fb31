//go:build cluster

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/cluster/etcdtest"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// clusterWait bounds each wait of the cluster tests: a few lease TTLs.
const clusterWait = 60 * time.Second

// handled collects the (account, seq) pairs every runner's stdout
// handler printed.
type handled struct {
	mu   sync.Mutex
	seen map[string]map[uint64]bool
}

func (h *handled) parse(b []byte) (testutil.Line, error) {
	l, err := testutil.ParseLine(b)
	if err == nil {
		h.mu.Lock()
		if h.seen[l.Account] == nil {
			h.seen[l.Account] = map[uint64]bool{}
		}
		h.seen[l.Account][l.Seq] = true
		h.mu.Unlock()
	}
	return l, err
}

func (h *handled) has(account string, seq uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[account][seq]
}

type clusterRunner struct {
	p      *testutil.Proc[testutil.Line]
	listen string
}

type clusterEnv struct {
	t       *testing.T
	srv     *gatewaytest.Server
	etcd    *etcdtest.Server
	cfg     string
	apps    []string
	h       *handled
	emitted map[string][]uint64 // by account
}

func newClusterEnv(t *testing.T, accounts int) *clusterEnv {
	apps := map[string]string{}
	var ids []string
	for i := range accounts {
		id := fmt.Sprintf("%d", 2001+i)
		apps[id] = "s-" + id
		ids = append(ids, id)
	}
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{Apps: apps,
		SessionStartLimit: wire.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: 86_400_000, MaxConcurrency: 100}})
	etcd := etcdtest.Start(t)
	e := &clusterEnv{t: t, srv: srv, etcd: etcd, cfg: filepath.Join(t.TempDir(), "qqgate.yaml"), apps: ids,
		h: &handled{seen: map[string]map[uint64]bool{}}, emitted: map[string][]uint64{}}
	e.writeConfig(ids)
	return e
}

// writeConfig writes the shared configuration with the accounts of apps
// (and makes them the accounts the checks expect).
func (e *clusterEnv) writeConfig(apps []string) {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster:\n  etcd:\n    endpoints: [%s]\n    prefix: /qqgate-test\n    lease_ttl: 2s\n", e.etcd.Endpoint())
	fmt.Fprintf(&b, "defaults:\n  api_base: %s\n  token_url: %s\naccounts:\n", e.srv.URL(), e.srv.TokenURL())
	for _, id := range apps {
		fmt.Fprintf(&b, "  - id: bot-%s\n    app_id: %q\n    secret: s-%s\n", id, id, id)
	}
	writeFile(e.t, e.cfg, b.String())
	e.apps = apps
}

func (e *clusterEnv) start() *clusterRunner {
	e.t.Helper()
	listen := freeAddr(e.t)
	cmd := exec.Command(qqgateBinary(e.t), "run", "--config", e.cfg, "--listen", listen, "--log-level", "info")
	cmd.Env = []string{"HOME=" + e.t.TempDir(), "PATH=" + os.Getenv("PATH")}
	return &clusterRunner{p: testutil.Spawn(e.t, cmd, e.h.parse), listen: listen}
}

// status is r's /status, nil while r does not answer yet.
func (e *clusterEnv) status(r *clusterRunner) []ops.AccountStatus {
	e.t.Helper()
	resp, err := http.Get("http://" + r.listen + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []ops.AccountStatus
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// settled reports whether every account is carried by a connection and
// owned, the owners (as r sees them) holding counts that differ by at
// most one over want live runners.
func (e *clusterEnv) settled(r *clusterRunner, want int) bool {
	for _, app := range e.apps {
		s := e.srv.Session(app)
		if s == nil || s.Conn() == 0 {
			return false
		}
	}
	st := e.status(r)
	if len(st) != len(e.apps) {
		return false
	}
	counts := map[string]int{}
	for _, a := range st {
		if a.Owner == "" || a.State != "connected" {
			return false
		}
		counts[a.Owner]++
	}
	if len(counts) != want {
		return false
	}
	lo, hi := len(e.apps), 0
	for _, n := range counts {
		lo, hi = min(lo, n), max(hi, n)
	}
	return hi-lo <= 1
}

func (e *clusterEnv) owners(r *clusterRunner) map[string]string {
	out := map[string]string{}
	for _, a := range e.status(r) {
		out[a.ID] = a.Owner
	}
	return out
}

// emit pushes one message to every account's session.
func (e *clusterEnv) emit() {
	e.t.Helper()
	for _, app := range e.apps {
		seq, err := e.srv.Session(app).EmitMessage(wire.EventC2CMessageCreate)
		require.NoError(e.t, err)
		e.emitted["bot-"+app] = append(e.emitted["bot-"+app], seq)
	}
}

// noLoss waits until every emitted event was handled by some runner.
func (e *clusterEnv) noLoss() {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		for acc, seqs := range e.emitted {
			for _, s := range seqs {
				if !e.h.has(acc, s) {
					return false
				}
			}
		}
		return true
	}, clusterWait, 20*time.Millisecond, "an emitted event was never handled")
}

// oneSessionEach checks that no account ever identified twice (every
// reconnect was a RESUME) and no session ever had two live connections.
func (e *clusterEnv) oneSessionEach() {
	e.t.Helper()
	assert.Len(e.t, e.srv.Identifies(), len(e.apps), "every account identified once; every move was a RESUME")
	for _, app := range e.apps {
		assert.Zero(e.t, e.srv.Session(app).Takeovers(), "app %s: a second connection resumed the session while another carried it", app)
	}
}

func TestClusterFailoverHandoverOutage(t *testing.T) {
	e := newClusterEnv(t, 6)
	r1, r2, r3 := e.start(), e.start(), e.start()
	require.Eventually(t, func() bool { return e.settled(r1, 3) }, clusterWait, 20*time.Millisecond)
	counts := map[string]int{}
	for _, o := range e.owners(r2) {
		counts[o]++
	}
	assert.Len(t, counts, 3)
	for o, n := range counts {
		assert.Equal(t, 2, n, "runner %s", o)
	}
	e.emit()
	e.noLoss()

	// SIGKILL one: its accounts RESUME on the others.
	before := e.owners(r2)
	var victim string
	for _, o := range before {
		victim = o
		break
	}
	var killed *clusterRunner
	for _, r := range []*clusterRunner{r1, r2, r3} {
		if strings.HasSuffix(victim, ":"+fmt.Sprint(r.p.Cmd.Process.Pid)) {
			killed = r
		}
	}
	require.NotNil(t, killed)
	live := []*clusterRunner{}
	for _, r := range []*clusterRunner{r1, r2, r3} {
		if r != killed {
			live = append(live, r)
		}
	}
	start := time.Now()
	require.NoError(t, killed.p.Cmd.Process.Signal(syscall.SIGKILL))
	e.emit()
	require.Eventually(t, func() bool {
		if !e.settled(live[0], 2) {
			return false
		}
		for _, o := range e.owners(live[0]) {
			if o == victim {
				return false
			}
		}
		return true
	}, clusterWait, 20*time.Millisecond)
	t.Logf("failover: SIGKILL to every account RESUMED elsewhere: %s (lease_ttl 2s)", time.Since(start).Round(10*time.Millisecond))
	e.noLoss()
	e.oneSessionEach()

	// Restart it: balance comes back by graceful handover.
	start = time.Now()
	r4 := e.start()
	require.Eventually(t, func() bool { return e.settled(r4, 3) }, clusterWait, 20*time.Millisecond)
	t.Logf("join: a new runner took its share by handover in %s", time.Since(start).Round(10*time.Millisecond))
	e.emit()
	e.noLoss()
	e.oneSessionEach()

	// SIGTERM another (a rolling deploy): handover at once.
	term := live[0]
	rest := []*clusterRunner{live[1], r4}
	start = time.Now()
	require.NoError(t, term.p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, term.p.Wait(), "SIGTERM exits 0")
	e.emit()
	require.Eventually(t, func() bool { return e.settled(rest[0], 2) }, clusterWait, 20*time.Millisecond)
	t.Logf("rolling: SIGTERM to every account RESUMED elsewhere: %s", time.Since(start).Round(10*time.Millisecond))
	e.noLoss()
	e.oneSessionEach()

	// etcd goes away for longer than the lease: every runner stops its
	// accounts before its lease could have expired (never two owners),
	// says so on /healthz, and all come back after etcd returns.
	e.etcd.Stop()
	require.Eventually(t, func() bool {
		for _, app := range e.apps {
			if e.srv.Session(app).Conn() != 0 {
				return false
			}
		}
		return true
	}, clusterWait, 20*time.Millisecond, "accounts still connected while etcd is away")
	code, body := testutil.Get(t, "http://"+rest[0].listen+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, `"cluster"`)
	e.emit()
	start = time.Now()
	e.etcd.Restart()
	require.Eventually(t, func() bool { return e.settled(rest[1], 2) }, clusterWait, 20*time.Millisecond)
	t.Logf("outage: etcd back to every account RESUMED: %s", time.Since(start).Round(10*time.Millisecond))
	e.noLoss()
	e.oneSessionEach()
	code, _ = testutil.Get(t, "http://"+rest[0].listen+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	names := []string{}
	for o := range e.owners(rest[0]) {
		names = append(names, o)
	}
	sort.Strings(names)
}

// runnerName finds r's cluster name (hostname:pid) among the owners.
func runnerName(owners map[string]string, r *clusterRunner) string {
	for _, o := range owners {
		if strings.HasSuffix(o, ":"+fmt.Sprint(r.p.Cmd.Process.Pid)) {
			return o
		}
	}
	return ""
}

func TestClusterFencingPausedRunner(t *testing.T) {
	e := newClusterEnv(t, 4)
	// r1 connects every account before r2 joins: an account handed over
	// before its READY has no session to resume, and its new owner would
	// IDENTIFY it again (a start-up race, not what this test is about).
	r1 := e.start()
	require.Eventually(t, func() bool { return e.settled(r1, 1) }, clusterWait, 20*time.Millisecond)
	r2 := e.start()
	require.Eventually(t, func() bool { return e.settled(r2, 2) }, clusterWait, 20*time.Millisecond)
	owners := e.owners(r2)
	name1 := runnerName(owners, r1)
	require.NotEmpty(t, name1)
	var paused []string
	for acc, o := range owners {
		if o == name1 {
			paused = append(paused, acc)
		}
	}
	require.Len(t, paused, 2)
	e.emit()
	e.noLoss()

	// r1 pauses past its lease: r2 takes its accounts by RESUME (the
	// gateway closes r1's stale connections as r2 resumes).
	require.NoError(t, r1.p.Cmd.Process.Signal(syscall.SIGSTOP))
	e.emit()
	require.Eventually(t, func() bool {
		if !e.settled(r2, 1) {
			return false
		}
		for _, o := range e.owners(r2) {
			if o == name1 {
				return false
			}
		}
		return true
	}, clusterWait, 20*time.Millisecond)
	e.noLoss()
	resumes := map[string]int{}
	for _, app := range e.apps {
		resumes[app] = e.srv.Session(app).Resumes()
	}

	// r1 wakes: it must not act as owner (no RESUME of its old accounts
	// over r2's connections, no record write), then it rejoins and takes
	// its share back by graceful handover.
	require.NoError(t, r1.p.Cmd.Process.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool { return strings.Contains(r1.p.Stderr.String(), "lease lost") }, clusterWait, 20*time.Millisecond)
	require.Eventually(t, func() bool { return e.settled(r2, 2) }, clusterWait, 20*time.Millisecond)
	e.emit()
	e.noLoss()
	assert.Len(t, e.srv.Identifies(), len(e.apps), "every move was a RESUME")
	for _, app := range e.apps {
		takeovers := e.srv.Session(app).Takeovers()
		if contains(paused, "bot-"+app) {
			// The one takeover is r2's RESUME replacing the connection
			// the paused r1 could not close; r1 never took it back.
			assert.LessOrEqual(t, takeovers, 1, "app %s", app)
		} else {
			assert.Zero(t, takeovers, "app %s", app)
		}
	}
	assert.NotContains(t, r1.p.Stderr.String(), `"level":"panic"`)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestClusterSessionCommandsOnEtcd(t *testing.T) {
	e := newClusterEnv(t, 2)
	r := e.start()
	require.Eventually(t, func() bool { return e.settled(r, 1) }, clusterWait, 20*time.Millisecond)
	e.emit()
	e.noLoss()

	// `qqgate status` names each account's owner.
	env, out, errb := sessionEnv(time.Now(), nil)
	require.Equal(t, 0, cmdStatus(context.Background(), []string{"--listen", r.listen}, env), errb.String())
	name := runnerName(e.owners(r), r)
	require.NotEmpty(t, name)
	assert.Regexp(t, `(?m)^ACCOUNT\s+OWNER\s+STATE`, out.String())
	assert.Regexp(t, `(?m)^bot-2001\s+`+regexp.QuoteMeta(name)+`\s+connected`, out.String())
	out.Reset()

	require.NoError(t, r.p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, r.p.Wait())

	require.Equal(t, 0, cmdSession(context.Background(), []string{"list", "--json", "--config", e.cfg}, env), errb.String())
	assert.Contains(t, out.String(), "/qqgate-test/sessions/bot-2001")
	assert.Contains(t, out.String(), e.srv.Session("2001").ID())

	out.Reset()
	require.Equal(t, 0, cmdSession(context.Background(), []string{"show", "bot-2002", "--config", e.cfg}, env), errb.String())
	rec, err := sessionstore.ParseRecord(out.Bytes())
	require.NoError(t, err)
	assert.Equal(t, e.srv.Session("2002").ID(), rec.SessionID)
	assert.Equal(t, e.emitted["bot-2002"][0], rec.LastSeq, "the graceful close wrote the handled seq")

	out.Reset()
	require.Equal(t, 0, cmdSession(context.Background(), []string{"clear", "bot-2002", "--config", e.cfg}, env), errb.String())
	assert.Contains(t, out.String(), "cleared session record")
	assert.NotEqual(t, 0, cmdSession(context.Background(), []string{"show", "bot-2002", "--config", e.cfg}, env))
	assert.Contains(t, errb.String(), "no record")
}

func TestClusterReloadAddsAndRemovesAccounts(t *testing.T) {
	e := newClusterEnv(t, 4)
	all := e.apps
	e.writeConfig(all[:2])
	r1, r2 := e.start(), e.start()
	require.Eventually(t, func() bool { return e.settled(r1, 2) }, clusterWait, 20*time.Millisecond)

	// Two accounts more in the shared file: both runners reload it and the
	// four spread two and two.
	e.writeConfig(all)
	require.Eventually(t, func() bool { return e.settled(r2, 2) }, clusterWait, 20*time.Millisecond)
	e.emit()
	e.noLoss()

	// One removed: its owner stops it and releases it; nobody takes it.
	gone := e.srv.Session(all[0])
	e.writeConfig(all[1:])
	require.Eventually(t, func() bool { return gone.Conn() == 0 && e.settled(r1, 2) }, clusterWait, 20*time.Millisecond)
	for _, a := range e.status(r2) {
		assert.NotEqual(t, "bot-"+all[0], a.ID)
	}
	e.emit()
	e.noLoss()
	assert.Len(t, e.srv.Identifies(), 4)
}
