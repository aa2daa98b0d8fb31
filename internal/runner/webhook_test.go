package runner

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/cluster"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/wire"
)

const hookExtra = "    transport: webhook\n"

// webhookOn serves the webhook listener on loopback, any port.
func webhookOn(o *Options) { o.Webhook.Listen = "127.0.0.1:0" }

// platform is the fake platform pushing to the rig's webhook listener as app.
func (g *rig) platform(app string) *gatewaytest.WebhookPlatform {
	g.t.Helper()
	var addr string
	require.Eventually(g.t, func() bool {
		a := g.r.WebhookAddr()
		if a != nil {
			addr = a.String()
		}
		return a != nil
	}, waitFor, 1e6)
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: "http://" + addr + "/", AppID: app, Secret: apps[app]})
	require.NoError(g.t, err)
	g.t.Cleanup(p.Close)
	return p
}

// hookRunning waits until app's webhook account serves.
func (g *rig) hookRunning(app string) {
	g.t.Helper()
	require.Eventually(g.t, func() bool {
		st, ok := g.state(accountID(app))
		return ok && st.Webhook != nil && st.Running
	}, waitFor, 1e6, "webhook account %s running", app)
}

// lines waits until stdout holds n event lines of webhook accounts (ids
// given) and returns them.
func (g *rig) lines(n int, ids ...string) []testutil.Line {
	g.t.Helper()
	var out []testutil.Line
	require.Eventually(g.t, func() bool {
		out = out[:0]
		for _, l := range testutil.ParseLines(g.t, g.out.String()) {
			for _, id := range ids {
				if l.Account == id {
					out = append(out, l)
				}
			}
		}
		return len(out) >= n
	}, waitFor, 1e6, "%d stdout lines", n)
	return out
}

// Several webhook accounts on one listener beside a gateway account: the
// pushes reach the stdout handler as gateway events do, retries are
// handled once, /status and /metrics count them, and a reload adds and
// removes webhook accounts.
func TestRunnerWebhookAccounts(t *testing.T) {
	g := newRig(t, func(o *Options) { webhookOn(o); o.Listen = "127.0.0.1:0" },
		acct{app: "101", extra: hookExtra}, acct{app: "102", extra: hookExtra}, acct{app: "103"}).start()
	g.connected("103")
	g.hookRunning("101")
	g.hookRunning("102")
	ctx := context.Background()
	p1, p2 := g.platform("101"), g.platform("102")
	require.NoError(t, p1.Validate(ctx, true))
	require.NoError(t, p2.Validate(ctx, false))

	r1, err := p1.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{Deliveries: 3})
	require.NoError(t, err)
	require.True(t, r1.Acked)
	r2, err := p2.PushMessage(ctx, wire.EventGroupAtMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	bad, err := p2.PushMessage(ctx, wire.EventGroupAtMessageCreate, gatewaytest.PushFault{BadSignature: true})
	require.NoError(t, err)
	assert.False(t, bad.Acked)
	got := map[string]testutil.Line{}
	for _, l := range g.lines(2, "bot-101", "bot-102") {
		got[l.Account] = l
	}
	assert.Equal(t, r1.ID, got["bot-101"].ID)
	assert.Equal(t, uint64(1), got["bot-101"].Seq)
	assert.Equal(t, wire.EventC2CMessageCreate, got["bot-101"].Type)
	assert.Equal(t, r2.ID, got["bot-102"].ID)
	require.Eventually(t, func() bool {
		st, _ := g.state("bot-102")
		return st.Status.Handled == 1
	}, waitFor, 1e6)

	st, _ := g.state("bot-101")
	assert.Equal(t, "webhook", st.Transport)
	assert.Equal(t, uint64(1), st.Webhook.Accepted)
	assert.Equal(t, uint64(2), st.Webhook.Duplicates)
	assert.Equal(t, uint64(1), st.ReceivedByType[wire.EventC2CMessageCreate])
	st2, _ := g.state("bot-102")
	assert.Equal(t, uint64(4), st2.Webhook.Rejected["bad_signature"], "the first delivery and 3 retries")
	h := ops.HealthOf(g.r.Snapshot())
	assert.True(t, h.OK, "%+v", h)
	unknown, err := p1.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{AppID: "999"})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, unknown.Attempts[0].Status)
	require.Eventually(t, func() bool { return g.r.Addr() != nil }, waitFor, 1e6)
	code, metrics := testutil.Get(t, "http://"+g.r.Addr().String()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`qqgate_webhook_pushes_accepted_total{account="bot-101"} 1`,
		`qqgate_webhook_pushes_duplicate_total{account="bot-101"} 2`,
		`qqgate_webhook_pushes_rejected_total{account="bot-102",reason="bad_signature"} 4`,
		`qqgate_webhook_inbox_depth{account="bot-101"} 0`,
		`qqgate_webhook_unrouted_total{reason="unknown_app"} 4`,
		`qqgate_webhook_unrouted_total{reason="no_app_id"} 0`,
	} {
		assert.Contains(t, metrics, want)
	}
	assert.NotContains(t, metrics, `qqgate_webhook_pushes_accepted_total{account="bot-103"}`)
	code, status := testutil.Get(t, "http://"+g.r.Addr().String()+"/status")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, status, `"transport": "webhook"`)
	assert.Contains(t, status, `"pushes_accepted": 1`)
	assert.Contains(t, status, `"last_seq_committed": 1`)

	// Reload: 102 goes, 104 comes.
	g.write(acct{app: "101", extra: hookExtra}, acct{app: "103"}, acct{app: "104", extra: hookExtra})
	g.reloaded(1)
	g.hookRunning("104")
	p4 := g.platform("104")
	r4, err := p4.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	require.True(t, r4.Acked)
	ls := g.lines(1, "bot-104")
	assert.Equal(t, r4.ID, ls[0].ID)
	require.Eventually(t, func() bool {
		res, err := p2.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{})
		return err == nil && len(res.Attempts) > 0 && res.Attempts[0].Status == http.StatusNotFound
	}, waitFor, 1e6, "a removed webhook account's pushes get 404")
}

// An exec handler with reply: text answers a push where it came from,
// through the same OpenAPI as a gateway account's.
func TestRunnerWebhookReply(t *testing.T) {
	path := replyScript(t, echoScript)
	g := newRig(t, func(o *Options) { webhookOn(o); fastOpenAPI(o) },
		acct{app: "101", extra: hookExtra + fmt.Sprintf("    handler: {type: exec, command: [%q], reply: text}\n", path)}).start()
	g.hookRunning("101")
	p := g.platform("101")
	in, err := g.srv.NewInbound(wire.EventC2CMessageCreate)
	require.NoError(t, err)
	res := p.Push(context.Background(), in.Type, in.Data, gatewaytest.PushFault{ID: in.ID})
	require.True(t, res.Acked)
	route, err := openapi.RouteOf(openapi.Inbound{Type: in.Type, ID: in.ID, Data: in.Data})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(delivered(g.srv, route)) == 1 }, waitFor, 1e6)
	assert.Regexp(t, `^echo: hello \d+$`, delivered(g.srv, route)[0])
}

func TestWebhookListenerCheck(t *testing.T) {
	for _, tc := range []struct {
		w   WebhookListener
		err string
	}{
		{WebhookListener{Listen: "127.0.0.1:8080"}, ""},
		{WebhookListener{Listen: "localhost:8080"}, ""},
		{WebhookListener{Listen: "[::1]:8080"}, ""},
		{WebhookListener{Listen: ":8443"}, "--webhook-insecure-http"},
		{WebhookListener{Listen: "0.0.0.0:80"}, "TLS"},
		{WebhookListener{Listen: "10.0.0.1:80", InsecureHTTP: true}, ""},
		{WebhookListener{Listen: ":8443", TLSCertFile: "c", TLSKeyFile: "k"}, ""},
		{WebhookListener{Listen: ":8443", TLSCertFile: "c"}, "both"},
		{WebhookListener{Listen: "127.0.0.1:1", Path: "hook"}, "must start with /"},
	} {
		err := tc.w.Check()
		if tc.err == "" {
			assert.NoError(t, err, "%+v", tc.w)
			continue
		}
		if assert.Error(t, err, "%+v", tc.w) {
			assert.Contains(t, err.Error(), tc.err)
		}
	}
}

func TestConfigWebhook(t *testing.T) {
	cfg, err := ParseConfig("q.yaml", []byte(`
webhook:
  listen: ":8443"
  max_age: 10m
  path: /qq
  tls_cert_file: /etc/c.pem
  tls_key_file: /etc/k.pem
accounts:
  - {id: a, app_id: "1", secret: s, transport: webhook}
  - {id: b, app_id: "2", secret: s, transport: websocket}
  - {id: c, app_id: "3", secret: s}
`), nil)
	require.NoError(t, err)
	assert.Equal(t, WebhookListener{Listen: ":8443", Path: "/qq", TLSCertFile: "/etc/c.pem", TLSKeyFile: "/etc/k.pem", MaxAge: 10 * time.Minute}, cfg.Webhook)
	assert.True(t, cfg.Accounts[0].IsWebhook())
	assert.False(t, cfg.Accounts[1].IsWebhook())
	assert.False(t, cfg.Accounts[2].IsWebhook())

	for text, want := range map[string]string{
		"accounts:\n  - {id: a, app_id: \"1\", secret: s, transport: smoke}\n":                                                              "not websocket or webhook",
		"webhook: {listen: \":1\", insecure_http: yes please}\naccounts:\n  - {id: a, app_id: \"1\", secret: s}\n":                          "webhook.insecure_http",
		"webhook: {listen: \":1\", tls_cert_file: c}\naccounts:\n  - {id: a, app_id: \"1\", secret: s}\n":                                   "tls_key_file",
		"webhook: {max_age: soon}\naccounts:\n  - {id: a, app_id: \"1\", secret: s}\n":                                                      "webhook.max_age",
		"webhook: {bogus: 1}\naccounts:\n  - {id: a, app_id: \"1\", secret: s}\n":                                                           "unknown key",
		"accounts:\n  - {id: a, app_id: \"1\", secret: s, transport: webhook}\n  - {id: b, app_id: \"1\", secret: s, transport: webhook}\n": "routes pushes by app id",
	} {
		_, err := ParseConfig("q.yaml", []byte(text), nil)
		if assert.Error(t, err, text) {
			assert.True(t, strings.Contains(err.Error(), want), "%v", err)
		}
	}
}

// A webhook account needs a listener; plain HTTP off loopback is refused
// before anything starts.
func TestRunnerWebhookRefusals(t *testing.T) {
	dir := t.TempDir()
	cfg := &Config{SessionDir: dir, Accounts: []Account{{ID: "a", AppID: "1", Secret: "s", Transport: TransportWebhook}}}
	_, err := New(Options{Config: cfg})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no webhook listener")
	_, err = New(Options{Config: cfg, Webhook: WebhookListener{Listen: "0.0.0.0:0"}})
	require.ErrorIs(t, err, ErrWebhookPlainHTTP)
	_, err = New(Options{Config: cfg, Webhook: WebhookListener{Listen: "0.0.0.0:0", InsecureHTTP: true}})
	require.NoError(t, err)
}

// Cluster mode does not run webhook accounts: their inbox is on one
// machine's disk.
func TestRunnerWebhookNotInCluster(t *testing.T) {
	cfg := &Config{SessionDir: t.TempDir(), Cluster: &cluster.Config{Name: "a"},
		Accounts: []Account{{ID: "a", AppID: "1", Secret: "s", Transport: TransportWebhook}}}
	_, err := New(Options{Config: cfg, Webhook: WebhookListener{Listen: "127.0.0.1:0"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster mode does not run")
}
