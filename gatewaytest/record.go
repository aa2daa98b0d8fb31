package gatewaytest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// Received is one message a client sent.
type Received struct {
	Conn  int        // connection id
	At    time.Time  // when the server read it
	Frame wire.Frame // the decoded frame; zero when Err is set
	Raw   []byte     // the message as received
	Err   error      // the decode error, for a message that is not a frame
}

// Heartbeat is one op 1 a client sent.
type Heartbeat struct {
	Conn   int
	At     time.Time
	D      json.RawMessage // as sent: "null", a number, or nil when absent
	Seq    uint64          // the number in D, when HasSeq
	HasSeq bool            // D is a non-negative integer
}

// Received returns every message received from clients, in order.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// ReceivedOn returns the messages received on connection conn.
func (s *Server) ReceivedOn(conn int) []Received {
	var out []Received
	for _, r := range s.Received() {
		if r.Conn == conn {
			out = append(out, r)
		}
	}
	return out
}

// Identifies returns the d of every IDENTIFY received (whatever came of
// it), in order; one whose d does not decode is left out.
func (s *Server) Identifies() []wire.Identify {
	var out []wire.Identify
	for _, r := range s.Received() {
		var id wire.Identify
		if r.Err == nil && r.Frame.Op == wire.OpIdentify && json.Unmarshal(r.Frame.D, &id) == nil {
			out = append(out, id)
		}
	}
	return out
}

// Resumes returns the d of every RESUME received (whatever came of it), in
// order; one whose d does not decode is left out.
func (s *Server) Resumes() []wire.Resume {
	var out []wire.Resume
	for _, r := range s.Received() {
		var rs wire.Resume
		if r.Err == nil && r.Frame.Op == wire.OpResume && json.Unmarshal(r.Frame.D, &rs) == nil {
			out = append(out, rs)
		}
	}
	return out
}

// Heartbeats returns every heartbeat received, in order.
func (s *Server) Heartbeats() []Heartbeat {
	var out []Heartbeat
	for _, r := range s.Received() {
		if r.Err != nil || r.Frame.Op != wire.OpHeartbeat {
			continue
		}
		hb := Heartbeat{Conn: r.Conn, At: r.At, D: r.Frame.D}
		if n, err := strconv.ParseUint(string(r.Frame.D), 10, 64); err == nil {
			hb.Seq, hb.HasSeq = n, true
		}
		out = append(out, hb)
	}
	return out
}
