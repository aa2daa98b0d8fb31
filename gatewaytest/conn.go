package gatewaytest

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/qqgate/qqgate/wire"
)

// conn is one accepted WebSocket connection. Fields after ws are guarded
// by Server.mu.
type conn struct {
	id     int
	ws     *websocket.Conn // nil for the connections of the fuzz target
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: the queue is not empty

	queue   []outItem
	closing bool     // a close or drop is queued: later frames are not acted on
	session *Session // the session this connection carries, if any
	hbTimer *time.Timer
	// authPending is true from an IDENTIFY or RESUME until the server
	// answered it (READY, RESUMED or a rejection); held is that frame
	// while HoldAuth keeps the answer back.
	authPending bool
	held        *wire.Frame
}

// outItem is a frame to write, or the end of the connection.
type outItem struct {
	data   []byte
	end    bool           // close the connection after the frames before it
	code   wire.CloseCode // close code; one that cannot be sent means a drop
	reason string
}

// serveWebSocket runs one connection: this goroutine reads, a second one
// writes the queue.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(MaxMessageBytes)
	c := s.openConn(ws)
	if c == nil {
		_ = ws.CloseNow()
		return
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(c)
	}()
	for {
		_, data, err := ws.Read(c.ctx)
		if err != nil {
			s.log.Debug().Int("conn", c.id).Err(err).Msg("connection ended")
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				s.mu.Lock()
				s.clientCloses = append(s.clientCloses, ClientClose{Conn: c.id, Code: wire.CloseCode(ce.Code), Reason: ce.Reason})
				s.mu.Unlock()
			}
			break
		}
		s.handleMessage(c, data)
	}
	s.connGone(c)
	c.cancel()
	<-writerDone
	_ = ws.CloseNow()
}

// openConn registers a connection and queues HELLO (and a scripted close).
// It returns nil when the server is closed.
func (s *Server) openConn(ws *websocket.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.totalConns++
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{id: s.totalConns, ws: ws, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	s.conns[c.id] = c
	s.log.Debug().Int("conn", c.id).Msg("connection accepted")
	hello, _ := wire.EncodeFrame(wire.OpHello, wire.Hello{HeartbeatInterval: s.opts.HeartbeatInterval.Milliseconds()})
	s.sendLocked(c, hello)
	if len(s.helloScript) > 0 {
		r := s.helloScript[0]
		s.helloScript = s.helloScript[1:]
		s.rejectLocked(c, r)
	}
	if d := s.opts.HeartbeatTimeout; d > 0 && !c.closing {
		c.hbTimer = time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.log.Debug().Int("conn", c.id).Msg("heartbeat timeout")
			s.closeLocked(c, wire.CloseSessionTimedOut, "Session timed out")
		})
	}
	s.notifyLocked()
	return c
}

// ClientClose is a close frame a client sent.
type ClientClose struct {
	Conn   int            // connection id
	Code   wire.CloseCode // the close code the client sent
	Reason string         // its reason
}

// ClientCloses returns the close frames clients sent, in order. A
// connection a client dropped without a close frame is not in it.
func (s *Server) ClientCloses() []ClientClose {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ClientClose(nil), s.clientCloses...)
}

// connGone forgets a connection whose reader has stopped.
func (s *Server) connGone(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.closing = true
	if c.hbTimer != nil {
		c.hbTimer.Stop()
	}
	s.detachLocked(c)
	delete(s.conns, c.id)
	s.notifyLocked()
}

// writeLoop writes the queue of c in order until the connection ends.
func (s *Server) writeLoop(c *conn) {
	defer func() { _ = c.ws.CloseNow() }()
	for {
		s.mu.Lock()
		items := c.queue
		c.queue = nil
		s.mu.Unlock()
		for _, it := range items {
			if it.end {
				if canSend(it.code) {
					_ = c.ws.Close(websocket.StatusCode(it.code), it.reason)
				}
				return
			}
			if err := c.ws.Write(c.ctx, websocket.MessageText, it.data); err != nil {
				return
			}
		}
		if len(items) == 0 {
			select {
			case <-c.wake:
			case <-c.ctx.Done():
				return
			}
		}
	}
}

// canSend reports whether code may be sent in a close frame (RFC 6455
// forbids 1004, 1005, 1006 and 1015 on the wire, and leaves 1015-2999
// unassigned); any other code means dropping the TCP connection.
func canSend(code wire.CloseCode) bool {
	switch code {
	case 1004, 1005, 1006, 1015:
		return false
	}
	return (code >= 1000 && code <= 1014) || (code >= 3000 && code <= 4999)
}

// sendLocked queues a frame, unless the connection is ending.
func (s *Server) sendLocked(c *conn, data []byte) {
	if c.closing {
		return
	}
	c.queue = append(c.queue, outItem{data: data})
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeLocked detaches the connection's session and queues the end of the
// connection after the frames already queued. Later calls do nothing.
func (s *Server) closeLocked(c *conn, code wire.CloseCode, reason string) {
	if c.closing {
		return
	}
	s.log.Debug().Int("conn", c.id).Int("code", int(code)).Str("reason", reason).Msg("closing connection")
	s.detachLocked(c)
	c.queue = append(c.queue, outItem{end: true, code: code, reason: reason})
	c.closing = true
	select {
	case c.wake <- struct{}{}:
	default:
	}
	s.notifyLocked()
}

// detachLocked separates a connection from its session.
func (s *Server) detachLocked(c *conn) {
	if c.session == nil {
		return
	}
	if c.session.conn == c {
		c.session.conn = nil
	}
	c.session = nil
	s.notifyLocked()
}

// attachLocked makes c carry sess.
func (s *Server) attachLocked(c *conn, sess *Session) {
	if old := sess.conn; old != nil && old != c {
		sess.takeovers++
		s.closeLocked(old, wire.CloseSessionTimedOut, "Session timed out")
	}
	sess.conn = c
	c.session = sess
	s.notifyLocked()
}

// Connections counts the WebSocket connections accepted so far. Connection
// ids run from 1 to Connections().
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totalConns
}

// LiveConnections counts the connections whose reader has not yet seen the
// end of the connection.
func (s *Server) LiveConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
