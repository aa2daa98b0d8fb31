package ops

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEventCountsBounded(t *testing.T) {
	var c EventCounts
	for i := range 1000 {
		typ := fmt.Sprintf("T%04d", i)
		c.Received(typ)
		c.Handled(typ)
	}
	odd := []string{"", strings.Repeat("A", MaxEventTypeLen+1), "BAD\x1b[2J", "NEW\r\nLINE", "ÄÖ", "A B", `A"B`}
	for _, typ := range odd {
		c.Received(typ)
		c.Handled(typ)
	}
	recv, handled := c.Snapshot()
	assert.Len(t, recv, MaxEventTypes+1)
	assert.Len(t, handled, MaxEventTypes+1)
	for i := range MaxEventTypes {
		typ := fmt.Sprintf("T%04d", i)
		assert.Equal(t, uint64(1), recv[typ], typ)
		assert.Equal(t, uint64(1), handled[typ], typ)
	}
	assert.Equal(t, uint64(1000-MaxEventTypes+len(odd)), recv[OtherEventType])
	assert.Equal(t, recv[OtherEventType], handled[OtherEventType])

	// A known type keeps its name; the longest plain name is kept apart.
	var d EventCounts
	long := strings.Repeat("A", MaxEventTypeLen)
	d.Received("BAD\x00")
	d.Received(long)
	d.Received(long)
	d.Handled(long)
	d.Handled("NEVER_RECEIVED")
	recv, handled = d.Snapshot()
	assert.Equal(t, map[string]uint64{long: 2, OtherEventType: 1}, recv)
	// A type first seen handled (its receipt not yet counted) takes a place
	// of its own, as a received one would.
	assert.Equal(t, map[string]uint64{long: 1, "NEVER_RECEIVED": 1}, handled)
}

func TestEventCountsConcurrent(t *testing.T) {
	var c EventCounts
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				typ := fmt.Sprintf("G%dT%d", g, i)
				c.Received(typ)
				c.Handled(typ)
				c.Snapshot()
			}
		})
	}
	wg.Wait()
	recv, handled := c.Snapshot()
	assert.Len(t, recv, MaxEventTypes+1)
	var n uint64
	for _, v := range handled {
		n += v
	}
	assert.Equal(t, uint64(800), n)
}

// TestEventCountsHandledBeforeReceived: a handler can finish an event
// before its receipt is counted (the dispatcher runs as soon as the event
// is queued); both counts still use the type's own name.
func TestEventCountsHandledBeforeReceived(t *testing.T) {
	var c EventCounts
	c.Handled("READY")
	c.Received("READY")
	received, handled := c.Snapshot()
	assert.Equal(t, map[string]uint64{"READY": 1}, received)
	assert.Equal(t, map[string]uint64{"READY": 1}, handled)
}
