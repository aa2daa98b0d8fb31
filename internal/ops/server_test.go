package ops

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/wire"
)

// fakeSource is a Source the test changes between requests.
type fakeSource struct {
	mu       sync.Mutex
	accounts []AccountState
}

func (f *fakeSource) set(a ...AccountState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts = a
}

func (f *fakeSource) update(i int, fn func(*AccountState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.accounts[i])
}

func (f *fakeSource) get() []AccountState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AccountState(nil), f.accounts...)
}

var connectedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func shopBot() AccountState {
	var lat Latency
	lat.Observe(2 * time.Millisecond)
	lat.Observe(300 * time.Millisecond)
	return AccountState{
		ID:      "shop-bot",
		AppID:   "1020304",
		Running: true,
		Status: client.Status{
			AccountID:         "shop-bot",
			State:             client.StateConnected,
			SessionID:         "sess-1",
			IntentLevel:       1,
			IntentLevelName:   "group+channel",
			Intents:           1<<30 | 1<<25,
			Degraded:          true,
			LastSeqReceived:   42,
			LastSeqHandled:    40,
			HeartbeatRTT:      12500 * time.Microsecond,
			LastCloseCode:     wire.CloseCode(4009),
			LastCloseReason:   "session timed out",
			ConnectedSince:    connectedAt,
			QueueLength:       2,
			Events:            42,
			Handled:           40,
			HandlerErrors:     3,
			HandlerPanics:     1,
			BadFrames:         4,
			OversizedFrames:   9,
			DuplicatesDropped: 5,
			Replayed:          6,
			Connects:          8,
			Reconnects:        7,
			Identifies:        2,
			Resumes:           5,
			FailedResumes:     1,
			StoreErrors:       1,
		},
		ReceivedByType:  map[string]uint64{"C2C_MESSAGE_CREATE": 30, "READY": 2},
		HandledByType:   map[string]uint64{"C2C_MESSAGE_CREATE": 28, "READY": 2},
		HandlerFailures: 2,
		HandlerLatency:  lat.Snapshot(),
		StoreWrites:     17,
		StoreErrors:     3,
	}
}

func supportBot() AccountState {
	return AccountState{
		ID:      "support-bot",
		AppID:   "1020305",
		Running: true,
		Status:  client.Status{AccountID: "support-bot", State: client.StateWaiting, NextRetry: 1500 * time.Millisecond, LastError: "dial: connection refused"},
	}
}

// newTestServer serves an ops.Server over loopback with httptest.
func newTestServer(t *testing.T, src *fakeSource) (*Server, *httptest.Server, *http.Client) {
	t.Helper()
	s := NewServer(src.get, zerolog.Nop())
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	hc := hs.Client()
	t.Cleanup(hc.CloseIdleConnections)
	return s, hs, hc
}

func getHealth(t *testing.T, hc *http.Client, base string) (int, Health) {
	t.Helper()
	code, hdr, b := testutil.GetWith(t, hc, base+"/healthz")
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))
	var h Health
	require.NoError(t, json.Unmarshal(b, &h), string(b))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Contains(t, raw, "ok")
	assert.Contains(t, raw, "accounts")
	return code, h
}

func TestHealthzTransitions(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	_, hs, hc := newTestServer(t, src)

	// No account configured: nothing is being run, so not healthy.
	code, h := getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.False(t, h.OK)
	assert.Empty(t, h.Accounts)

	// Connected and reconnecting both count as up.
	src.set(shopBot(), supportBot())
	code, h = getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, Health{OK: true, Accounts: []AccountHealth{
		{ID: "shop-bot", State: "connected", OK: true},
		{ID: "support-bot", State: "waiting", OK: true},
	}}, h)

	// A fatal close on one account turns the whole answer 503.
	src.update(1, func(a *AccountState) {
		a.Running = false
		a.Fatal = "close 4914: bot is offline"
		a.Status.State = client.StateFailed
	})
	code, h = getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.False(t, h.OK)
	assert.Equal(t, AccountHealth{ID: "shop-bot", State: "connected", OK: true}, h.Accounts[0])
	assert.Equal(t, AccountHealth{ID: "support-bot", State: "failed", OK: false, Error: "close 4914: bot is offline"}, h.Accounts[1])

	// Stopped without a fatal error (not started yet, or stopped): 503.
	src.update(1, func(a *AccountState) {
		a.Fatal = ""
		a.Status = client.Status{}
	})
	code, h = getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, AccountHealth{ID: "support-bot", State: "idle", OK: false, Error: "not running"}, h.Accounts[1])

	// Fatal recorded while the goroutine is still winding down: 503.
	src.update(1, func(a *AccountState) {
		a.Running = true
		a.Fatal = "gave up"
	})
	code, _ = getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code)

	// Restarted (a reload): healthy again.
	src.set(shopBot(), supportBot())
	code, h = getHealth(t, hc, hs.URL)
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, h.OK)
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	_, hs, hc := newTestServer(t, src)

	code, _, b := testutil.GetWith(t, hc, hs.URL+"/status")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, string(b), "no account is an empty array, not null")

	src.set(shopBot(), supportBot())
	code, hdr, b := testutil.GetWith(t, hc, hs.URL+"/status")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))

	// The exact JSON names are the contract with `qqgate status` and
	// operators' scripts.
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(b, &raw), string(b))
	require.Len(t, raw, 2)
	shop := raw[0]
	want := map[string]any{
		"id": "shop-bot", "app_id": "1020304", "running": true, "state": "connected",
		"session_id": "sess-1", "intent_level": 1.0, "intent_level_name": "group+channel",
		"intents": float64(1<<30 | 1<<25), "degraded": true,
		"last_seq_received": 42.0, "last_seq_committed": 40.0,
		"heartbeat_rtt_ms": 12.5, "last_close_code": 4009.0, "last_close_reason": "session timed out",
		"last_error": "", "next_retry_ms": 0.0, "connected_since": "2026-01-02T03:04:05Z",
		"queue_length": 2.0, "events": 42.0, "handled": 40.0, "handler_errors": 3.0,
		"handler_panics": 1.0, "bad_frames": 4.0, "duplicates_dropped": 5.0, "replayed": 6.0,
		"connects": 8.0, "reconnects": 7.0, "identifies": 2.0, "resumes": 5.0, "failed_resumes": 1.0,
		"received_by_type": map[string]any{"C2C_MESSAGE_CREATE": 30.0, "READY": 2.0},
		"handled_by_type":  map[string]any{"C2C_MESSAGE_CREATE": 28.0, "READY": 2.0},
		"handler_failures": 2.0, "handler_latency_count": 2.0, "handler_latency_sum_ms": 302.0,
		"store_writes": 17.0, "store_errors": 3.0, "transport": "websocket",
	}
	for k, v := range want {
		if assert.Contains(t, shop, k) {
			if f, ok := v.(float64); ok {
				assert.InDelta(t, f, shop[k], 1e-9, k)
			} else {
				assert.Equal(t, v, shop[k], k)
			}
		}
	}
	for k := range shop {
		assert.Contains(t, want, k, "unexpected key %q", k)
	}

	sup := raw[1]
	assert.Equal(t, "waiting", sup["state"])
	assert.InDelta(t, 1500.0, sup["next_retry_ms"], 1e-9)
	assert.NotContains(t, sup, "connected_since", "never connected: omitted")
	assert.NotContains(t, sup, "fatal")
	assert.Equal(t, map[string]any{}, sup["received_by_type"])

	// And it decodes into the exported view.
	var view []AccountStatus
	require.NoError(t, json.Unmarshal(b, &view))
	assert.Equal(t, StatusOf(shopBot()), view[0])
	assert.Equal(t, StatusOf(supportBot()), view[1])
}

func TestStatusFatal(t *testing.T) {
	t.Parallel()
	a := supportBot()
	a.Running = false
	a.Fatal = "close 4915: bot is banned"
	v := StatusOf(a)
	assert.Equal(t, "failed", v.State)
	assert.Equal(t, "close 4915: bot is banned", v.Fatal)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"fatal":"close 4915: bot is banned"`)
}

// scrape fetches /metrics over HTTP and parses the text format.
func scrape(t *testing.T, hc *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, hdr, b := testutil.GetWith(t, hc, base+"/metrics")
	require.Equal(t, http.StatusOK, code, string(b))
	assert.True(t, strings.HasPrefix(hdr.Get("Content-Type"), "text/plain"), hdr.Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err, string(b))
	return mfs
}

// value returns the value of the family's sample with the given labels
// (name, value pairs); it fails the test when there is none.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	require.True(t, ok, "no metric %s", name)
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		default:
			return m.GetUntyped().GetValue()
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	_, hs, hc := newTestServer(t, src)
	src.set(shopBot(), supportBot())

	mfs := scrape(t, hc, hs.URL)
	shop := []string{"account", "shop-bot"}
	counters := map[string]float64{
		"qqgate_events_total":             42,
		"qqgate_handler_failures_total":   2,
		"qqgate_handler_errors_total":     3,
		"qqgate_handler_panics_total":     1,
		"qqgate_connects_total":           8,
		"qqgate_reconnects_total":         7,
		"qqgate_resumes_total":            5,
		"qqgate_identifies_total":         2,
		"qqgate_failed_resumes_total":     1,
		"qqgate_duplicates_dropped_total": 5,
		"qqgate_replayed_events_total":    6,
		"qqgate_bad_frames_total":         4,
		"qqgate_oversized_frames_total":   9,
		"qqgate_store_writes_total":       17,
		"qqgate_store_errors_total":       3,
	}
	for name, want := range counters {
		assert.Equal(t, dto.MetricType_COUNTER, mfs[name].GetType(), name)
		assert.Equal(t, want, value(t, mfs, name, shop...), name)
	}
	gauges := map[string]float64{
		"qqgate_heartbeat_rtt_seconds": 0.0125,
		"qqgate_last_close_code":       4009,
		"qqgate_last_seq_received":     42,
		"qqgate_last_seq_committed":    40,
		"qqgate_queue_length":          2,
		"qqgate_account_running":       1,
		"qqgate_account_fatal":         0,
		"qqgate_intent_level":          1,
	}
	for name, want := range gauges {
		assert.Equal(t, dto.MetricType_GAUGE, mfs[name].GetType(), name)
		assert.InDelta(t, want, value(t, mfs, name, shop...), 1e-12, name)
	}
	assert.Equal(t, 30.0, value(t, mfs, "qqgate_events_received_total", "account", "shop-bot", "type", "C2C_MESSAGE_CREATE"))
	assert.Equal(t, 2.0, value(t, mfs, "qqgate_events_received_total", "account", "shop-bot", "type", "READY"))
	assert.Equal(t, 28.0, value(t, mfs, "qqgate_events_handled_total", "account", "shop-bot", "type", "C2C_MESSAGE_CREATE"))
	assert.Equal(t, 1.0, value(t, mfs, "qqgate_account_info", "account", "shop-bot", "app_id", "1020304"))

	// The state is one-hot over every client state.
	for _, st := range allStates {
		want := 0.0
		if st == client.StateConnected {
			want = 1
		}
		assert.Equal(t, want, value(t, mfs, "qqgate_connection_state", "account", "shop-bot", "state", st.String()), st.String())
	}
	assert.Equal(t, 1.0, value(t, mfs, "qqgate_connection_state", "account", "support-bot", "state", "waiting"))

	// The latency histogram carries the snapshot's buckets.
	var hist *dto.Histogram
	for _, m := range mfs["qqgate_handler_latency_seconds"].GetMetric() {
		if m.GetLabel()[0].GetValue() == "shop-bot" {
			hist = m.GetHistogram()
		}
	}
	require.NotNil(t, hist)
	assert.EqualValues(t, 2, hist.GetSampleCount())
	assert.InDelta(t, 0.302, hist.GetSampleSum(), 1e-9)
	buckets := map[float64]uint64{}
	for _, b := range hist.GetBucket() {
		buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	assert.EqualValues(t, 0, buckets[0.001])
	assert.EqualValues(t, 1, buckets[0.0025])
	assert.EqualValues(t, 1, buckets[0.25])
	assert.EqualValues(t, 2, buckets[0.5])
	// An account with no observations still has its (empty) histogram.
	assert.Equal(t, 0.0, value(t, mfs, "qqgate_handler_latency_seconds", "account", "support-bot"))

	// Process and Go collectors are on the registry.
	assert.Contains(t, mfs, "go_goroutines")

	// The counters move with the source: the collector reads it per scrape.
	src.update(0, func(a *AccountState) {
		a.Status.Reconnects = 9
		a.Status.Resumes = 6
		a.Status.LastSeqHandled = 42
		a.Status.State = client.StateResuming
		a.ReceivedByType["C2C_MESSAGE_CREATE"] = 31
	})
	src.update(1, func(a *AccountState) {
		a.Running = false
		a.Fatal = "close 4914: offline"
	})
	mfs = scrape(t, hc, hs.URL)
	assert.Equal(t, 9.0, value(t, mfs, "qqgate_reconnects_total", shop...))
	assert.Equal(t, 6.0, value(t, mfs, "qqgate_resumes_total", shop...))
	assert.Equal(t, 42.0, value(t, mfs, "qqgate_last_seq_committed", shop...))
	assert.Equal(t, 31.0, value(t, mfs, "qqgate_events_received_total", "account", "shop-bot", "type", "C2C_MESSAGE_CREATE"))
	assert.Equal(t, 1.0, value(t, mfs, "qqgate_connection_state", "account", "shop-bot", "state", "resuming"))
	assert.Equal(t, 0.0, value(t, mfs, "qqgate_connection_state", "account", "shop-bot", "state", "connected"))
	assert.Equal(t, 1.0, value(t, mfs, "qqgate_account_fatal", "account", "support-bot"))
	assert.Equal(t, 0.0, value(t, mfs, "qqgate_account_running", "account", "support-bot"))
	assert.Equal(t, 1.0, value(t, mfs, "qqgate_connection_state", "account", "support-bot", "state", "failed"))

	// A removed account disappears from the next scrape.
	src.set(shopBot())
	mfs = scrape(t, hc, hs.URL)
	for _, m := range mfs["qqgate_reconnects_total"].GetMetric() {
		assert.Equal(t, "shop-bot", m.GetLabel()[0].GetValue())
	}

	// The metric names and help texts follow the Prometheus conventions.
	var linted []*dto.MetricFamily
	for name, mf := range mfs {
		if strings.HasPrefix(name, "qqgate_") {
			linted = append(linted, mf)
		}
	}
	require.GreaterOrEqual(t, len(linted), 25, "the per-account families are linted")
	problems, err := promlint.NewWithMetricFamilies(linted).Lint()
	require.NoError(t, err)
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "qqgate_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestMetricsExactText(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	src.set(shopBot())
	s := NewServer(src.get, zerolog.Nop())
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", rec.Header().Get("Content-Type"))
	body := rec.Body.String()
	for _, want := range []string{`# HELP qqgate_last_close_code Close code of the last connection (0 before any close).
# TYPE qqgate_last_close_code gauge
qqgate_last_close_code{account="shop-bot"} 4009
`, `# HELP qqgate_store_errors_total Session record writes that failed.
# TYPE qqgate_store_errors_total counter
qqgate_store_errors_total{account="shop-bot"} 3
`, `# HELP qqgate_events_received_total Dispatch events received, per event type (at most 64 types; the others under type="other").
# TYPE qqgate_events_received_total counter
qqgate_events_received_total{account="shop-bot",type="C2C_MESSAGE_CREATE"} 30
qqgate_events_received_total{account="shop-bot",type="READY"} 2
`, `qqgate_handler_latency_seconds_bucket{account="shop-bot",le="0.001"} 0
qqgate_handler_latency_seconds_bucket{account="shop-bot",le="0.0025"} 1
`, `qqgate_handler_latency_seconds_bucket{account="shop-bot",le="60"} 2
qqgate_handler_latency_seconds_bucket{account="shop-bot",le="+Inf"} 2
qqgate_handler_latency_seconds_sum{account="shop-bot"} 0.302
qqgate_handler_latency_seconds_count{account="shop-bot"} 2
`} {
		assert.Contains(t, body, want)
	}
}

// Label values are escaped as the text format wants (a backslash, a
// double quote, a newline), and come back intact from a strict parser; a
// scrape asking for gzip gets it.
func TestMetricsEscapesAndGzip(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	a := shopBot()
	a.ID = "shop \\ \"bot\"\nline"
	a.ReceivedByType = map[string]uint64{"ODD\\\"TYPE\n": 7}
	src.set(a)
	s := NewServer(src.get, zerolog.Nop())
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "deflate, gzip;q=0.5")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	zr, err := gzip.NewReader(rec.Body)
	require.NoError(t, err)
	text, err := io.ReadAll(zr)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err, string(text))
	assert.Equal(t, 7.0, value(t, mfs, "qqgate_events_received_total", "account", a.ID, "type", "ODD\\\"TYPE\n"))
	assert.Equal(t, 7.0, value(t, mfs, "qqgate_reconnects_total", "account", a.ID))

	for header, want := range map[string]bool{"": false, "gzip": true, "GZIP ; q=1": true, "gzip;q=0": false, "br, deflate": false, "x-gzip": false} {
		assert.Equal(t, want, acceptsGzip(header), header)
	}
}

// BenchmarkScrape measures one /metrics scrape of 1,000 accounts, each
// with a few event types and a handler latency histogram.
func BenchmarkScrape(b *testing.B) {
	accounts := make([]AccountState, 1000)
	for i := range accounts {
		a := shopBot()
		a.ID = "bot-" + strconv.Itoa(i)
		accounts[i] = a
	}
	s := NewServer(func() []AccountState { return accounts }, zerolog.Nop())
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	w := &countingWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.n = 0
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(w.n), "bytes/scrape")
}

// countingWriter is a ResponseWriter that counts the body and keeps
// nothing, as a socket would.
type countingWriter struct {
	header http.Header
	n      int
}

func (w *countingWriter) Header() http.Header         { return w.header }
func (w *countingWriter) WriteHeader(int)             {}
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func TestMetricsBadSource(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	// A duplicate id and a label value that is not UTF-8 neither panic
	// nor fail the scrape of the others.
	bad := supportBot()
	bad.ID = "bad-\xff"
	src.set(shopBot(), shopBot(), bad)
	_, hs, hc := newTestServer(t, src)
	mfs := scrape(t, hc, hs.URL)
	assert.Len(t, mfs["qqgate_reconnects_total"].GetMetric(), 1)
	assert.Equal(t, 7.0, value(t, mfs, "qqgate_reconnects_total", "account", "shop-bot"))

	// No source at all serves no accounts.
	_, hs2, hc2 := newTestServer(t, &fakeSource{})
	mfs = scrape(t, hc2, hs2.URL)
	assert.NotContains(t, mfs, "qqgate_reconnects_total")
	s := NewServer(nil, zerolog.Nop())
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
}

func TestMethodsAndRoutes(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	src.set(shopBot())
	_, hs, hc := newTestServer(t, src)
	resp, err := hc.Post(hs.URL+"/healthz", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	code, _, _ := testutil.GetWith(t, hc, hs.URL+"/nope")
	assert.Equal(t, http.StatusNotFound, code)
	req, err := http.NewRequest(http.MethodHead, hs.URL+"/healthz", nil)
	require.NoError(t, err)
	resp, err = hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// addrLog is a zerolog writer that reports the address of the
// "ops server listening" line.
type addrLog chan string

func (a addrLog) Write(p []byte) (int, error) {
	var line struct {
		Message string `json:"message"`
		Addr    string `json:"addr"`
	}
	if json.Unmarshal(p, &line) == nil && line.Message == "ops server listening" {
		a <- line.Addr
	}
	return len(p), nil
}

func TestServeShutsDownOnCancel(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	src.set(shopBot())
	addrs := make(addrLog, 1)
	s := NewServer(src.get, zerolog.New(addrs))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, "127.0.0.1:0") }()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("Serve returned early: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	code, _, _ := testutil.GetWith(t, hc, "http://"+addr+"/healthz")
	assert.Equal(t, http.StatusOK, code)

	cancel()
	require.NoError(t, <-done)
	hc.CloseIdleConnections()
	_, err := hc.Get("http://" + addr + "/healthz")
	assert.Error(t, err, "the listener is closed")
}

func TestServeListenError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	s := NewServer(nil, zerolog.Nop())
	err = s.Serve(context.Background(), ln.Addr().String())
	require.Error(t, err, "the port is taken")
}

func TestServeWaitsForRequestInFlight(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	src := func() []AccountState {
		once.Do(func() {
			close(entered)
			<-release
		})
		return []AccountState{shopBot()}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := NewServer(src, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, ln) }()

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	type result struct {
		code int
		body []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := hc.Get("http://" + ln.Addr().String() + "/status")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, b, err}
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	default:
	}
	close(release)
	r := <-got
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.code)
	assert.Contains(t, string(r.body), `"shop-bot"`)
	require.NoError(t, <-done)
}
