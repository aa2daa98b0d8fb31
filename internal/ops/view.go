package ops

import (
	"time"

	"github.com/qqgate/qqgate/client"
)

// AccountState is one configured account as the supervisor sees it.
type AccountState struct {
	ID      string        // account id
	AppID   string        // bot app id
	Running bool          // its client goroutine is running (connected or reconnecting)
	Fatal   string        // non-empty when it stopped with a fatal error: the error text
	Status  client.Status // the client's snapshot (zero if not started)

	// ReceivedByType counts events received per event type, HandledByType
	// events whose handler succeeded per type; both filled by the runner's
	// handler wrapper from an EventCounts, so they hold at most
	// MaxEventTypes types and OtherEventType. Nil means none.
	ReceivedByType map[string]uint64
	HandledByType  map[string]uint64
	// HandlerFailures counts events whose handler finally failed after
	// its retries.
	HandlerFailures uint64
	// HandlerLatency is the handler duration histogram (Latency.Snapshot).
	HandlerLatency LatencySnapshot
	// StoreWrites and StoreErrors count session record writes and failed
	// writes as the runner's store wrapper sees them. For errors the
	// larger of StoreErrors and Status.StoreErrors is served.
	StoreWrites, StoreErrors uint64
	// Sends are the account's sends through the OpenAPI (handler replies
	// and the local send API); zero when it sends nothing.
	Sends SendStats

	// Owner is, in a cluster, the name of the runner that owns the
	// account ("" when none does right now); empty outside a cluster.
	Owner string
	// Remote is true for an account of the cluster that another runner
	// owns (or nobody owns): only ID, AppID, Owner and RemoteState are
	// known, and /metrics leaves it out (its owner serves its metrics).
	Remote bool
	// RemoteState is the client state the owner last published.
	RemoteState string

	// Transport is "websocket" (the gateway) or "webhook"; empty means
	// websocket.
	Transport string
	// Webhook holds a webhook account's push counters; nil for a gateway
	// account.
	Webhook *WebhookStats
}

// WebhookStats are a webhook account's push counters.
type WebhookStats struct {
	Accepted    uint64            // pushes written to the inbox and acknowledged
	Duplicates  uint64            // retried pushes acknowledged and not handled again
	Validations uint64            // callback URL validations answered
	Rejected    map[string]uint64 // pushes refused, by reason
	InboxDepth  int               // pushes accepted and not yet handled
	Fsyncs      uint64            // inbox fsyncs of accepted pushes
	Synced      uint64            // pushes those fsyncs covered
}

// Source returns the current state of every configured account. The server
// calls it on every request and scrape: it must be cheap and safe for
// concurrent use. Account ids should be unique; of two states with one id
// only the first is served in /metrics.
type Source func() []AccountState

// State names the account's state as served: "failed" when it stopped with
// a fatal error, otherwise its client's state (client.State.String:
// idle, connecting, identifying, resuming, connected, waiting, closing,
// closed, failed).
func (a AccountState) State() string {
	if a.Remote {
		if a.Owner == "" {
			return "unowned"
		}
		if a.RemoteState == "" {
			return "unknown"
		}
		return a.RemoteState
	}
	if a.Fatal != "" {
		return client.StateFailed.String()
	}
	return a.Status.State.String()
}

// Healthy reports whether the account counts as up for /healthz: its client
// is running (connected or reconnecting) and it has not stopped with a
// fatal error.
func (a AccountState) Healthy() bool {
	if a.Remote {
		return a.Owner != ""
	}
	return a.Running && a.Fatal == "" && a.Status.State != client.StateFailed
}

// storeErrors is the larger of the runner's and the client's count: they
// may count the same failures.
func (a AccountState) storeErrors() uint64 {
	return max(a.StoreErrors, a.Status.StoreErrors)
}

// Health is the body of /healthz.
type Health struct {
	OK       bool            `json:"ok"`
	Accounts []AccountHealth `json:"accounts"`
	// Cluster is this runner's standing in its cluster; nil outside one.
	Cluster *ClusterHealth `json:"cluster,omitempty"`
}

// ClusterHealth is a runner's standing in its cluster, in /healthz.
type ClusterHealth struct {
	// Name is this runner's name.
	Name string `json:"name"`
	// OK is true while the runner holds a valid lease in etcd; when it is
	// false the runner runs no account and /healthz answers 503.
	OK bool `json:"ok"`
	// Runners are the live runners' names, as last seen.
	Runners []string `json:"runners"`
	// Owned counts the accounts this runner owns.
	Owned int `json:"owned"`
	// Error says why OK is false (etcd unreachable, lease lost).
	Error string `json:"error,omitempty"`
}

// AccountHealth is one account in Health.
type AccountHealth struct {
	ID    string `json:"id"`
	State string `json:"state"` // AccountState.State
	OK    bool   `json:"ok"`
	// Error says why the account is not OK: its fatal error, or that it
	// is not running. Empty when OK.
	Error string `json:"error,omitempty"`
}

// HealthOf computes the /healthz body: OK when there is at least one
// account and every account is Healthy.
func HealthOf(accounts []AccountState) Health {
	h := Health{OK: len(accounts) > 0, Accounts: make([]AccountHealth, 0, len(accounts))}
	for _, a := range accounts {
		ah := AccountHealth{ID: a.ID, State: a.State(), OK: a.Healthy()}
		switch {
		case a.Fatal != "":
			ah.Error = a.Fatal
		case !ah.OK && a.Remote:
			ah.Error = "no runner of the cluster owns it"
		case !ah.OK && a.Status.LastError != "":
			ah.Error = "not running: " + a.Status.LastError
		case !ah.OK:
			ah.Error = "not running"
		}
		h.OK = h.OK && ah.OK
		h.Accounts = append(h.Accounts, ah)
	}
	return h
}

// AccountStatus is one element of the /status array: the account's
// identity and supervisor view, its client.Status with snake_case names,
// durations in milliseconds and times in RFC 3339 (UTC), and the runner's
// counters.
type AccountStatus struct {
	ID      string `json:"id"`
	AppID   string `json:"app_id"`
	Owner   string `json:"owner,omitempty"` // in a cluster: the owning runner's name
	Running bool   `json:"running"`
	Fatal   string `json:"fatal,omitempty"`
	State   string `json:"state"` // AccountState.State

	SessionID       string `json:"session_id"`
	IntentLevel     int    `json:"intent_level"`
	IntentLevelName string `json:"intent_level_name"`
	Intents         uint32 `json:"intents"`
	Degraded        bool   `json:"degraded"`

	LastSeqReceived  uint64  `json:"last_seq_received"`
	LastSeqCommitted uint64  `json:"last_seq_committed"` // client.Status.LastSeqHandled
	HeartbeatRTTMs   float64 `json:"heartbeat_rtt_ms"`
	LastCloseCode    int     `json:"last_close_code"`
	LastCloseReason  string  `json:"last_close_reason"`
	LastError        string  `json:"last_error"`
	NextRetryMs      float64 `json:"next_retry_ms"`
	ConnectedSince   string  `json:"connected_since,omitempty"` // RFC 3339; empty when never connected
	QueueLength      int     `json:"queue_length"`

	Events            uint64 `json:"events"`
	Handled           uint64 `json:"handled"`
	HandlerErrors     uint64 `json:"handler_errors"`
	HandlerPanics     uint64 `json:"handler_panics"`
	BadFrames         uint64 `json:"bad_frames"`
	DuplicatesDropped uint64 `json:"duplicates_dropped"`
	Replayed          uint64 `json:"replayed"`
	Connects          uint64 `json:"connects"`
	Reconnects        uint64 `json:"reconnects"`
	Identifies        uint64 `json:"identifies"`
	Resumes           uint64 `json:"resumes"`
	FailedResumes     uint64 `json:"failed_resumes"`

	ReceivedByType      map[string]uint64 `json:"received_by_type"`
	HandledByType       map[string]uint64 `json:"handled_by_type"`
	HandlerFailures     uint64            `json:"handler_failures"`
	HandlerLatencyCount uint64            `json:"handler_latency_count"`
	HandlerLatencySumMs float64           `json:"handler_latency_sum_ms"`
	StoreWrites         uint64            `json:"store_writes"`
	StoreErrors         uint64            `json:"store_errors"`

	Transport string             `json:"transport"` // websocket or webhook
	Webhook   *WebhookStatusView `json:"webhook,omitempty"`
}

// WebhookStatusView is a webhook account's push counters in /status.
type WebhookStatusView struct {
	Accepted    uint64            `json:"pushes_accepted"`
	Duplicates  uint64            `json:"pushes_duplicate"`
	Validations uint64            `json:"validations"`
	Rejected    map[string]uint64 `json:"pushes_rejected"`
	InboxDepth  int               `json:"inbox_depth"`
	Fsyncs      uint64            `json:"inbox_fsyncs"`
	Synced      uint64            `json:"inbox_fsynced_pushes"`
}

// StatusOf converts an AccountState to its /status view.
func StatusOf(a AccountState) AccountStatus {
	st := a.Status
	v := AccountStatus{
		ID:                  a.ID,
		AppID:               a.AppID,
		Owner:               a.Owner,
		Running:             a.Running || (a.Remote && a.Owner != ""),
		Fatal:               a.Fatal,
		State:               a.State(),
		SessionID:           st.SessionID,
		IntentLevel:         st.IntentLevel,
		IntentLevelName:     st.IntentLevelName,
		Intents:             st.Intents,
		Degraded:            st.Degraded,
		LastSeqReceived:     st.LastSeqReceived,
		LastSeqCommitted:    st.LastSeqHandled,
		HeartbeatRTTMs:      ms(st.HeartbeatRTT),
		LastCloseCode:       int(st.LastCloseCode),
		LastCloseReason:     st.LastCloseReason,
		LastError:           st.LastError,
		NextRetryMs:         ms(st.NextRetry),
		QueueLength:         st.QueueLength,
		Events:              st.Events,
		Handled:             st.Handled,
		HandlerErrors:       st.HandlerErrors,
		HandlerPanics:       st.HandlerPanics,
		BadFrames:           st.BadFrames,
		DuplicatesDropped:   st.DuplicatesDropped,
		Replayed:            st.Replayed,
		Connects:            st.Connects,
		Reconnects:          st.Reconnects,
		Identifies:          st.Identifies,
		Resumes:             st.Resumes,
		FailedResumes:       st.FailedResumes,
		ReceivedByType:      copyCounts(a.ReceivedByType),
		HandledByType:       copyCounts(a.HandledByType),
		HandlerFailures:     a.HandlerFailures,
		HandlerLatencyCount: a.HandlerLatency.Count,
		HandlerLatencySumMs: a.HandlerLatency.Sum * 1000,
		StoreWrites:         a.StoreWrites,
		StoreErrors:         a.storeErrors(),
	}
	if !st.ConnectedSince.IsZero() {
		v.ConnectedSince = st.ConnectedSince.UTC().Format(time.RFC3339)
	}
	v.Transport = a.Transport
	if v.Transport == "" {
		v.Transport = "websocket"
	}
	if w := a.Webhook; w != nil {
		v.Webhook = &WebhookStatusView{Accepted: w.Accepted, Duplicates: w.Duplicates, Validations: w.Validations,
			Rejected: copyCounts(w.Rejected), InboxDepth: w.InboxDepth, Fsyncs: w.Fsyncs, Synced: w.Synced}
	}
	return v
}

// ms converts d to milliseconds with microsecond precision.
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// copyCounts copies m, turning nil into an empty map so the JSON is {}.
func copyCounts(m map[string]uint64) map[string]uint64 {
	c := make(map[string]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
