package client

import (
	"time"

	"github.com/qqgate/qqgate/wire"
)

// State is the connection state of a Client.
type State int

// The states a Client goes through.
const (
	StateIdle        State = iota // not running
	StateConnecting               // fetching a token, discovering, dialing
	StateIdentifying              // IDENTIFY sent, waiting for READY
	StateResuming                 // RESUME sent, waiting for RESUMED
	StateConnected                // READY or RESUMED received
	StateWaiting                  // waiting before the next attempt
	StateClosing                  // graceful shutdown under way
	StateClosed                   // Run returned after a shutdown
	StateFailed                   // Run returned a fatal error
)

var stateNames = [...]string{"idle", "connecting", "identifying", "resuming", "connected", "waiting", "closing", "closed", "failed"}

// String names the state.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(?)"
}

// Status is a snapshot of a Client. Counters count since New.
type Status struct {
	AccountID string
	State     State
	SessionID string
	// IntentLevel is the index of the intent level in use, IntentLevelName
	// its name; Degraded is true when it is not the first level.
	IntentLevel     int
	IntentLevelName string
	Intents         uint32
	Degraded        bool

	LastSeqReceived uint64 // highest seq received (heartbeats, in-process resume)
	LastSeqHandled  uint64 // committed: every event up to it was handled
	HeartbeatRTT    time.Duration
	HeartbeatACKs   uint64 // heartbeat ACKs received
	LastCloseCode   wire.CloseCode
	LastCloseReason string
	LastError       string
	NextRetry       time.Duration // the wait before the next attempt, while StateWaiting
	ConnectedSince  time.Time
	QueueLength     int
	QueueBytes      int64 // bytes of the events queued (see Config.QueueBytes)

	Events            uint64 // dispatch events handed to the queue
	Handled           uint64 // events whose handler returned (and whose seq is committed, if it can be)
	HandlerErrors     uint64 // handler returned an error
	HandlerPanics     uint64 // handler panicked
	BadFrames         uint64 // frames that did not decode, skipped
	OversizedFrames   uint64 // connections ended by a frame over MaxMessageBytes
	DuplicatesDropped uint64 // replayed or duplicate events dropped
	ProtocolErrors    uint64 // dispatches delivered although they broke the protocol (a seq far ahead)
	Replayed          uint64 // events received after RESUME, before RESUMED
	Connects          uint64 // WebSocket connections opened
	Reconnects        uint64 // connections after the first
	Identifies        uint64 // IDENTIFYs sent
	Resumes           uint64 // RESUMEs that reached RESUMED
	FailedResumes     uint64 // RESUMEs that ended before RESUMED (a count only: the client resumes again while the session is valid)
	StoreErrors       uint64 // session record writes that failed
}
