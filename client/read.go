package client

import (
	"context"
	"encoding/json"
	"io"
	"sync"

	"github.com/qqgate/qqgate/wire"
)

// read is the reader goroutine. Exit: a read error (the connection ended
// or ctx was cancelled, which closes it). It feeds dispatch events to the
// queue, waiting when it is full, and everything else to the loop. The
// reader, not the loop, enqueues dispatches: a full queue then pauses
// reading only, and the loop goes on sending heartbeats.
//
// Frames are read into buffers reused from frame to frame (and shared
// by all connections) and decoded in place; an event's own bytes (d, and its id) are its only
// allocations, and common event types are shared strings.
func (c *Client) read(ctx, readCtx context.Context, cn *conn, d *dispatcher) {
	defer close(cn.done)
	// The reads themselves get a context that never ends: for one that
	// can, coder/websocket arms and disarms a context.AfterFunc on every
	// read, allocations on every frame. Ending readCtx still ends a
	// blocked read, as it would inside coder/websocket: by closing the
	// WebSocket, armed once for the whole connection.
	stop := context.AfterFunc(readCtx, func() { _ = cn.ws.CloseNow() })
	defer stop()
	rctx := context.WithoutCancel(readCtx)
	for {
		_, r, err := cn.ws.Reader(rctx)
		if err != nil {
			cn.err = err
			return
		}
		if !c.readOne(ctx, cn, d, r) {
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

// readOne reads the frame r and hands it on; false ends the reader
// (cn.err says why).
func (c *Client) readOne(ctx context.Context, cn *conn, d *dispatcher, r io.Reader) bool {
	bp := frameBuffers.Get().(*[]byte)
	buf, err := readFrame(r, *bp)
	defer func() {
		if cap(buf) <= maxKeptFrameBuffer { // sized for the common frame, not the largest
			*bp = buf[:0]
			frameBuffers.Put(bp)
		}
	}()
	if err != nil {
		cn.err = err
		return false
	}
	cn.frames.Add(1)
	e, err := wire.ScanFrame(buf)
	if err != nil {
		c.update(func(s *Status) { s.BadFrames++ })
		c.log.Warn().Err(err).Int("bytes", len(buf)).Msg("undecodable frame skipped")
	} else if !c.deliverFrame(ctx, cn, d, e) {
		cn.err = ctx.Err()
		return false
	}
	return true
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

// deliverFrame hands a decoded frame on: a dispatch to the queue (READY and
// RESUMED to the loop as well), anything else to the loop. It returns
// false if ctx ended first.
func (c *Client) deliverFrame(ctx context.Context, cn *conn, d *dispatcher, e wire.Envelope) bool {
	if e.Op != wire.OpDispatch {
		f := wire.Frame{Op: e.Op, S: e.S, T: string(e.T), ID: string(e.ID)}
		if e.D != nil {
			f.D = append(json.RawMessage(nil), e.D...)
		}
		select {
		case cn.ctrl <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	f := wire.Frame{Op: e.Op, S: e.S, T: eventType(e.T), ID: string(e.ID)}
	if e.D != nil {
		f.D = append(json.RawMessage(nil), e.D...)
	}
	in := c.accept(f)
	replaying := cn.replaying
	if f.T == wire.EventResumed {
		cn.replaying = false
	}
	if in.progress {
		cn.progress.Add(1)
	}
	if !in.deliver {
		return true
	}
	if !d.enqueue(ctx, in.ev, &cn.blocked) {
		// The connection ended before the event reached the queue: it
		// was never received, so the RESUME asks for it again.
		c.sess.withdraw(in)
		return false
	}
	c.queued(in.ev, replaying)
	if f.T == wire.EventReady || f.T == wire.EventResumed {
		select {
		case cn.ctrl <- wire.Frame{Op: wire.OpDispatch, T: f.T}:
		case <-ctx.Done():
			return false
		}
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

// queued counts an event that reached the queue and reports it to
// OnReceive.
func (c *Client) queued(ev item, replaying bool) {
	c.events.Add(1)
	switch {
	case ev.Type == wire.EventResumed:
		c.update(func(s *Status) { s.Resumes++ })
	case replaying:
		c.update(func(s *Status) { s.Replayed++ })
	}
	if c.cfg.OnReceive != nil {
		c.cfg.OnReceive(ev.Event)
	}
}
