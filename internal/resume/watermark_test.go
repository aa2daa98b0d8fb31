package resume

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWatermarkInOrder(t *testing.T) {
	t.Parallel()
	var w Watermark
	assert.Zero(t, w.Highest())
	assert.Zero(t, w.Committed())
	for seq := uint64(1); seq <= 3; seq++ {
		w.Received(seq)
		assert.Equal(t, seq, w.Highest())
		assert.Equal(t, seq-1, w.Committed())
		w.Handled(seq)
		assert.Equal(t, seq, w.Committed())
	}
	assert.Zero(t, w.outstanding())
}

func TestWatermarkOutOfOrder(t *testing.T) {
	t.Parallel()
	var w Watermark
	for seq := uint64(1); seq <= 5; seq++ {
		w.Received(seq)
	}
	assert.Equal(t, uint64(5), w.Highest())
	steps := []struct{ handled, committed uint64 }{
		{3, 0}, {1, 1}, {5, 1}, {2, 3}, {4, 5},
	}
	for _, s := range steps {
		w.Handled(s.handled)
		assert.Equal(t, s.committed, w.Committed(), "after handling %d", s.handled)
	}
	assert.Zero(t, w.outstanding())
	assert.Equal(t, uint64(5), w.Highest())
}

func TestWatermarkGapsAndDuplicates(t *testing.T) {
	t.Parallel()
	var w Watermark
	w.Received(2)
	w.Received(7) // seqs 3-6 never arrive
	w.Received(7) // duplicate
	assert.Equal(t, 2, w.outstanding())
	w.Handled(7)
	assert.Equal(t, uint64(1), w.Committed())
	w.Handled(2)
	assert.Equal(t, uint64(7), w.Committed())

	w.Handled(7)   // twice: ignored
	w.Handled(100) // never received: ignored
	w.Received(0)  // no seq: ignored
	w.Received(5)  // a replay at or below Committed: ignored
	assert.Equal(t, uint64(7), w.Committed())
	assert.Equal(t, uint64(7), w.Highest())
	assert.Zero(t, w.outstanding())
}

func TestWatermarkSetReset(t *testing.T) {
	t.Parallel()
	var w Watermark
	w.Set(40)
	assert.Equal(t, uint64(40), w.Highest())
	assert.Equal(t, uint64(40), w.Committed())
	w.Received(41)
	w.Received(42)
	w.Handled(42)
	assert.Equal(t, uint64(40), w.Committed())
	assert.Equal(t, uint64(42), w.Highest())
	w.Set(0)
	assert.Zero(t, w.Highest())
	assert.Zero(t, w.Committed())
	assert.Zero(t, w.outstanding())
	w.Received(1)
	w.Handled(1)
	assert.Equal(t, uint64(1), w.Committed())
}

// Handlers finishing in interleaved streams (as concurrent handlers do;
// the Watermark itself has no lock, its owner serialises the calls, and
// the client's session tests run them concurrently) leave nothing
// outstanding and everything committed.
func TestWatermarkInterleaved(t *testing.T) {
	t.Parallel()
	var w Watermark
	const n = 2000
	for seq := uint64(1); seq <= n; seq++ {
		w.Received(seq)
	}
	for g := range uint64(4) {
		for seq := 4 - g; seq <= n; seq += 4 {
			w.Handled(seq)
			assert.LessOrEqual(t, w.Committed(), w.Highest())
		}
	}
	assert.Equal(t, uint64(n), w.Committed())
	assert.Zero(t, w.outstanding())
}

func TestWatermarkWithdraw(t *testing.T) {
	t.Parallel()
	var w Watermark
	w.Set(1)
	w.Received(2)
	w.Received(3)
	w.Received(4) // never reaches the handler
	w.Handled(2)
	w.Withdraw(4, 3)
	assert.Equal(t, uint64(3), w.Highest(), "a resume asks from 3 again")
	assert.Equal(t, uint64(2), w.Committed())
	assert.Equal(t, 1, w.outstanding())
	w.Handled(3)
	assert.Equal(t, uint64(3), w.Committed(), "nothing stuck behind the withdrawn seq")
	w.Received(4) // the replay
	w.Handled(4)
	assert.Equal(t, uint64(4), w.Committed())

	w.Withdraw(9, 4) // not outstanding: ignored
	assert.Equal(t, uint64(4), w.Highest())

	// The last outstanding one withdrawn: everything received is handled.
	w.Received(5)
	w.Withdraw(5, 4)
	assert.Equal(t, uint64(4), w.Highest())
	assert.Equal(t, uint64(4), w.Committed())
	assert.Zero(t, w.outstanding())
}
