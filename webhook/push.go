package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Opcodes of the webhook transport.
const (
	OpDispatch   = 0  // an event push
	OpAck        = 12 // the bot's answer to a push
	OpValidation = 13 // callback URL validation
)

// Push is a request body of the platform, parsed. Data is d exactly as
// sent (the bytes between its first and last character).
type Push struct {
	Op   int
	ID   string // envelope id, "<t>:<opaque>" in practice
	Type string // t
	Data json.RawMessage
	// For op 13: the validation's plain token and event timestamp.
	PlainToken, EventTS string
}

// ErrBadPush is wrapped by ParsePush's errors.
var ErrBadPush = errors.New("webhook: bad push body")

// ParsePush parses a request body: one JSON object with a numeric op. An
// op 0 needs a non-empty t and a d; an op 13 needs d.plain_token and
// d.event_ts (strings, event_ts also accepted as a number). Other ops are
// returned as they are for the caller to acknowledge.
func ParsePush(body []byte) (Push, error) {
	var env struct {
		Op *int            `json:"op"`
		ID string          `json:"id"`
		T  string          `json:"t"`
		D  json.RawMessage `json:"d"`
	}
	var p Push
	if err := json.Unmarshal(body, &env); err != nil {
		return p, fmt.Errorf("%w: %v", ErrBadPush, err)
	}
	if env.Op == nil {
		return p, fmt.Errorf("%w: no op", ErrBadPush)
	}
	p.Op, p.ID, p.Type, p.Data = *env.Op, env.ID, env.T, env.D
	switch p.Op {
	case OpDispatch:
		if p.Type == "" {
			return Push{}, fmt.Errorf("%w: op 0 without t", ErrBadPush)
		}
		if len(p.Data) == 0 || bytes.Equal(p.Data, []byte("null")) {
			return Push{}, fmt.Errorf("%w: op 0 without d", ErrBadPush)
		}
	case OpValidation:
		var v struct {
			PlainToken string          `json:"plain_token"`
			EventTS    json.RawMessage `json:"event_ts"`
		}
		if err := json.Unmarshal(p.Data, &v); err != nil {
			return Push{}, fmt.Errorf("%w: op 13 d: %v", ErrBadPush, err)
		}
		ts := string(v.EventTS)
		var s string
		if err := json.Unmarshal(v.EventTS, &s); err == nil {
			ts = s
		}
		if v.PlainToken == "" || ts == "" || ts == "null" {
			return Push{}, fmt.Errorf("%w: op 13 without plain_token or event_ts", ErrBadPush)
		}
		p.PlainToken, p.EventTS = v.PlainToken, ts
	}
	return p, nil
}
