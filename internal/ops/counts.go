package ops

import "sync"

// Bounds of the per-type event counters. The event type is chosen by the
// gateway, and each one counted apart is a map entry and a label value of
// two metrics: a hostile or broken gateway sending ever new types must not
// grow them without limit.
const (
	// MaxEventTypes is how many event types an EventCounts counts apart.
	// Later types are counted under OtherEventType.
	MaxEventTypes = 64
	// MaxEventTypeLen is the longest event type counted apart.
	MaxEventTypeLen = 64
	// OtherEventType is the type every event is counted under whose type
	// is not counted apart: past MaxEventTypes, longer than
	// MaxEventTypeLen, or holding a character other than an ASCII letter,
	// digit or underscore (every documented type is upper case letters and
	// underscores).
	OtherEventType = "other"
)

// EventCounts counts an account's events received and handled per event
// type, with at most MaxEventTypes types (and OtherEventType) in each. A
// type is counted apart from the first time it is seen (received or
// handled), when there is room; its handled events go under the same name
// as its received ones. The zero
// value is ready to use; all methods are safe for concurrent use.
type EventCounts struct {
	mu       sync.Mutex
	apartSet map[string]bool // the types counted apart
	received map[string]uint64
	handled  map[string]uint64
}

// name is the name t is counted under, taking a place for t when there is
// room: a handler may finish an event before its receipt is counted, and
// both counts must use one name. c.mu is held.
func (c *EventCounts) name(t string) string {
	if c.apartSet[t] {
		return t
	}
	if len(c.apartSet) >= MaxEventTypes || !plainType(t) {
		return OtherEventType
	}
	if c.apartSet == nil {
		c.apartSet = map[string]bool{}
	}
	c.apartSet[t] = true
	return t
}

// Received counts one event of type t received.
func (c *EventCounts) Received(t string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.received == nil {
		c.received = map[string]uint64{}
	}
	c.received[c.name(t)]++
}

// Handled counts one event of type t whose handler succeeded.
func (c *EventCounts) Handled(t string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handled == nil {
		c.handled = map[string]uint64{}
	}
	c.handled[c.name(t)]++
}

// Snapshot returns copies of the received and handled counts by type.
func (c *EventCounts) Snapshot() (received, handled map[string]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyCounts(c.received), copyCounts(c.handled)
}

// plainType reports whether t may be a label value of its own: 1 to
// MaxEventTypeLen ASCII letters, digits and underscores.
func plainType(t string) bool {
	if t == "" || len(t) > MaxEventTypeLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		b := t[i]
		if !('A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}
