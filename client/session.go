package client

import (
	"context"
	"errors"
	"time"

	"github.com/qqgate/qqgate/internal/resume"
	"github.com/qqgate/qqgate/sessionstore"
)

// The session's identity is Client.sess (id, epoch, intent level,
// connectedAt, aliveAt), guarded by Client.mu, the one lock for it and
// the status. Its writers, each named here:
//   - startSession (id, epoch, aliveAt; the watermark and the dedupe
//     window start over with it): loadRecord before the first connection,
//     the reader goroutine on READY, and clearSession on the loop
//     goroutine (a policy decision or an expired session);
//   - setLevel (level): New, loadRecord, and the loop on a step-down;
//   - markConnected (connectedAt, aliveAt): the loop on READY/RESUMED;
//   - alive (aliveAt): the loop, on the savedAt refresh and at the end
//     of a connection.
//
// Its readers: the reader stamps each event with id and epoch; the
// dispatcher checks an event's epoch under the same lock as its commit,
// so an event of an older session never commits; persist and Status.
//
// The seqs (Client.wm) and the dedupe window have locks of their own;
// persistMu orders the record's writes: no save of an old session lands
// after clearSession.

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
	c.persistMu.Lock()
	c.extra = rec
	c.persistMu.Unlock()
	c.setLevel(rec.IntentLevelIndex)
	if !rec.Resumable(c.clock.Now(), c.cfg.AppID) {
		return resume.Identify
	}
	c.startSession(rec.SessionID, rec.LastSeq)
	c.mu.Lock()
	c.sess.aliveAt = rec.SavedAt
	c.mu.Unlock()
	c.log.Info().Str("session", rec.SessionID).Uint64("seq", rec.LastSeq).
		Dur("age", c.clock.Now().Sub(rec.SavedAt)).Msg("resumable session record found")
	return resume.Resume
}

// persist writes the record: the session id, the committed seq and the
// intent level. now skips the throttle.
func (c *Client) persist(ctx context.Context, now bool) {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	id, level, connectedAt := c.sess.id, c.sess.level, c.sess.connectedAt
	c.mu.Unlock()
	if id == "" {
		return
	}
	rec := c.extra
	rec.AccountID = c.cfg.AccountID
	rec.AppID = c.cfg.AppID
	rec.SessionID = id
	rec.LastSeq = c.wm.Committed()
	rec.HasSeq = true
	rec.IntentLevelIndex = level
	if !connectedAt.IsZero() {
		rec.LastConnectedAt = connectedAt
	}
	var err error
	if now {
		err = c.store.SaveNow(ctx, rec)
	} else {
		err = c.store.Save(ctx, rec)
	}
	if err != nil {
		c.storeError(err, "save session record")
	}
}

func (c *Client) storeError(err error, what string) {
	c.update(func(s *Status) { s.StoreErrors++ })
	c.log.Error().Err(err).Msg(what + " failed; the bot keeps running")
}

// clearSession forgets the session in memory and on disk.
func (c *Client) clearSession(ctx context.Context) {
	// Under persistMu, so that no save of the old session can land after
	// the clear.
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.startSession("", 0)
	if err := c.clearRecord(ctx); err != nil {
		c.storeError(err, "clear session record")
	}
}

// sessionExpired reports whether a session is held that is no longer
// valid for RESUME: no connection of it was alive for sessionstore.Expiry
// (the record's own rule), so the server has most likely dropped it.
func (c *Client) sessionExpired() bool {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.id != "" && !c.sess.aliveAt.IsZero() && now.Sub(c.sess.aliveAt) >= sessionstore.Expiry
}

// alive records that a connection of the session is alive now.
func (c *Client) alive() {
	now := c.clock.Now()
	c.mu.Lock()
	c.sess.aliveAt = now
	c.mu.Unlock()
}

// startSession makes id (possibly none) the session, its seqs starting at
// seq. Events of the previous session still queued never commit.
func (c *Client) startSession(id string, seq uint64) {
	now := c.clock.Now()
	c.mu.Lock()
	c.sess.id = id
	c.sess.aliveAt = time.Time{}
	if id != "" {
		c.sess.aliveAt = now
	}
	c.sess.epoch++
	c.wm.Set(seq)
	c.mu.Unlock()
	if c.dedupe != nil {
		c.dedupe.reset()
	}
}

func (c *Client) clearRecord(ctx context.Context) error {
	return c.store.Clear(ctx, c.cfg.AccountID)
}

// markConnected records READY or RESUMED at now: the connection is
// established and the session alive.
func (c *Client) markConnected(now time.Time) {
	c.mu.Lock()
	c.sess.connectedAt = now
	c.sess.aliveAt = now
	c.mu.Unlock()
}
