package client

import (
	"context"
	"encoding/json"
	"io"
	"sync"

	"github.com/qqgate/qqgate/wire"
)

// read is the connection's reader, run by the goroutine that called
// runConn, until reading ends (k.readErr says why, unless the connection
// recorded its end). It hands dispatch events to the queue itself,
// waiting when it is full (only reading pauses: heartbeats go out from
// their timer's callback), and handles control frames inline.
//
// Frames are read into buffers reused from frame to frame (and shared
// by all connections) and decoded in place; an event's own bytes (d, and its id) are its only
// allocations, and common event types are shared strings.
func (k *connection) read() {
	// The reads get a context that never ends: for one that can,
	// coder/websocket arms and disarms a context.AfterFunc on every read,
	// allocations on every frame. A blocked read is ended by closing the
	// WebSocket instead (see connection.abort and the shutdown).
	rctx := context.WithoutCancel(k.ctx)
	for {
		_, r, err := k.ws.Reader(rctx)
		if err != nil {
			k.readErr = err
			return
		}
		if !k.readOne(r) {
			return
		}
	}
}

// frameBuffers are the read buffers of every connection: a reader takes
// one once a frame has begun to arrive and gives it back once the frame
// is handed on, so an idle connection, waiting for its next frame, holds
// none.
var frameBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, minFrameBuffer)
	return &b
}}

// readOne reads the frame r and handles it; false ends reading.
func (k *connection) readOne(r io.Reader) bool {
	bp := frameBuffers.Get().(*[]byte)
	buf, err := readFrame(r, *bp)
	defer func() {
		if cap(buf) <= maxKeptFrameBuffer { // sized for the common frame, not the largest
			*bp = buf[:0]
			frameBuffers.Put(bp)
		}
	}()
	if err != nil {
		k.readErr = err
		return false
	}
	k.frames.Add(1)
	e, err := wire.ScanFrame(buf)
	if err != nil {
		k.c.update(func(s *Status) { s.BadFrames++ })
		k.c.log.Warn().Err(err).Int("bytes", len(buf)).Msg("undecodable frame skipped")
		return true
	}
	if e.Op != wire.OpDispatch {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.onControlLocked(e.Op, e.D)
	}
	return k.onDispatch(e)
}

// Read buffer sizes: the first is room for a common frame (message events
// are about half a KiB), and a buffer grown past maxKeptFrameBuffer for a
// large frame is let go after it, not kept for reuse.
const (
	minFrameBuffer     = 1 << 10
	maxKeptFrameBuffer = 8 << 10
)

// readFrame reads a whole message from r into buf's array (grown when it
// is too small) and returns it.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(cap(buf), minFrameBuffer))...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// onDispatch hands a dispatch to the queue, then handles READY or
// RESUMED. false: the connection ended before the event reached the
// queue.
func (k *connection) onDispatch(e wire.Envelope) bool {
	c := k.c
	f := wire.Frame{Op: e.Op, S: e.S, T: eventType(e.T), ID: string(e.ID)}
	if e.D != nil {
		f.D = append(json.RawMessage(nil), e.D...)
	}
	in := c.accept(f)
	replaying := k.replaying
	if f.T == wire.EventResumed {
		k.replaying = false
	}
	if in.progress {
		k.progress.Add(1)
	}
	if !in.deliver {
		return true
	}
	// A RESUMED or a replay is counted before the put, so that a handler
	// done with it (the dispatcher may start on it at once) finds it
	// counted.
	c.countResume(in.ev, replaying, 1)
	if !k.d.enqueue(k.queueCtx, in.ev, &k.blocked) {
		// The connection ended before the event reached the queue: it
		// was never received, so the RESUME asks for it again.
		c.countResume(in.ev, replaying, -1)
		c.sess.withdraw(in)
		k.readErr = k.queueCtx.Err()
		return false
	}
	if c.cfg.OnReceive != nil {
		c.cfg.OnReceive(in.ev.Event)
	}
	if f.T == wire.EventReady || f.T == wire.EventResumed {
		k.onConnected(f.T)
	}
	return true
}

// eventTypes are the event types common enough to be shared strings
// rather than one allocation per event.
var eventTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{wire.EventReady, wire.EventResumed,
		wire.EventAtMessageCreate, wire.EventMessageCreate, wire.EventDirectMessageCreate,
		wire.EventC2CMessageCreate, wire.EventGroupAtMessageCreate, wire.EventGroupMessageCreate,
		wire.EventInteractionCreate, wire.EventGroupAddRobot, wire.EventGroupDelRobot,
		wire.EventGroupMsgReceive, wire.EventGroupMsgReject, wire.EventFriendAdd, wire.EventFriendDel,
		wire.EventC2CMsgReceive, wire.EventC2CMsgReject, wire.EventMessageDelete,
		wire.EventPublicMessageDelete, wire.EventDirectMessageDelete,
		wire.EventMessageAuditPass, wire.EventMessageAuditReject} {
		m[t] = t
	}
	return m
}()

// eventType gives t as a string, shared for the common types.
func eventType(t []byte) string {
	if s, ok := eventTypes[string(t)]; ok {
		return s
	}
	return string(t)
}

// accept turns a dispatch frame into an Event (see session.accept): it
// decodes READY's session id, then reports a seq too far ahead and a
// dropped replay or duplicate, outside the session's lock.
func (c *Client) accept(f wire.Frame) incoming {
	var readyID string
	if f.T == wire.EventReady {
		var r wire.Ready
		if err := json.Unmarshal(f.D, &r); err != nil || r.SessionID == "" {
			c.update(func(s *Status) { s.BadFrames++ })
			c.log.Warn().Msg("READY without a session id skipped")
			return incoming{}
		}
		readyID = r.SessionID
	}
	in := c.sess.accept(f, readyID, c.clock.Now())
	if in.tooFar {
		highest := in.prev
		if f.T == wire.EventReady {
			highest = 0 // a new session: nothing seen yet
		}
		c.seqTooFar(f, highest)
	}
	if in.dropped != "" {
		c.duplicate(f, in.dropped)
	}
	return in
}

// countResume adds n (1, or -1 to take it back) to Resumes for RESUMED,
// to Replayed for an event between RESUME and RESUMED.
func (c *Client) countResume(ev item, replaying bool, n int) {
	switch {
	case ev.Type == wire.EventResumed:
		c.update(func(s *Status) { s.Resumes += uint64(n) })
	case replaying:
		c.update(func(s *Status) { s.Replayed += uint64(n) })
	}
}
