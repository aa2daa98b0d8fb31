package client

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The dedupe window holds at most maxDedupeKey bytes per id, whatever the
// gateway sends: a long id is remembered by its digest.
func TestDedupeBoundsIDLength(t *testing.T) {
	t.Parallel()
	d := newDedupe(4)
	long := strings.Repeat("i", 1<<20)
	assert.True(t, d.add(long))
	assert.False(t, d.add(long), "still recognised")
	assert.True(t, d.add(long[:len(long)-1]+"j"), "another long id is another id")
	for k := range d.seen {
		assert.LessOrEqual(t, len(k), maxDedupeKey)
	}
	for _, k := range d.ring {
		assert.LessOrEqual(t, len(k), maxDedupeKey)
	}
	d.remove(long)
	assert.True(t, d.add(long), "removed")
	assert.True(t, d.add("short"))
	assert.False(t, d.add("short"))
}
