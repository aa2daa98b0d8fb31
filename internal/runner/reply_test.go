//go:build unix

package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/internal/reply"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/wire"
)

// replyScript writes an executable /bin/sh handler and returns its path.
func replyScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reply.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return path
}

// echoScript answers a message with its content, and nothing else.
const echoScript = `line=$(cat)
case "$QQGATE_TYPE" in *MESSAGE_CREATE) ;; *) exit 0 ;; esac
printf 'echo: %s\n' "$(printf '%s' "$line" | sed -n 's/.*"content":"\([^"]*\)".*/\1/p')"`

// fastOpenAPI makes failed sends fail at once.
func fastOpenAPI(o *Options) {
	o.OpenAPI = func(c *openapi.Config) {
		c.Backoff = func() backoff.BackOff { return &backoff.ZeroBackOff{} }
		c.MaxRetries = -1
	}
}

// emitWait emits one message event of typ and waits until it is committed.
func (g *rig) emitWait(app, typ string) (uint64, openapi.Target) {
	g.t.Helper()
	s := g.srv.Session(app)
	seq, err := s.EmitMessage(typ)
	require.NoError(g.t, err)
	require.Eventually(g.t, func() bool {
		st, _ := g.state(accountID(app))
		return st.Status.LastSeqHandled >= seq
	}, waitFor, time.Millisecond, "%s committed seq %d", app, seq)
	for _, f := range s.Frames() {
		if f.S == seq {
			route, err := openapi.RouteOf(openapi.Inbound{Type: f.T, ID: f.ID, Data: f.D})
			require.NoError(g.t, err)
			return seq, route
		}
	}
	g.t.Fatalf("seq %d not in the session's frames", seq)
	return 0, openapi.Target{}
}

func fakeTarget(t openapi.Target) gatewaytest.SendTarget {
	return gatewaytest.SendTarget{Scene: gatewaytest.Scene(t.Kind), ID: t.ID}
}

func delivered(srv *gatewaytest.Server, t openapi.Target) []string {
	var out []string
	for _, d := range srv.Delivered(fakeTarget(t)) {
		out = append(out, d.Content)
	}
	return out
}

// An exec handler with reply: text answers each message where it came
// from, before the event is committed, through the OpenAPI on the token
// the gateway connection fetched: one token cycle for the account.
func TestRunnerExecReplyText(t *testing.T) {
	path := replyScript(t, echoScript)
	g := newRig(t, fastOpenAPI, acct{app: "101", extra: fmt.Sprintf("    handler: {type: exec, command: [%q], reply: text}\n", path)}).start()
	g.connected("101")

	_, c2c := g.emitWait("101", wire.EventC2CMessageCreate)
	_, group := g.emitWait("101", wire.EventGroupAtMessageCreate)
	// Committed after the reply was delivered: the reply is there now.
	assert.Len(t, delivered(g.srv, c2c), 1)
	assert.Regexp(t, `^echo: hello \d+$`, delivered(g.srv, c2c)[0])
	assert.Regexp(t, `^echo:  hello \d+$`, delivered(g.srv, group)[0])
	assert.Equal(t, 1, g.srv.TokenFetches(), "the gateway and the OpenAPI share one token")

	st, _ := g.state(accountID("101"))
	assert.Equal(t, uint64(1), st.Sends.ByOutcome[ops.SendKey{Endpoint: "c2c", Outcome: ops.OutcomeOK}])
	assert.Equal(t, uint64(1), st.Sends.ByOutcome[ops.SendKey{Endpoint: "group", Outcome: ops.OutcomeOK}])
	assert.Equal(t, uint64(2), st.Sends.Latency.Count)
	assert.Empty(t, st.Sends.GivenUp)
}

// reply: json sends one message per line; a line that is not a message
// object is logged and counted, not sent; replies to an event without a
// route (READY) are counted, nothing sent.
func TestRunnerExecReplyJSONBadLineAndNoRoute(t *testing.T) {
	path := replyScript(t, `cat >/dev/null
echo '{"content":"one"}'
echo 'oops'
echo '{"msg_type":2,"markdown":{"content":"**two**"}}'`)
	g := newRig(t, fastOpenAPI, acct{app: "101", extra: fmt.Sprintf("    handler: {type: exec, command: [%q], reply: json}\n", path)}).start()
	g.connected("101")
	_, c2c := g.emitWait("101", wire.EventC2CMessageCreate)

	got := g.srv.Delivered(fakeTarget(c2c))
	require.Len(t, got, 2)
	assert.Equal(t, "one", got[0].Content)
	assert.Equal(t, 1, got[0].MsgSeq)
	assert.JSONEq(t, `{"content":"**two**"}`, string(got[1].Markdown))
	assert.Equal(t, 2, got[1].MsgSeq)
	st, _ := g.state(accountID("101"))
	// READY: two replies without a route, one bad line; the message: one bad line.
	assert.Equal(t, map[string]uint64{reply.ClassNoRoute: 2, reply.ClassBadOutput: 2}, st.Sends.GivenUp)
}

// A reply refused for good is given up (logged, counted by class) and the
// event committed; a transient one fails the attempt, the handler runs
// again and re-sends with the same msg_seq.
func TestRunnerReplyFailures(t *testing.T) {
	path := replyScript(t, `cat >/dev/null; [ "$QQGATE_TYPE" = READY ] || echo hi`)
	g := newRig(t, fastOpenAPI, acct{app: "101", extra: fmt.Sprintf("    handler: {type: exec, command: [%q], reply: text, retries: 2}\n", path)}).start()
	g.connected("101")

	g.srv.FailNextSendsWith(1, http.StatusBadRequest, 304027, "msg expired")
	_, first := g.emitWait("101", wire.EventC2CMessageCreate)
	assert.Empty(t, delivered(g.srv, first))

	g.srv.FailNextSends(1, gatewaytest.FaultServerError)
	_, second := g.emitWait("101", wire.EventC2CMessageCreate)
	assert.Equal(t, []string{"hi"}, delivered(g.srv, second), "delivered by the handler's retry")
	sent := g.srv.Sent()
	require.Len(t, sent, 3)
	assert.Equal(t, []int{1, 1}, []int{sent[1].MsgSeq, sent[2].MsgSeq})

	// Retries used up: the event is committed, the reply counted as given up.
	g.srv.FailNextSends(3, gatewaytest.FaultServerError)
	_, third := g.emitWait("101", wire.EventC2CMessageCreate)
	assert.Empty(t, delivered(g.srv, third))

	st, _ := g.state(accountID("101"))
	assert.Equal(t, map[string]uint64{string(openapi.ClassReplyWindow): 1, string(openapi.ClassTransient): 1}, st.Sends.GivenUp)
	assert.Equal(t, uint64(1), st.Sends.ByOutcome[ops.SendKey{Endpoint: "c2c", Outcome: string(openapi.ClassReplyWindow)}])
	assert.Equal(t, uint64(4), st.Sends.ByOutcome[ops.SendKey{Endpoint: "c2c", Outcome: string(openapi.ClassTransient)}])
	assert.Equal(t, uint64(1), st.Sends.ByOutcome[ops.SendKey{Endpoint: "c2c", Outcome: ops.OutcomeOK}])
	assert.Equal(t, uint64(1), st.HandlerFailures)
}

// An http handler with reply: json answers with its response body.
func TestRunnerHTTPReply(t *testing.T) {
	hs := newHTTPReplier(t)
	g := newRig(t, fastOpenAPI, acct{app: "101", extra: fmt.Sprintf("    handler: {type: http, url: %q, reply: json}\n", hs)}).start()
	g.connected("101")
	_, grp := g.emitWait("101", wire.EventGroupAtMessageCreate)
	assert.Equal(t, []string{"first", "second"}, delivered(g.srv, grp))
	_, ch := g.emitWait("101", wire.EventAtMessageCreate)
	assert.Equal(t, []string{"plain text"}, delivered(g.srv, ch))
}

// newHTTPReplier answers group messages with a JSON array, channel
// messages with text/plain, anything else with 204.
func newHTTPReplier(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.Header.Get("X-QQGate-Type") {
		case wire.EventGroupAtMessageCreate:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `[{"content":"first"},{"content":"second"}]`)
		case wire.EventAtMessageCreate:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "plain text\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return "http://" + ln.Addr().String() + "/events"
}

// post sends a request to the runner's send API.
func post(t *testing.T, g *rig, account, token, body string) (int, map[string]any) {
	t.Helper()
	addr := g.r.Addr()
	require.NotNil(t, addr)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr.String()+"/v1/accounts/"+account+"/messages", strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func withSendToken(token string) func(*Options) {
	return func(o *Options) {
		o.Listen = "127.0.0.1:0"
		o.Getenv = func(k string) string {
			if k == "QQGATE_SEND_TOKEN" {
				return token
			}
			return ""
		}
		fastOpenAPI(o)
	}
}

func TestSendAPI(t *testing.T) {
	g := newRig(t, withSendToken("s3cret"), acct{app: "101"}).start()
	g.connected("101")
	_, c2c := g.emitWait("101", wire.EventC2CMessageCreate)
	body := fmt.Sprintf(`{"target":{"type":"c2c","id":%q},"reply_to":%q,"message":{"content":"from cron"}}`, c2c.ID, c2c.MsgID)

	code, out := post(t, g, "bot-101", "", body)
	assert.Equal(t, http.StatusUnauthorized, code, out)
	code, out = post(t, g, "bot-101", "wrong", body)
	assert.Equal(t, http.StatusUnauthorized, code, out)
	code, out = post(t, g, "nobody", "s3cret", body)
	assert.Equal(t, http.StatusNotFound, code, out)
	code, out = post(t, g, "bot-101", "s3cret", `{"target":{"type":"sms","id":"x"},"message":{"content":"x"}}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, out["error"], `target.type "sms"`)
	code, out = post(t, g, "bot-101", "s3cret", `{"target":{"type":"c2c","id":"x"},"message":{"content":"x","msg_id":"m"}}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, out["error"], "msg_id is set by qqgate")
	assert.Empty(t, g.srv.Sent(), "nothing reached the platform")

	code, out = post(t, g, "bot-101", "s3cret", body)
	require.Equal(t, http.StatusOK, code, out)
	assert.NotEmpty(t, out["id"])
	seq := out["msg_seq"].(float64)
	assert.GreaterOrEqual(t, seq, float64(openapi.FreshSeqMin), "a fresh msg_seq, clear of handler replies")
	assert.Equal(t, []string{"from cron"}, delivered(g.srv, c2c))

	// The same msg_seq again: already delivered, still 200.
	again := fmt.Sprintf(`{"target":{"type":"c2c","id":%q},"reply_to":%q,"msg_seq":%d,"message":{"content":"from cron"}}`, c2c.ID, c2c.MsgID, int(seq))
	code, out = post(t, g, "bot-101", "s3cret", again)
	require.Equal(t, http.StatusOK, code, out)
	assert.Equal(t, true, out["already_delivered"])
	assert.Equal(t, []string{"from cron"}, delivered(g.srv, c2c))

	// The platform refuses: 502 with its status, code and trace id.
	code, out = post(t, g, "bot-101", "s3cret", fmt.Sprintf(`{"target":{"type":"c2c","id":%q},"message":{"content":"active"}}`, c2c.ID))
	require.Equal(t, http.StatusBadGateway, code, out)
	assert.Equal(t, float64(400), out["http_status"])
	assert.Equal(t, float64(openapi.CodeActiveDenied), out["code"])
	assert.Equal(t, float64(openapi.CodeActiveDenied), out["err_code"])
	assert.NotEmpty(t, out["trace_id"])
	assert.NotEmpty(t, out["message"])

	// Counted in /metrics.
	_, metrics := testutil.Get(t, "http://"+g.r.Addr().String()+"/metrics")
	assert.Contains(t, metrics, `qqgate_sends_total{account="bot-101",endpoint="c2c",outcome="ok"} 1`)
	assert.Contains(t, metrics, `qqgate_sends_total{account="bot-101",endpoint="c2c",outcome="duplicate"} 1`)
	assert.Contains(t, metrics, `qqgate_sends_total{account="bot-101",endpoint="c2c",outcome="permission"} 1`)
	assert.Contains(t, metrics, `qqgate_send_latency_seconds_count{account="bot-101"} 3`)
}

// Without a token the API is off: 404, whatever the request.
func TestSendAPIOff(t *testing.T) {
	g := newRig(t, withSendToken(""), acct{app: "101"}).start()
	g.connected("101")
	code, out := post(t, g, "bot-101", "anything", `{}`)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, out["error"], "send API is off")
}

// A body over the bound is refused with 413.
func TestSendAPIBodyBounded(t *testing.T) {
	g := newRig(t, withSendToken("t"), acct{app: "101"}).start()
	g.connected("101")
	big := `{"target":{"type":"c2c","id":"x"},"message":{"content":"` + strings.Repeat("a", 1<<20) + `"}}`
	code, _ := post(t, g, "bot-101", "t", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
}

// The token comes from send_api.token_file, takes precedence over the
// environment, and a reload applies a new one at once.
func TestSendAPITokenFileAndReload(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("one\n"), 0o600))
	g := newRigWith(t, fmt.Sprintf("send_api: {token_file: %s}\n", tokenFile), withSendToken("from-env"), acct{app: "101"})
	g.start()
	g.connected("101")
	body := `{"target":{"type":"c2c","id":"x"},"message":{}}`
	code, _ := post(t, g, "bot-101", "from-env", body)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = post(t, g, "bot-101", "one", body)
	assert.Equal(t, http.StatusBadRequest, code, "past the token check")

	require.NoError(t, os.WriteFile(tokenFile, []byte("two\n"), 0o600))
	g.reload <- struct{}{}
	g.reloaded(1)
	code, _ = post(t, g, "bot-101", "one", body)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = post(t, g, "bot-101", "two", body)
	assert.Equal(t, http.StatusBadRequest, code)
}

// notLoopback is a listener whose address is not loopback.
type notLoopback struct{ net.Listener }

func (notLoopback) Addr() net.Addr { return &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 9464} }

// On an address that is not loopback the API is off unless allow_remote.
func TestSendAPIServedOnLoopbackOnly(t *testing.T) {
	for _, allow := range []bool{false, true} {
		r := &Runner{cfg: &Config{SendAPI: SendAPI{AllowRemote: allow}}}
		r.sendToken.Store("t")
		srv := ops.NewServer(r.Snapshot, r.log)
		r.mountSendAPI(srv, notLoopback{})
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "/v1/accounts/a/messages", bytes.NewReader(nil))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer t")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if allow {
			assert.Equal(t, http.StatusNotFound, w.Code, "served: no such account")
			assert.Contains(t, w.Body.String(), `no running account`)
		} else {
			assert.Equal(t, http.StatusNotFound, w.Code)
			assert.Contains(t, w.Body.String(), "send API is off")
		}
	}
}

// newRigWith is newRig with head (top-level keys) before the accounts
// of the config file.
func newRigWith(t *testing.T, head string, mutate func(*Options), accounts ...acct) *rig {
	t.Helper()
	g := &rig{t: t, srv: newGateway(t), dir: t.TempDir(), out: &testutil.SyncBuffer{}, reload: make(chan struct{}, 1)}
	g.path = filepath.Join(t.TempDir(), "qqgate.yaml")
	g.writeRaw(head + g.config(accounts...))
	opts := Options{ConfigPath: g.path, Stdout: g.out, Reload: g.reload, ReloadDebounce: 10 * time.Millisecond}
	if mutate != nil {
		mutate(&opts)
	}
	r, err := New(opts)
	require.NoError(t, err)
	g.r = r
	return g
}

// httpClient talks to the ops server without keeping connections.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitFor}
