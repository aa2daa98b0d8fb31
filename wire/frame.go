package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Opcode is the "op" field of a gateway frame.
type Opcode int

// The opcodes of the QQ Bot gateway, and of its webhook transport.
const (
	OpDispatch        Opcode = 0  // S→C: an event with t, s and d.
	OpHeartbeat       Opcode = 1  // C→S: keepalive; d is the last seq or null.
	OpIdentify        Opcode = 2  // C→S: start a new session.
	OpResume          Opcode = 6  // C→S: resume a session by id and seq.
	OpReconnect       Opcode = 7  // S→C: the server asks for a reconnect (resume allowed).
	OpInvalidSession  Opcode = 9  // S→C: d is a boolean "can resume".
	OpHello           Opcode = 10 // S→C: first frame, carries heartbeat_interval.
	OpHeartbeatACK    Opcode = 11 // S→C: reply to OpHeartbeat.
	OpHTTPCallbackACK Opcode = 12 // webhook only: the bot's answer to a pushed event.
	// OpCallbackValidation is webhook only: the platform checks a callback
	// URL with {plain_token, event_ts}, which the bot signs.
	OpCallbackValidation Opcode = 13
)

// String names the opcode, or returns "op(N)" for an unknown one.
func (o Opcode) String() string {
	switch o {
	case OpDispatch:
		return "DISPATCH"
	case OpHeartbeat:
		return "HEARTBEAT"
	case OpIdentify:
		return "IDENTIFY"
	case OpResume:
		return "RESUME"
	case OpReconnect:
		return "RECONNECT"
	case OpInvalidSession:
		return "INVALID_SESSION"
	case OpHello:
		return "HELLO"
	case OpHeartbeatACK:
		return "HEARTBEAT_ACK"
	case OpHTTPCallbackACK:
		return "HTTP_CALLBACK_ACK"
	case OpCallbackValidation:
		return "CALLBACK_VALIDATION"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Event type names that the protocol itself uses.
const (
	EventReady   = "READY"
	EventResumed = "RESUMED"
)

// Frame is the envelope of every gateway message:
// {"id":…, "op":…, "d":…, "s":…, "t":…}.
//
// D is kept raw: the receiver decodes it once it knows Op and T.
type Frame struct {
	ID string          `json:"id,omitempty"`
	Op Opcode          `json:"op"`
	D  json.RawMessage `json:"d,omitempty"`
	S  uint64          `json:"s,omitempty"`
	T  string          `json:"t,omitempty"`
}

// MaxFrameBytes is the largest frame DecodeFrame accepts. Larger inputs are
// rejected before they are parsed.
const MaxFrameBytes = 16 << 20

// ErrBadFrame is returned (wrapped) by DecodeFrame for input that is not a
// gateway frame.
var ErrBadFrame = errors.New("wire: bad frame")

// DecodeFrame parses one frame. It never panics; any input that is not a
// JSON object with an integer "op" gives an error wrapping ErrBadFrame.
// The Frame shares nothing with b. ScanFrame is the same decoding without
// the copies.
func DecodeFrame(b []byte) (Frame, error) {
	e, err := ScanFrame(b)
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Op: e.Op, S: e.S, T: string(e.T), ID: string(e.ID)}
	if e.D != nil {
		f.D = append(json.RawMessage(nil), e.D...)
	}
	return f, nil
}

// EncodeFrame builds a frame with op and the JSON encoding of d (which may
// be nil for a frame without d, or json.RawMessage("null") for an explicit
// null).
func EncodeFrame(op Opcode, d any) ([]byte, error) {
	f := Frame{Op: op}
	if d != nil {
		raw, ok := d.(json.RawMessage)
		if !ok {
			var err error
			raw, err = json.Marshal(d)
			if err != nil {
				return nil, fmt.Errorf("encode %s payload: %w", op, err)
			}
		}
		f.D = raw
	}
	return json.Marshal(f)
}

// Hello is the d of OpHello.
type Hello struct {
	HeartbeatInterval int64 `json:"heartbeat_interval"` // milliseconds
}

// Identify is the d of OpIdentify. Token is "QQBot <access_token>".
type Identify struct {
	Token      string            `json:"token"`
	Intents    uint32            `json:"intents"`
	Shard      [2]int            `json:"shard"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Resume is the d of OpResume. Token is "QQBot <access_token>"; the fake
// gateway also accepts the bare token that botgo sends.
type Resume struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id"`
	Seq       uint64 `json:"seq"`
}

// User is the bot user carried in READY.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Bot      bool   `json:"bot"`
}

// Ready is the d of the READY dispatch.
type Ready struct {
	Version   int    `json:"version"`
	SessionID string `json:"session_id"`
	User      User   `json:"user"`
	Shard     [2]int `json:"shard"`
}

// TokenPrefix is the scheme of gateway and OpenAPI tokens: "QQBot <token>".
const TokenPrefix = "QQBot "
