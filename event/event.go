package event

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// Event is one event from the platform, whichever transport brought it: for
// the WebSocket gateway a dispatch (op 0) frame, its type, seq, envelope id
// and the raw d (READY and RESUMED are events too). The typed accessors decode Data
// into the wire types; Data itself is never modified.
type Event struct {
	AccountID  string          // the client's account id
	Type       string          // "t", e.g. "C2C_MESSAGE_CREATE"
	Seq        uint64          // "s"
	ID         string          // envelope "id" (may be empty)
	Data       json.RawMessage // raw "d"
	ReceivedAt time.Time
	// SessionID is the gateway session the event arrived on.
	SessionID string
}

// Decode unmarshals Data into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode %s (seq %d): %w", e.Type, e.Seq, err)
	}
	return nil
}

// IsMessage reports whether the event is one of the message events that
// Message decodes.
func (e Event) IsMessage() bool {
	switch e.Type {
	case wire.EventAtMessageCreate, wire.EventMessageCreate, wire.EventDirectMessageCreate,
		wire.EventC2CMessageCreate, wire.EventGroupAtMessageCreate, wire.EventGroupMessageCreate:
		return true
	}
	return false
}

// Message decodes AT_MESSAGE_CREATE, MESSAGE_CREATE, DIRECT_MESSAGE_CREATE,
// C2C_MESSAGE_CREATE, GROUP_AT_MESSAGE_CREATE and GROUP_MESSAGE_CREATE.
func (e Event) Message() (wire.Message, error) {
	var m wire.Message
	if !e.IsMessage() {
		return m, fmt.Errorf("event %s is not a message event", e.Type)
	}
	return m, e.Decode(&m)
}

// Interaction decodes INTERACTION_CREATE.
func (e Event) Interaction() (wire.Interaction, error) {
	var v wire.Interaction
	if e.Type != wire.EventInteractionCreate {
		return v, fmt.Errorf("event %s is not %s", e.Type, wire.EventInteractionCreate)
	}
	return v, e.Decode(&v)
}

// GroupRobot decodes GROUP_ADD_ROBOT, GROUP_DEL_ROBOT, GROUP_MSG_RECEIVE
// and GROUP_MSG_REJECT, which share one body.
func (e Event) GroupRobot() (wire.GroupRobotEvent, error) {
	var v wire.GroupRobotEvent
	switch e.Type {
	case wire.EventGroupAddRobot, wire.EventGroupDelRobot, wire.EventGroupMsgReceive, wire.EventGroupMsgReject:
		return v, e.Decode(&v)
	}
	return v, fmt.Errorf("event %s is not a group robot event", e.Type)
}

// Friend decodes FRIEND_ADD, FRIEND_DEL, C2C_MSG_RECEIVE and
// C2C_MSG_REJECT, which share one body.
func (e Event) Friend() (wire.FriendEvent, error) {
	var v wire.FriendEvent
	switch e.Type {
	case wire.EventFriendAdd, wire.EventFriendDel, wire.EventC2CMsgReceive, wire.EventC2CMsgReject:
		return v, e.Decode(&v)
	}
	return v, fmt.Errorf("event %s is not a friend event", e.Type)
}

// MessageDelete decodes MESSAGE_DELETE, PUBLIC_MESSAGE_DELETE and
// DIRECT_MESSAGE_DELETE.
func (e Event) MessageDelete() (wire.MessageDelete, error) {
	var v wire.MessageDelete
	switch e.Type {
	case wire.EventMessageDelete, wire.EventPublicMessageDelete, wire.EventDirectMessageDelete:
		return v, e.Decode(&v)
	}
	return v, fmt.Errorf("event %s is not a message delete event", e.Type)
}

// MessageAudit decodes MESSAGE_AUDIT_PASS and MESSAGE_AUDIT_REJECT.
func (e Event) MessageAudit() (wire.MessageAudited, error) {
	var v wire.MessageAudited
	switch e.Type {
	case wire.EventMessageAuditPass, wire.EventMessageAuditReject:
		return v, e.Decode(&v)
	}
	return v, fmt.Errorf("event %s is not a message audit event", e.Type)
}

// Ready decodes READY.
func (e Event) Ready() (wire.Ready, error) {
	var v wire.Ready
	if e.Type != wire.EventReady {
		return v, fmt.Errorf("event %s is not %s", e.Type, wire.EventReady)
	}
	return v, e.Decode(&v)
}

// Handler handles events. A transport calls HandleEvent on its dispatcher
// goroutine, one event at a time, in order; while it runs, later events wait
// in the queue. An event counts as handled (its seq may
// be committed to the session record) once HandleEvent returns, whatever
// it returns: a returned error or a panic is logged and counted, never
// fatal to the connection. ctx ends when the client is shutting down and
// the shutdown timeout has passed.
type Handler interface {
	HandleEvent(ctx context.Context, ev Event) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev Event) error

// HandleEvent calls f.
func (f HandlerFunc) HandleEvent(ctx context.Context, ev Event) error { return f(ctx, ev) }

// Mux routes events to handlers by type. The zero value is ready to use.
// Register handlers before the client runs; Mux is safe for concurrent use.
type Mux struct {
	mu       sync.RWMutex
	byType   map[string]Handler
	messages func(ctx context.Context, ev Event, m wire.Message) error
	fallback Handler
}

// Handle routes events of eventType to h.
func (m *Mux) Handle(eventType string, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byType == nil {
		m.byType = map[string]Handler{}
	}
	m.byType[eventType] = h
}

// HandleFunc routes events of eventType to f.
func (m *Mux) HandleFunc(eventType string, f func(ctx context.Context, ev Event) error) {
	m.Handle(eventType, HandlerFunc(f))
}

// OnMessage receives every message event (see Event.IsMessage, which
// includes GROUP_MESSAGE_CREATE) not routed by Handle, decoded. A body that
// does not decode is an error.
func (m *Mux) OnMessage(f func(ctx context.Context, ev Event, msg wire.Message) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.messages = f
}

// Default receives the events no other route takes.
func (m *Mux) Default(h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fallback = h
}

// HandleEvent routes ev.
func (m *Mux) HandleEvent(ctx context.Context, ev Event) error {
	m.mu.RLock()
	h := m.byType[ev.Type]
	msgs := m.messages
	fb := m.fallback
	m.mu.RUnlock()
	switch {
	case h != nil:
		return h.HandleEvent(ctx, ev)
	case msgs != nil && ev.IsMessage():
		msg, err := ev.Message()
		if err != nil {
			return err
		}
		return msgs(ctx, ev, msg)
	case fb != nil:
		return fb.HandleEvent(ctx, ev)
	}
	return nil
}

var _ Handler = (*Mux)(nil)
