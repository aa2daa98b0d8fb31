package gatewaytest

import (
	"bytes"
	"testing"

	"github.com/qqgate/qqgate/wire"
)

// FuzzClientFrame feeds arbitrary client messages, one per line, to the
// server's handler on a connection that has no socket. "$TOKEN" in the
// input becomes a valid token and "$SID" the id of a live session. The
// handler must not panic, and what it queues must be well formed: frames
// that decode, at most one end of connection, and nothing after it.
func FuzzClientFrame(f *testing.F) {
	seeds := []string{
		`{"op":1,"d":null}`,
		`{"op":1,"d":7}`,
		`{"op":1}`,
		`{"op":1,"d":"abc"}`,
		`{"op":2,"d":{"token":"QQBot $TOKEN","intents":1073741824,"shard":[0,1]}}`,
		`{"op":2,"d":{"token":"QQBot $TOKEN","intents":4096,"shard":[0,1]}}`,
		`{"op":2,"d":{"token":"QQBot $TOKEN","intents":1,"shard":[3,2]}}`,
		`{"op":2,"d":{"token":"QQBot $TOKEN","intents":1,"shard":[-1,-5]}}`,
		"{\"op\":2,\"d\":{\"token\":\"QQBot $TOKEN\",\"intents\":1,\"shard\":[0,1]}}\n{\"op\":1,\"d\":1}\n{\"op\":6,\"d\":{\"token\":\"$TOKEN\",\"session_id\":\"$SID\",\"seq\":1}}",
		`{"op":6,"d":{"token":"$TOKEN","session_id":"$SID","seq":1}}`,
		`{"op":6,"d":{"token":"QQBot $TOKEN","session_id":"$SID","seq":0}}`,
		`{"op":6,"d":{"token":"QQBot $TOKEN","session_id":"$SID","seq":99}}`,
		`{"op":6,"d":{"token":"QQBot $TOKEN","session_id":"nope","seq":1}}`,
		`{"op":6,"d":{"token":"bad","session_id":"$SID","seq":1}}`,
		`{"op":2,"d":null}`,
		`{"op":6,"d":[]}`,
		`{"op":"x"}`,
		`{"op":99999999999999999999}`,
		`{"op":0,"t":"READY","s":1,"d":{}}`,
		`{"op":7}`,
		`[]`,
		`null`,
		``,
		"\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	srv := NewServer(Options{AllowedIntents: 1<<30 | 1<<25 | 1})
	f.Cleanup(srv.Close)
	token := []byte(srv.Token(DefaultAppID))
	base := srv.openConn(nil)
	srv.handleMessage(base, []byte(`{"op":2,"d":{"token":"QQBot `+string(token)+`","intents":1,"shard":[0,1]}}`))
	if len(srv.Sessions()) != 1 {
		f.Fatal("no base session")
	}
	sess := srv.Sessions()[0]
	sid := []byte(sess.ID())
	_, _ = sess.Emit("SOME_EVENT", map[string]int{"n": 1})

	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.ReplaceAll(data, []byte("$TOKEN"), token)
		data = bytes.ReplaceAll(data, []byte("$SID"), sid)
		c := srv.openConn(nil)
		if c == nil {
			t.Fatal("server closed")
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			srv.handleMessage(c, line)
		}

		srv.mu.Lock()
		queue := append([]outItem(nil), c.queue...)
		closing := c.closing
		var prev uint64
		for _, e := range sess.log {
			if e.frame.S <= prev {
				t.Errorf("seq %d after %d", e.frame.S, prev)
			}
			prev = e.frame.S
		}
		// Keep memory flat over a long run.
		srv.received = nil
		for id, s := range srv.sessions {
			if s != sess {
				delete(srv.sessions, id)
			}
		}
		srv.order = []*Session{sess}
		srv.readyCursor = 0
		srv.mu.Unlock()
		srv.connGone(c)

		if len(queue) == 0 {
			t.Fatal("HELLO not queued")
		}
		for i, it := range queue {
			if it.end {
				if i != len(queue)-1 {
					t.Fatalf("item %d of %d is the end of the connection", i, len(queue))
				}
				if !closing {
					t.Fatal("end queued but connection not closing")
				}
				continue
			}
			if _, err := wire.DecodeFrame(it.data); err != nil {
				t.Fatalf("queued frame %q: %v", it.data, err)
			}
		}
	})
}
