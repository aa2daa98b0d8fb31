package gatewaytest

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/qqgate/qqgate/wire"
)

var ackFrame = []byte(`{"op":11}`)

// handleMessage records and acts on one client message. It never panics
// and never blocks on the network: it only changes state and queues frames.
func (s *Server) handleMessage(c *conn, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := wire.DecodeFrame(data)
	s.received = append(s.received, Received{Conn: c.id, At: time.Now(), Frame: f, Raw: bytes.Clone(data), Err: err})
	s.notifyLocked()
	if c.closing || s.closed {
		return
	}
	if err != nil {
		s.log.Debug().Int("conn", c.id).Err(err).Msg("undecodable frame")
		s.closeLocked(c, wire.CloseDecodeError, "decode error")
		return
	}
	s.log.Debug().Int("conn", c.id).Stringer("op", f.Op).Msg("frame received")
	switch f.Op {
	case wire.OpHeartbeat:
		if s.opts.RejectEarlyHeartbeat && c.authPending {
			s.log.Debug().Int("conn", c.id).Msg("heartbeat before READY/RESUMED")
			s.closeLocked(c, wire.CloseNotAuthenticated, "not authenticated")
			return
		}
		if !s.withholdACKs {
			s.sendLocked(c, ackFrame)
		}
		if c.hbTimer != nil {
			c.hbTimer.Reset(s.opts.HeartbeatTimeout)
		}
	case wire.OpIdentify, wire.OpResume:
		if s.holdAuth || c.held != nil {
			if c.held != nil {
				s.closeLocked(c, wire.CloseAlreadyAuthenticated, "already authenticated")
				return
			}
			c.authPending = true
			c.held = &f
			return
		}
		s.authLocked(c, f)
	default:
		s.closeLocked(c, wire.CloseInvalidOpcode, "invalid opcode")
	}
}

// authLocked answers an IDENTIFY or RESUME.
func (s *Server) authLocked(c *conn, f wire.Frame) {
	c.authPending = false
	if f.Op == wire.OpIdentify {
		s.identifyLocked(c, f)
	} else {
		s.resumeLocked(c, f)
	}
}

func (s *Server) identifyLocked(c *conn, f wire.Frame) {
	var id wire.Identify
	if err := json.Unmarshal(f.D, &id); err != nil {
		s.closeLocked(c, wire.CloseDecodeError, "decode error")
		return
	}
	value, ok := strings.CutPrefix(id.Token, wire.TokenPrefix)
	appID, valid := s.tokenAppLocked(value)
	if !ok || !valid {
		s.closeLocked(c, wire.CloseAuthenticationFailed, "authentication failed")
		return
	}
	if c.session != nil {
		s.closeLocked(c, wire.CloseAlreadyAuthenticated, "already authenticated")
		return
	}
	if s.startLimit.Remaining > 0 {
		s.startLimit.Remaining--
	}
	if len(s.identifyScript) > 0 {
		r := s.identifyScript[0]
		s.identifyScript = s.identifyScript[1:]
		s.rejectLocked(c, r)
		return
	}
	if allowed := s.opts.AllowedIntents; allowed != 0 && id.Intents&^allowed != 0 {
		s.rejectLocked(c, s.opts.IntentRejection.rejection())
		return
	}
	if n := id.Shard[1]; id.Shard[0] < 0 || n < 0 || (n > 0 && id.Shard[0] >= n) {
		s.closeLocked(c, wire.CloseInvalidShard, "invalid shard")
		return
	}
	sess := &Session{
		srv:     s,
		id:      newSessionID(),
		appID:   appID,
		shard:   id.Shard,
		intents: id.Intents,
		user:    botUser(appID),
	}
	s.sessions[sess.id] = sess
	s.order = append(s.order, sess)
	s.log.Info().Int("conn", c.id).Str("session", sess.id).Str("app", appID).Msg("session ready")
	s.attachLocked(c, sess)
	ready, _ := json.Marshal(wire.Ready{Version: 1, SessionID: sess.id, User: sess.user, Shard: id.Shard})
	s.emitLocked(sess, wire.EventReady, "", ready, false)
}

// botUser is the READY user of an app: a stable numeric id.
func botUser(appID string) wire.User {
	h := fnv.New64a()
	_, _ = h.Write([]byte(appID))
	return wire.User{
		ID:       strconv.FormatUint(h.Sum64()>>1, 10),
		Username: "qqgate-test-bot-" + appID,
		Bot:      true,
	}
}

func (s *Server) resumeLocked(c *conn, f wire.Frame) {
	var rs wire.Resume
	if err := json.Unmarshal(f.D, &rs); err != nil {
		s.closeLocked(c, wire.CloseDecodeError, "decode error")
		return
	}
	appID, valid := s.tokenAppLocked(strings.TrimPrefix(rs.Token, wire.TokenPrefix))
	if !valid {
		s.closeLocked(c, wire.CloseAuthenticationFailed, "authentication failed")
		return
	}
	if c.session != nil {
		s.closeLocked(c, wire.CloseAlreadyAuthenticated, "already authenticated")
		return
	}
	act := resumeAction{mode: -1}
	if len(s.resumeScript) > 0 {
		act = s.resumeScript[0]
		s.resumeScript = s.resumeScript[1:]
		switch {
		case act.custom != nil:
			s.rejectLocked(c, *act.custom)
			return
		case !act.mode.accepts():
			s.rejectLocked(c, act.mode.rejection())
			return
		}
	}
	sess := s.sessions[rs.SessionID]
	if sess == nil || sess.expired || sess.appID != appID {
		s.rejectLocked(c, s.opts.ResumeRejection.rejection())
		return
	}
	if rs.Seq > sess.seq {
		s.closeLocked(c, wire.CloseInvalidSeq, "invalid seq")
		return
	}
	s.attachLocked(c, sess)
	var missed [][]byte
	for _, e := range sess.log {
		if e.frame.S > rs.Seq && !e.noReplay {
			missed = append(missed, e.data)
		}
	}
	if act.mode == ResumeDropMidReplay {
		for _, data := range missed[:(len(missed)+1)/2] {
			s.sendLocked(c, data)
		}
		s.closeLocked(c, wire.CloseAbnormal, "")
		return
	}
	for _, data := range missed {
		s.sendLocked(c, data)
	}
	if act.mode == ResumeDropBeforeResumed {
		s.closeLocked(c, wire.CloseAbnormal, "")
		return
	}
	sess.resumes++
	s.log.Info().Int("conn", c.id).Str("session", sess.id).Uint64("from", rs.Seq).Msg("session resumed")
	s.emitLocked(sess, wire.EventResumed, "", json.RawMessage(`""`), true)
	if act.mode == ResumeAcceptThenClose {
		s.closeLocked(c, wire.CloseSessionTimedOut, "Session timed out")
	}
}
