package resume

import "slices"

// Watermark tracks the sequence numbers of one session: the highest
// received, sent in heartbeats and used for resumes within the process, and
// the committed one, below which every received event has been handled,
// which is what the record on disk stores.
//
// Handlers may finish out of order: Committed stays below the oldest event
// still in hand. Memory is one entry per received-but-unhandled event, so
// it is bounded by the client's event queue.
//
// Seq 0 means "none" (the gateway numbers dispatches from 1). The zero
// value is ready to use and has no seq. It is not safe for concurrent use:
// its owner guards it, with the lock that guards the rest of the session
// (the seqs move with the session id and its epoch, so one lock covers
// both).
type Watermark struct {
	highest   uint64
	committed uint64   // never above highest
	pending   []uint64 // received, not handled, > committed, ascending
}

// Received records that the dispatch seq was read. Seq 0, and seqs at or
// below Committed (already handled, e.g. a replay), are ignored.
func (w *Watermark) Received(seq uint64) {
	if seq == 0 || seq <= w.committed {
		return
	}
	w.highest = max(w.highest, seq)
	i, found := slices.BinarySearch(w.pending, seq)
	if !found {
		w.pending = slices.Insert(w.pending, i, seq)
	}
}

// Handled records that the handler for seq returned. Seqs not received, or
// already handled, are ignored.
func (w *Watermark) Handled(seq uint64) {
	i, found := slices.BinarySearch(w.pending, seq)
	if !found {
		return
	}
	w.pending = slices.Delete(w.pending, i, i+1)
	if len(w.pending) == 0 {
		w.committed = w.highest
		w.pending = w.pending[:0:0] // let a burst's backing array go
	} else {
		w.committed = max(w.committed, w.pending[0]-1)
	}
}

// Withdraw undoes Received(seq) for an event that never reached its
// handler (the connection ended while it waited for room in the queue):
// seq is no longer outstanding, and Highest goes back to prev, what it was
// before that Received call (never below Committed), so a resume asks for
// seq again. A seq not outstanding is ignored.
func (w *Watermark) Withdraw(seq, prev uint64) {
	i, found := slices.BinarySearch(w.pending, seq)
	if !found {
		return
	}
	w.pending = slices.Delete(w.pending, i, i+1)
	if w.highest == seq {
		w.highest = max(prev, w.committed)
		for _, p := range w.pending {
			w.highest = max(w.highest, p)
		}
	}
	if len(w.pending) == 0 {
		w.committed = w.highest
		w.pending = w.pending[:0:0]
	} else {
		w.committed = max(w.committed, w.pending[0]-1)
	}
}

// Highest gives the highest seq received, or 0.
func (w *Watermark) Highest() uint64 {
	return w.highest
}

// Committed gives the highest seq such that every seq received up to it has
// been handled, or 0. It never goes down until [Watermark.Set].
func (w *Watermark) Committed() uint64 {
	return w.committed
}

// outstanding gives how many received events are not handled yet.
func (w *Watermark) outstanding() int {
	return len(w.pending)
}

// Set starts from a stored seq, e.g. the record's lastSeq before a RESUME:
// both Highest and Committed become seq, and nothing is outstanding.
func (w *Watermark) Set(seq uint64) {
	w.highest = seq
	w.committed = seq
	w.pending = nil
}
