package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/resume"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// session is the session's identity and all that moves with it: the
// session id, its epoch, the intent level, when a connection of it was
// established and last alive, its seqs (the watermark), the dedupe window,
// and the record written for it. One lock, mu, guards all of it. It is
// held for memory work only: never across a store call, a log line or a
// status update, so the reader and the dispatcher, which take it once per
// event, never wait on a disk.
//
// A second lock, writeMu, orders the record's writes and nothing else: it
// is held across a store call (save, commit's throttled save, clear), with
// the record's snapshot taken under mu inside it, so no save of an old
// session lands after the clear that ended it, and no older snapshot after
// a newer one. Lock order: writeMu, then mu. The reader never takes
// writeMu.
//
// Its writers, by goroutine:
//   - the reader: accept (a new session on READY, a seq received, an id
//     into the dedupe window) and withdraw (undoing accept for an event
//     that never reached the queue);
//   - the dispatcher, or a handler's goroutine with HandlerConcurrency
//     above one: commit (a seq handled, the record saved, throttled);
//   - the loop (Run's goroutine between connections): clear (a policy
//     decision or an expired session), setLevel (a step-down);
//   - the connection, while it runs: markConnected (READY/RESUMED, on the
//     reader), alive (the savedAt refresh's callback and the connection's
//     end), save (READY/RESUMED's, on a goroutine of its own, and the
//     refresh's); the connection's end waits for its saves;
//   - Run before the loop starts: restore (the loaded record), setLevel;
//     New: setLevel;
//   - finish, at the end of Run or the connection's graceful shutdown,
//     once the dispatcher has stopped: save, or clearRecord on a logout.
//
// Its readers: accept stamps each event with the id and the epoch, and
// commit checks an event's epoch in the same hold of mu as the seq's
// Handled, so an event of an older session never commits; the loop and
// the connection read the id, the highest seq and the level (heartbeats,
// RESUME, IDENTIFY);
// Status reads view.
//
// The loop clears or restores a session only while no reader runs (before
// a connection or after its end), so accept and withdraw of one event see
// one session.
type session struct {
	store     SessionStore
	accountID string
	appID     string

	writeMu sync.Mutex // orders the record's writes; see above

	mu          sync.Mutex // guards everything below
	id          string     // "" for none
	epoch       uint64     // bumps on every new session, so stale events never commit
	level       int
	connectedAt time.Time
	// aliveAt is when a connection of the session was last known alive
	// (READY/RESUMED, while connected, its end), or the record's savedAt:
	// the session is resumed only within sessionstore.Expiry of it.
	aliveAt time.Time
	seqs    resume.Watermark
	dedupe  *dedupe             // nil: dedupe off; the pointer itself never changes
	extra   sessionstore.Record // the loaded record, for its unknown fields
}

func newSession(store SessionStore, accountID, appID string, dedupeWindow int) *session {
	s := &session{store: store, accountID: accountID, appID: appID}
	if dedupeWindow > 0 {
		s.dedupe = newDedupe(dedupeWindow)
	}
	return s
}

// startLocked makes id (possibly none) the session, its seqs starting at
// seq, alive as of now. Events of the previous session still queued never
// commit. mu is held.
func (s *session) startLocked(id string, seq uint64, now time.Time) {
	s.id = id
	s.aliveAt = time.Time{}
	if id != "" {
		s.aliveAt = now
	}
	s.epoch++
	s.seqs.Set(seq)
	if s.dedupe != nil {
		s.dedupe.reset()
	}
}

// restore adopts a loaded record: its unknown fields are written back with
// the next save and, when it is resumable, its session is held, alive as
// of its savedAt. Run's goroutine, before the loop starts.
func (s *session) restore(rec sessionstore.Record, resumable bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra = rec
	if resumable {
		s.startLocked(rec.SessionID, rec.LastSeq, now)
		s.aliveAt = rec.SavedAt
	}
}

// incoming is what accept made of a dispatch frame.
type incoming struct {
	ev       item
	deliver  bool   // hand ev to the queue
	progress bool   // a new seq: the session moved on
	received bool   // ev.Seq was marked received; withdraw it if it never reaches the queue
	prev     uint64 // the highest seq before this one, for withdraw and the too-far report
	deduped  bool   // ev.ID was added to the dedupe window
	tooFar   bool   // the seq is more than maxSeqJump above prev (0 for READY): not taken
	dropped  string // a replay or a duplicate was dropped: why, for the log
}

// accept takes a dispatch frame received at now into the session: READY
// (readyID its session id) starts a new session, replays and duplicates
// are dropped, and any other seq counts as received from here on; if the
// event then never reaches the queue, withdraw undoes it. The reader, per
// dispatch, in one hold of mu.
func (s *session) accept(f wire.Frame, readyID string, now time.Time) incoming {
	key := ""
	if f.ID != "" && s.dedupe != nil {
		key = dedupeKey(f.ID) // outside the lock: a long id is hashed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.seqs.Highest()
	in := incoming{prev: prev}
	switch {
	case f.T == wire.EventReady:
		seq := f.S
		if seq > maxSeqJump {
			in.tooFar = true
			seq = 0
		}
		// READY is protocol: its seq counts as handled at once.
		s.startLocked(readyID, seq, now)
		in.progress = true
	case f.S != 0 && f.S <= prev && f.T != wire.EventResumed:
		in.dropped = "replayed event already received; dropped"
		return in
	case f.S > prev && f.S-prev > maxSeqJump:
		// Delivered (nothing received is dropped), but its seq is not
		// taken: one forged seq must not turn every later event into a
		// "replay", nor reach the record, heartbeats or a RESUME.
		in.tooFar = true
		if key != "" && !s.dedupe.add(key) {
			in.dropped = "duplicate event id; dropped"
			return in
		}
		in.deduped = key != ""
	case key != "" && !s.dedupe.add(key):
		in.dropped = "duplicate event id; dropped"
		s.seqs.Received(f.S)
		s.seqs.Handled(f.S) // nothing to hand over: it counts as handled
		in.progress = f.S > prev
		return in
	default:
		in.deduped = key != ""
		s.seqs.Received(f.S)
		in.received = f.S != 0
		in.progress = f.S > prev || f.T == wire.EventResumed
	}
	in.ev = item{Event: event.Event{AccountID: s.accountID, Type: f.T, Seq: f.S, ID: f.ID, Data: f.D,
		ReceivedAt: now, SessionID: s.id}, epoch: s.epoch}
	in.deliver = true
	return in
}

// withdraw undoes accept for an event that never reached the queue: its
// seq is no longer received (heartbeats and the RESUME ask from the one
// before), and its id leaves the dedupe window, so the replay is handled.
// The reader.
func (s *session) withdraw(in incoming) {
	if !in.received && !in.deduped {
		return
	}
	key := ""
	if in.deduped {
		key = dedupeKey(in.ev.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.received {
		s.seqs.Withdraw(in.ev.Seq, in.prev)
	}
	if in.deduped {
		s.dedupe.remove(key)
	}
}

// commit marks ev handled, if it belongs to the current session, and saves
// the record, throttled (the store's timer writes it). The epoch check and
// the seq's Handled are one step under mu, as are the epoch bump and the
// seqs' reset in startLocked: an event of an older session never marks a
// seq of the new one. The dispatcher, per event (a handler's goroutine
// with HandlerConcurrency above one).
func (s *session) commit(ctx context.Context, ev item) error {
	if ev.Seq == 0 {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if ev.epoch != s.epoch {
		s.mu.Unlock()
		return nil
	}
	s.seqs.Handled(ev.Seq)
	rec, ok := s.recordLocked()
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.store.Save(ctx, rec)
}

// recordLocked gives the record of the session: its id, the committed seq
// and the intent level; false when no session is held. mu is held.
func (s *session) recordLocked() (sessionstore.Record, bool) {
	if s.id == "" {
		return sessionstore.Record{}, false
	}
	rec := s.extra
	rec.AccountID = s.accountID
	rec.AppID = s.appID
	rec.SessionID = s.id
	rec.LastSeq = s.seqs.Committed()
	rec.HasSeq = true
	rec.IntentLevelIndex = s.level
	if !s.connectedAt.IsZero() {
		rec.LastConnectedAt = s.connectedAt
	}
	return rec, true
}

// save writes the record, if a session is held; now skips the throttle.
// The connection, and finish.
func (s *session) save(ctx context.Context, now bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	rec, ok := s.recordLocked()
	s.mu.Unlock()
	if !ok {
		return nil
	}
	if now {
		return s.store.SaveNow(ctx, rec)
	}
	return s.store.Save(ctx, rec)
}

// clear forgets the session, in memory and then in the store. The loop.
func (s *session) clear(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	s.startLocked("", 0, time.Time{})
	s.mu.Unlock()
	return s.store.Clear(ctx, s.accountID)
}

// clearRecord deletes the record and leaves the session in memory as it
// is: a logout, once the dispatcher has stopped (finish, Logout).
func (s *session) clearRecord(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.store.Clear(ctx, s.accountID)
}

// setLevel records intent level i. The loop on a step-down; New and Run
// before the loop starts.
func (s *session) setLevel(i int) {
	s.mu.Lock()
	s.level = i
	s.mu.Unlock()
}

// intentLevel gives the intent level. The loop (its policy state,
// IDENTIFY, the connected log).
func (s *session) intentLevel() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// markConnected records READY or RESUMED at now: the connection is
// established and the session alive. The connection's reader.
func (s *session) markConnected(now time.Time) {
	s.mu.Lock()
	s.connectedAt = now
	s.aliveAt = now
	s.mu.Unlock()
}

// alive records that a connection of the session is alive at now. The
// connection (its savedAt refresh, its end).
func (s *session) alive(now time.Time) {
	s.mu.Lock()
	s.aliveAt = now
	s.mu.Unlock()
}

// expired reports whether a session is held that is no longer valid for
// RESUME at now: no connection of it was alive for sessionstore.Expiry
// (the record's own rule), so the server has most likely dropped it. The
// loop, before an attempt.
func (s *session) expired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id != "" && !s.aliveAt.IsZero() && now.Sub(s.aliveAt) >= sessionstore.Expiry
}

// held gives the session id, "" when none is held. The loop and the
// connection: RESUME or IDENTIFY (attempt, handshake, decide), and whether
// a new connection starts replaying (openConnection).
func (s *session) held() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// highest gives the highest seq received. The loop and the connection:
// heartbeats, RESUME, an oversized frame's signal, the connected log.
func (s *session) highest() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seqs.Highest()
}

// view gives the session id and its highest and committed seqs, for
// Status (any goroutine).
func (s *session) view() (id string, highest, committed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, s.seqs.Highest(), s.seqs.Committed()
}

// loadRecord reads the stored session and picks RESUME or IDENTIFY: RESUME
// for a record valid for it, IDENTIFY otherwise.
func (c *Client) loadRecord(ctx context.Context) resume.Mode {
	rec, err := c.store.Load(ctx, c.cfg.AccountID, c.cfg.AppID)
	if err != nil && rec.AccountID == c.cfg.AccountID {
		// Ours but not resumable: its intent level still counts.
		c.setLevel(rec.IntentLevelIndex)
	}
	switch {
	case err == nil:
	case errors.Is(err, sessionstore.ErrNoSession):
		c.log.Debug().Msg("no resumable session record; will IDENTIFY")
		return resume.Identify
	default:
		c.log.Warn().Err(err).Msg("session record unusable; will IDENTIFY")
		return resume.Identify
	}
	c.setLevel(rec.IntentLevelIndex)
	now := c.clock.Now()
	resumable := rec.Resumable(now, c.cfg.AppID)
	c.sess.restore(rec, resumable, now)
	if !resumable {
		return resume.Identify
	}
	c.log.Info().Str("session", rec.SessionID).Uint64("seq", rec.LastSeq).
		Dur("age", now.Sub(rec.SavedAt)).Msg("resumable session record found")
	return resume.Resume
}

// persist writes the record: the session id, the committed seq and the
// intent level. now skips the throttle.
func (c *Client) persist(ctx context.Context, now bool) {
	if err := c.sess.save(ctx, now); err != nil {
		c.storeError(err, "save session record")
	}
}

func (c *Client) storeError(err error, what string) {
	c.update(func(s *Status) { s.StoreErrors++ })
	c.log.Error().Err(err).Msg(what + " failed; the bot keeps running")
}

// clearSession forgets the session in memory and on disk.
func (c *Client) clearSession(ctx context.Context) {
	if err := c.sess.clear(ctx); err != nil {
		c.storeError(err, "clear session record")
	}
}

// sessionExpired reports whether a session is held that is no longer
// valid for RESUME (see session.expired).
func (c *Client) sessionExpired() bool { return c.sess.expired(c.clock.Now()) }

// alive records that a connection of the session is alive now.
func (c *Client) alive() { c.sess.alive(c.clock.Now()) }

func (c *Client) clearRecord(ctx context.Context) error {
	return c.sess.clearRecord(ctx)
}

// dedupe remembers the ids of recent events in a ring that grows up to its
// size, so an idle client costs next to nothing. It holds keys (see
// dedupeKey). It has no lock: the session guards it.
type dedupe struct {
	size int
	ring []string
	next int
	seen map[string]struct{}
}

func newDedupe(n int) *dedupe {
	return &dedupe{size: n, seen: map[string]struct{}{}}
}

// maxDedupeKey bounds the bytes the window keeps per id: longer ids (the
// gateway's are well under 100 bytes) are kept as their SHA-256.
const maxDedupeKey = 128

// dedupeKey gives what the window keeps for id: id itself, or the digest
// of a long one.
func dedupeKey(id string) string {
	if len(id) <= maxDedupeKey {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "\x00sha256:" + hex.EncodeToString(sum[:])
}

// add records key and reports whether it was new.
func (d *dedupe) add(key string) bool {
	if _, ok := d.seen[key]; ok {
		return false
	}
	if len(d.ring) < d.size {
		d.ring = append(d.ring, key)
	} else {
		delete(d.seen, d.ring[d.next])
		d.ring[d.next] = key
		d.next = (d.next + 1) % d.size
	}
	d.seen[key] = struct{}{}
	return true
}

// remove forgets key, for an event that was never handed over. The ring
// slot stays until it is reused; a later add of the same key is new.
func (d *dedupe) remove(key string) {
	delete(d.seen, key)
}

func (d *dedupe) reset() {
	d.seen = map[string]struct{}{}
	d.ring = nil
	d.next = 0
}
