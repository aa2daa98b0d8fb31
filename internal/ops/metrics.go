package ops

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qqgate/qqgate/client"
)

// allStates are the values of the state label of qqgate_connection_state.
var allStates = []client.State{
	client.StateIdle, client.StateConnecting, client.StateIdentifying,
	client.StateResuming, client.StateConnected, client.StateWaiting,
	client.StateClosing, client.StateClosed, client.StateFailed,
}

// metric is one per-account metric read from an AccountState.
type metric struct {
	desc  *prometheus.Desc
	vt    prometheus.ValueType
	value func(a *AccountState) float64
}

// collector is the prometheus.Collector reading a Source at scrape time.
type collector struct {
	src Source

	state       *prometheus.Desc
	info        *prometheus.Desc
	received    *prometheus.Desc
	handled     *prometheus.Desc
	latency     *prometheus.Desc
	sends       *prometheus.Desc
	sendLatency *prometheus.Desc
	givenUp     *prometheus.Desc
	whRejected  *prometheus.Desc
	webhook     []metric // emitted for webhook accounts only
	simple      []metric
	descriptors []*prometheus.Desc
}

func newCollector(src Source) *collector {
	acct := []string{"account"}
	c := &collector{
		src: src,
		state: prometheus.NewDesc("qqgate_connection_state",
			"Connection state of the account: 1 for the current state (label state), 0 for the others.",
			[]string{"account", "state"}, nil),
		info: prometheus.NewDesc("qqgate_account_info",
			"Always 1; labels the account with its app id.",
			[]string{"account", "app_id"}, nil),
		received: prometheus.NewDesc("qqgate_events_received_total",
			"Dispatch events received, per event type (at most 64 types; the others under type=\"other\").",
			[]string{"account", "type"}, nil),
		handled: prometheus.NewDesc("qqgate_events_handled_total",
			"Dispatch events whose handler succeeded, per event type (at most 64 types; the others under type=\"other\").",
			[]string{"account", "type"}, nil),
		latency: prometheus.NewDesc("qqgate_handler_latency_seconds",
			"Time the handler took per event, retries included.",
			acct, nil),
		sends: prometheus.NewDesc("qqgate_sends_total",
			"Sends through the OpenAPI (handler replies and the local send API), per endpoint (c2c, group, channel, dm, c2c_files, group_files) and outcome (ok, duplicate, pending_audit, or the failure class).",
			[]string{"account", "endpoint", "outcome"}, nil),
		sendLatency: prometheus.NewDesc("qqgate_send_latency_seconds",
			"Time per send through the OpenAPI, retries included.",
			acct, nil),
		givenUp: prometheus.NewDesc("qqgate_replies_given_up_total",
			"Handler replies not delivered, per class: the send's failure class, no_route (the event cannot be answered) or bad_output (output that is not a reply).",
			[]string{"account", "class"}, nil),
	}
	c.whRejected = prometheus.NewDesc("qqgate_webhook_pushes_rejected_total",
		"Webhook requests refused, per reason (missing_signature, bad_signature, stale_timestamp, bad_body, too_large, method, inbox_full, stopped, write_failed).",
		[]string{"account", "reason"}, nil)
	whCounter := func(name, help string, f func(w *WebhookStats) float64, vt prometheus.ValueType) {
		c.webhook = append(c.webhook, metric{
			desc:  prometheus.NewDesc(name, help, acct, nil),
			vt:    vt,
			value: func(a *AccountState) float64 { return f(a.Webhook) },
		})
	}
	whCounter("qqgate_webhook_pushes_accepted_total", "Webhook pushes verified, written to the inbox (fsynced) and acknowledged.",
		func(w *WebhookStats) float64 { return float64(w.Accepted) }, prometheus.CounterValue)
	whCounter("qqgate_webhook_pushes_duplicate_total", "Webhook pushes whose envelope id was accepted before: acknowledged, not handled again.",
		func(w *WebhookStats) float64 { return float64(w.Duplicates) }, prometheus.CounterValue)
	whCounter("qqgate_webhook_validations_total", "Webhook callback URL validations (op 13) answered.",
		func(w *WebhookStats) float64 { return float64(w.Validations) }, prometheus.CounterValue)
	whCounter("qqgate_webhook_inbox_fsyncs_total", "Inbox fsyncs of accepted pushes (several concurrent pushes share one).",
		func(w *WebhookStats) float64 { return float64(w.Fsyncs) }, prometheus.CounterValue)
	whCounter("qqgate_webhook_inbox_fsynced_pushes_total", "Pushes the inbox fsyncs covered (divided by qqgate_webhook_inbox_fsyncs_total: pushes per fsync).",
		func(w *WebhookStats) float64 { return float64(w.Synced) }, prometheus.CounterValue)
	whCounter("qqgate_webhook_inbox_depth", "Webhook pushes accepted and not yet handled.",
		func(w *WebhookStats) float64 { return float64(w.InboxDepth) }, prometheus.GaugeValue)
	counter := func(name, help string, f func(a *AccountState) uint64) {
		c.simple = append(c.simple, metric{
			desc:  prometheus.NewDesc(name, help, acct, nil),
			vt:    prometheus.CounterValue,
			value: func(a *AccountState) float64 { return float64(f(a)) },
		})
	}
	gauge := func(name, help string, f func(a *AccountState) float64) {
		c.simple = append(c.simple, metric{
			desc:  prometheus.NewDesc(name, help, acct, nil),
			vt:    prometheus.GaugeValue,
			value: f,
		})
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	counter("qqgate_events_total", "Dispatch events handed to the client's queue (all types).",
		func(a *AccountState) uint64 { return a.Status.Events })
	counter("qqgate_handler_failures_total", "Events whose handler finally failed after its retries.",
		func(a *AccountState) uint64 { return a.HandlerFailures })
	counter("qqgate_handler_errors_total", "Handler calls that returned an error.",
		func(a *AccountState) uint64 { return a.Status.HandlerErrors })
	counter("qqgate_handler_panics_total", "Handler calls that panicked.",
		func(a *AccountState) uint64 { return a.Status.HandlerPanics })
	counter("qqgate_connects_total", "WebSocket connections opened.",
		func(a *AccountState) uint64 { return a.Status.Connects })
	counter("qqgate_reconnects_total", "WebSocket connections after the first.",
		func(a *AccountState) uint64 { return a.Status.Reconnects })
	counter("qqgate_resumes_total", "RESUMEs that reached RESUMED.",
		func(a *AccountState) uint64 { return a.Status.Resumes })
	counter("qqgate_identifies_total", "IDENTIFYs sent.",
		func(a *AccountState) uint64 { return a.Status.Identifies })
	counter("qqgate_failed_resumes_total", "RESUMEs that did not reach RESUMED.",
		func(a *AccountState) uint64 { return a.Status.FailedResumes })
	counter("qqgate_duplicates_dropped_total", "Replayed or duplicate events dropped.",
		func(a *AccountState) uint64 { return a.Status.DuplicatesDropped })
	counter("qqgate_replayed_events_total", "Events received after RESUME, before RESUMED.",
		func(a *AccountState) uint64 { return a.Status.Replayed })
	counter("qqgate_bad_frames_total", "Gateway frames that did not decode and were skipped.",
		func(a *AccountState) uint64 { return a.Status.BadFrames })
	counter("qqgate_oversized_frames_total", "Connections ended by a gateway frame over the read limit.",
		func(a *AccountState) uint64 { return a.Status.OversizedFrames })
	counter("qqgate_store_writes_total", "Session record writes.",
		func(a *AccountState) uint64 { return a.StoreWrites })
	counter("qqgate_store_errors_total", "Session record writes that failed.",
		func(a *AccountState) uint64 { return a.storeErrors() })
	gauge("qqgate_heartbeat_rtt_seconds", "Round trip of the last heartbeat.",
		func(a *AccountState) float64 { return a.Status.HeartbeatRTT.Seconds() })
	gauge("qqgate_last_close_code", "Close code of the last connection (0 before any close).",
		func(a *AccountState) float64 { return float64(a.Status.LastCloseCode) })
	gauge("qqgate_last_seq_received", "Highest seq received.",
		func(a *AccountState) float64 { return float64(a.Status.LastSeqReceived) })
	gauge("qqgate_last_seq_committed", "Committed seq: every event up to it was handled.",
		func(a *AccountState) float64 { return float64(a.Status.LastSeqHandled) })
	gauge("qqgate_queue_length", "Events received but not yet handled.",
		func(a *AccountState) float64 { return float64(a.Status.QueueLength) })
	gauge("qqgate_account_running", "1 while the account's client is running (connected or reconnecting).",
		func(a *AccountState) float64 { return b2f(a.Running) })
	gauge("qqgate_account_fatal", "1 when the account stopped with a fatal error.",
		func(a *AccountState) float64 { return b2f(a.Fatal != "") })
	gauge("qqgate_intent_level", "Index of the intent level in use (0 is the full level).",
		func(a *AccountState) float64 { return float64(a.Status.IntentLevel) })

	c.descriptors = []*prometheus.Desc{c.state, c.info, c.received, c.handled, c.latency, c.sends, c.sendLatency, c.givenUp, c.whRejected}
	for _, m := range c.webhook {
		c.descriptors = append(c.descriptors, m.desc)
	}
	for _, m := range c.simple {
		c.descriptors = append(c.descriptors, m.desc)
	}
	return c
}

// Describe sends every descriptor the collector may emit.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descriptors {
		ch <- d
	}
}

// Collect reads the source once and emits every metric of every account.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var accounts []AccountState
	if c.src != nil {
		accounts = c.src()
	}
	seen := make(map[string]bool, len(accounts))
	for i := range accounts {
		a := &accounts[i]
		if seen[a.ID] {
			continue // a duplicate id would make the whole scrape fail
		}
		if a.Remote {
			continue // another runner of the cluster serves its metrics
		}
		seen[a.ID] = true
		c.collectAccount(ch, a)
	}
}

func (c *collector) collectAccount(ch chan<- prometheus.Metric, a *AccountState) {
	cur := a.State()
	for _, s := range allStates {
		v := 0.0
		if s.String() == cur {
			v = 1
		}
		emit(ch, c.state, prometheus.GaugeValue, v, a.ID, s.String())
	}
	emit(ch, c.info, prometheus.GaugeValue, 1, a.ID, a.AppID)
	for t, n := range a.ReceivedByType {
		emit(ch, c.received, prometheus.CounterValue, float64(n), a.ID, t)
	}
	for t, n := range a.HandledByType {
		emit(ch, c.handled, prometheus.CounterValue, float64(n), a.ID, t)
	}
	for _, m := range c.simple {
		emit(ch, m.desc, m.vt, m.value(a), a.ID)
	}
	ch <- latencyMetric(c.latency, a.HandlerLatency, a.ID)
	for k, n := range a.Sends.ByOutcome {
		emit(ch, c.sends, prometheus.CounterValue, float64(n), a.ID, k.Endpoint, k.Outcome)
	}
	for class, n := range a.Sends.GivenUp {
		emit(ch, c.givenUp, prometheus.CounterValue, float64(n), a.ID, class)
	}
	ch <- latencyMetric(c.sendLatency, a.Sends.Latency, a.ID)
	if a.Webhook != nil {
		for _, m := range c.webhook {
			emit(ch, m.desc, m.vt, m.value(a), a.ID)
		}
		for reason, n := range a.Webhook.Rejected {
			emit(ch, c.whRejected, prometheus.CounterValue, float64(n), a.ID, reason)
		}
	}
}

// emit sends one constant metric, or an invalid metric (reported by the
// registry, never a panic) when a label value is not valid UTF-8.
func emit(ch chan<- prometheus.Metric, d *prometheus.Desc, vt prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, vt, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

// latencyMetric turns a snapshot into a constant histogram. The zero
// snapshot is served with the fixed buckets at zero; a snapshot whose
// slices do not match (not from Latency.Snapshot) with count and sum alone.
func latencyMetric(d *prometheus.Desc, s LatencySnapshot, account string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBounds))
	switch {
	case len(s.Bounds) == 0 && s.Count == 0:
		for _, b := range latencyBounds {
			buckets[b] = 0
		}
	case len(s.Bounds) == len(s.Counts):
		for i, b := range s.Bounds {
			buckets[b] = s.Counts[i]
		}
	}
	m, err := prometheus.NewConstHistogram(d, s.Count, s.Sum, buckets, account)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	return m
}
