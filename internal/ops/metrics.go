package ops

import (
	"bufio"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qqgate/qqgate/client"
)

// allStates are the values of the state label of qqgate_connection_state.
var allStates = []client.State{
	client.StateIdle, client.StateConnecting, client.StateIdentifying,
	client.StateResuming, client.StateConnected, client.StateWaiting,
	client.StateClosing, client.StateClosed, client.StateFailed,
}

// The per-account metrics are written straight to the response in the
// Prometheus text format, family by family, one account after another:
// with a thousand accounts, building them as client_golang constant
// metrics first cost about 40 MiB of garbage and 200 ms of CPU per scrape
// (and the heap grew by that much between collections); written this way
// a scrape allocates next to nothing.

// family is one per-account metric family.
type family struct {
	name, help string
	typ        string // "counter", "gauge" or "histogram"
	// write writes the family's samples of one account, with e.sample or
	// e.histogram; an account may have none.
	write func(e *expo, a *AccountState)
}

// families are the per-account metric families, sorted by name.
var families = func() []family {
	var fs []family
	add := func(name, typ, help string, write func(e *expo, a *AccountState)) {
		fs = append(fs, family{name: name, help: help, typ: typ, write: write})
	}
	one := func(name, typ, help string, v func(a *AccountState) float64) {
		add(name, typ, help, func(e *expo, a *AccountState) { e.sample(v(a)) })
	}
	counter := func(name, help string, f func(a *AccountState) uint64) {
		one(name, "counter", help, func(a *AccountState) float64 { return float64(f(a)) })
	}
	gauge := func(name, help string, f func(a *AccountState) float64) { one(name, "gauge", help, f) }
	webhook := func(name, typ, help string, f func(w *WebhookStats) uint64) {
		add(name, typ, help, func(e *expo, a *AccountState) {
			if a.Webhook != nil {
				e.sample(float64(f(a.Webhook)))
			}
		})
	}
	byLabel := func(name, help, label string, m func(a *AccountState) map[string]uint64) {
		add(name, "counter", help, func(e *expo, a *AccountState) { e.byLabel(m(a), label) })
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}

	add("qqgate_connection_state", "gauge",
		"Connection state of the account: 1 for the current state (label state), 0 for the others.",
		func(e *expo, a *AccountState) {
			cur := a.State()
			for _, st := range allStates {
				e.sample(b2f(st.String() == cur), "state", st.String())
			}
		})
	add("qqgate_account_info", "gauge", "Always 1; labels the account with its app id.",
		func(e *expo, a *AccountState) { e.sample(1, "app_id", a.AppID) })
	byLabel("qqgate_events_received_total",
		"Dispatch events received, per event type (at most 64 types; the others under type=\"other\").",
		"type", func(a *AccountState) map[string]uint64 { return a.ReceivedByType })
	byLabel("qqgate_events_handled_total",
		"Dispatch events whose handler succeeded, per event type (at most 64 types; the others under type=\"other\").",
		"type", func(a *AccountState) map[string]uint64 { return a.HandledByType })
	add("qqgate_handler_latency_seconds", "histogram", "Time the handler took per event, retries included.",
		func(e *expo, a *AccountState) { e.histogram(a.HandlerLatency) })
	add("qqgate_sends_total", "counter",
		"Sends through the OpenAPI (handler replies and the local send API), per endpoint (c2c, group, channel, dm, c2c_files, group_files) and outcome (ok, duplicate, pending_audit, or the failure class).",
		func(e *expo, a *AccountState) {
			keys := make([]SendKey, 0, len(a.Sends.ByOutcome))
			for k := range a.Sends.ByOutcome {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, func(x, y SendKey) int {
				return strings.Compare(x.Endpoint+"\x00"+x.Outcome, y.Endpoint+"\x00"+y.Outcome)
			})
			for _, k := range keys {
				e.sample(float64(a.Sends.ByOutcome[k]), "endpoint", k.Endpoint, "outcome", k.Outcome)
			}
		})
	add("qqgate_send_latency_seconds", "histogram", "Time per send through the OpenAPI, retries included.",
		func(e *expo, a *AccountState) { e.histogram(a.Sends.Latency) })
	byLabel("qqgate_replies_given_up_total",
		"Handler replies not delivered, per class: the send's failure class, no_route (the event cannot be answered) or bad_output (output that is not a reply).",
		"class", func(a *AccountState) map[string]uint64 { return a.Sends.GivenUp })
	add("qqgate_webhook_pushes_rejected_total", "counter",
		"Webhook requests refused, per reason (missing_signature, bad_signature, stale_timestamp, bad_body, too_large, method, inbox_full, stopped, write_failed).",
		func(e *expo, a *AccountState) {
			if a.Webhook != nil {
				e.byLabel(a.Webhook.Rejected, "reason")
			}
		})
	webhook("qqgate_webhook_pushes_accepted_total", "counter", "Webhook pushes verified, written to the inbox (fsynced) and acknowledged.",
		func(w *WebhookStats) uint64 { return w.Accepted })
	webhook("qqgate_webhook_pushes_duplicate_total", "counter", "Webhook pushes whose envelope id was accepted before: acknowledged, not handled again.",
		func(w *WebhookStats) uint64 { return w.Duplicates })
	webhook("qqgate_webhook_validations_total", "counter", "Webhook callback URL validations (op 13) answered.",
		func(w *WebhookStats) uint64 { return w.Validations })
	webhook("qqgate_webhook_inbox_fsyncs_total", "counter", "Inbox fsyncs of accepted pushes (several concurrent pushes share one).",
		func(w *WebhookStats) uint64 { return w.Fsyncs })
	webhook("qqgate_webhook_inbox_fsynced_pushes_total", "counter", "Pushes the inbox fsyncs covered (divided by qqgate_webhook_inbox_fsyncs_total: pushes per fsync).",
		func(w *WebhookStats) uint64 { return w.Synced })
	webhook("qqgate_webhook_inbox_depth", "gauge", "Webhook pushes accepted and not yet handled.",
		func(w *WebhookStats) uint64 { return uint64(max(w.InboxDepth, 0)) })

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
	slices.SortFunc(fs, func(x, y family) int { return strings.Compare(x.name, y.name) })
	return fs
}()

// byLabel writes a sample per key of m, the key as the label's value, in
// key order (a scrape's lines come in a stable order).
func (e *expo) byLabel(m map[string]uint64, label string) {
	e.keys = e.keys[:0]
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	for _, k := range e.keys {
		e.sample(float64(m[k]), label, k)
	}
}

// metricAccounts picks the accounts whose metrics this runner serves:
// local ones (another runner of the cluster serves a remote account's),
// each id once (a family with one id twice is refused by Prometheus), and
// only ids that are valid UTF-8 (label values must be). It reports how
// many it left out for a bad id.
func metricAccounts(accounts []AccountState) (picked []*AccountState, bad int) {
	seen := make(map[string]bool, len(accounts))
	for i := range accounts {
		a := &accounts[i]
		switch {
		case a.Remote || seen[a.ID]:
			continue
		case !utf8.ValidString(a.ID):
			bad++
			continue
		}
		seen[a.ID] = true
		picked = append(picked, a)
	}
	return picked, bad
}

// writeAccountMetrics writes every per-account family for accounts to w,
// in the text format. It reports the samples left out because a label
// value was not valid UTF-8.
func writeAccountMetrics(w *bufio.Writer, accounts []*AccountState) (skipped int) {
	e := &expo{w: w}
	for i := range families {
		e.fam, e.head = &families[i], false
		for _, a := range accounts {
			e.account = a.ID
			e.fam.write(e, a)
		}
	}
	return e.skipped
}

// expo writes samples of one family in the Prometheus text format
// (version 0.0.4): the family's HELP and TYPE lines before its first
// sample, none for a family without samples.
type expo struct {
	w       *bufio.Writer
	fam     *family
	head    bool     // fam's HELP and TYPE are written
	account string   // the account label of the samples
	num     []byte   // scratch for numbers
	keys    []string // scratch for byLabel
	skipped int
}

// sample writes one sample of the family for the account, with the
// label pairs (name, value, ...) after the account label.
func (e *expo) sample(v float64, labels ...string) {
	e.line("", v, labels...)
}

// line writes name+suffix{account="...",labels...} v.
func (e *expo) line(suffix string, v float64, labels ...string) {
	for i := 1; i < len(labels); i += 2 {
		if !utf8.ValidString(labels[i]) {
			e.skipped++
			return
		}
	}
	if !e.head {
		e.head = true
		e.w.WriteString("# HELP ")
		e.w.WriteString(e.fam.name)
		e.w.WriteByte(' ')
		writeEscaped(e.w, e.fam.help, false)
		e.w.WriteString("\n# TYPE ")
		e.w.WriteString(e.fam.name)
		e.w.WriteByte(' ')
		e.w.WriteString(e.fam.typ)
		e.w.WriteByte('\n')
	}
	e.w.WriteString(e.fam.name)
	e.w.WriteString(suffix)
	e.w.WriteString(`{account="`)
	writeEscaped(e.w, e.account, true)
	for i := 0; i+1 < len(labels); i += 2 {
		e.w.WriteString(`",`)
		e.w.WriteString(labels[i])
		e.w.WriteString(`="`)
		writeEscaped(e.w, labels[i+1], true)
	}
	e.w.WriteString(`"} `)
	e.num = appendFloat(e.num[:0], v)
	e.w.Write(e.num)
	e.w.WriteByte('\n')
}

// histogram writes a latency histogram: a bucket per bound (cumulative),
// +Inf, sum and count. The zero snapshot is written with the fixed
// buckets at zero; a snapshot whose slices do not match (not from
// Latency.Snapshot) with the +Inf bucket, sum and count alone.
func (e *expo) histogram(s LatencySnapshot) {
	switch {
	case len(s.Bounds) == 0 && s.Count == 0:
		for _, b := range latencyBounds {
			e.bucket(b, 0)
		}
	case len(s.Bounds) == len(s.Counts):
		for i, b := range s.Bounds {
			e.bucket(b, s.Counts[i])
		}
	}
	e.line("_bucket", float64(s.Count), "le", "+Inf")
	e.line("_sum", s.Sum)
	e.line("_count", float64(s.Count))
}

func (e *expo) bucket(le float64, n uint64) {
	e.line("_bucket", float64(n), "le", leLabel(le))
}

// latencyLE are the le labels of latencyBounds, made once.
var latencyLE = func() (le [len(latencyBounds)]string) {
	for i, b := range latencyBounds {
		le[i] = string(appendFloat(nil, b))
	}
	return le
}()

// leLabel gives the le label of a bucket bound.
func leLabel(b float64) string {
	if i := slices.Index(latencyBounds[:], b); i >= 0 {
		return latencyLE[i]
	}
	return string(appendFloat(nil, b))
}

// appendFloat formats v as the text format does: Go's shortest 'g' form,
// +Inf, -Inf and NaN.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// writeEscaped writes s with the text format's escapes: a backslash and
// a newline always, a double quote in a label value.
func writeEscaped(w *bufio.Writer, s string, quote bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			w.WriteString(`\\`)
		case c == '\n':
			w.WriteString(`\n`)
		case c == '"' && quote:
			w.WriteString(`\"`)
		default:
			w.WriteByte(c)
		}
	}
}
