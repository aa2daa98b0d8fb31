package client

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/wire"
)

// The dedupe window holds at most maxDedupeKey bytes per id, whatever the
// gateway sends: a long id is remembered by its digest.
func TestDedupeBoundsIDLength(t *testing.T) {
	t.Parallel()
	s := newSession(nil, "a", "1", 4)
	accept := func(id string) incoming {
		return s.accept(wire.Frame{Op: wire.OpDispatch, T: wire.EventMessageCreate, ID: id}, "", time.Time{})
	}
	long := strings.Repeat("i", 1<<20)
	first := accept(long)
	assert.True(t, first.deliver)
	assert.Equal(t, long, first.ev.ID, "the event keeps its id")
	assert.False(t, accept(long).deliver, "still recognised")
	assert.True(t, accept(long[:len(long)-1]+"j").deliver, "another long id is another id")
	for k := range s.dedupe.seen {
		assert.LessOrEqual(t, len(k), maxDedupeKey)
	}
	for _, k := range s.dedupe.ring {
		assert.LessOrEqual(t, len(k), maxDedupeKey)
	}
	s.withdraw(first)
	assert.True(t, accept(long).deliver, "withdrawn")
	assert.True(t, accept("short").deliver)
	assert.False(t, accept("short").deliver)
}
