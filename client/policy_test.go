package client_test

// One test per row of the table "What qqgate does on each signal" in
// docs/policy.md, against the fake gateway over loopback. Each asserts on what the gateway received
// (IDENTIFY or RESUME, session id, seq), on what the handler saw, on the
// client's status and on the session record.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/intents"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// clearCountingStore is a MemoryStore that counts Clear calls, so a test
// can tell that the session was cleared even when a later READY rewrote
// the record.
type clearCountingStore struct {
	*sessionstore.MemoryStore
	clears atomic.Int32
}

func (s *clearCountingStore) Clear(ctx context.Context, accountID string) error {
	s.clears.Add(1)
	return s.MemoryStore.Clear(ctx, accountID)
}

// newStore returns a counting memory store closed when the test ends (after
// the client, whose cleanup is registered later and so runs first).
func newStore(t *testing.T) *clearCountingStore {
	t.Helper()
	s := &clearCountingStore{MemoryStore: sessionstore.NewMemoryStore()}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// load reads the record of the default account.
func (s *clearCountingStore) load(t *testing.T) (sessionstore.Record, error) {
	t.Helper()
	return s.Load(context.Background(), gatewaytest.DefaultAppID, gatewaytest.DefaultAppID)
}

// policyHarness starts a client with store st against a fresh server.
func policyHarness(t *testing.T, opts gatewaytest.Options, mutate func(*client.Config)) (*harness, *gatewaytest.Server, *clearCountingStore) {
	t.Helper()
	// Logs of both sides, shown only when the test fails.
	logs := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	opts.Logger = zerolog.New(zerolog.ConsoleWriter{Out: logs, NoColor: true, TimeFormat: "15:04:05"}).
		With().Timestamp().Str("side", "server").Logger().Level(zerolog.DebugLevel)
	srv := gatewaytest.NewTestServer(t, opts)
	st := newStore(t)
	h := newHarness(t, srv, func(c *client.Config) {
		c.Store = st
		c.Logger = zerolog.New(zerolog.ConsoleWriter{Out: logs, NoColor: true, TimeFormat: "15:04:05"}).
			With().Timestamp().Str("side", "client").Logger().Level(zerolog.DebugLevel)
		if mutate != nil {
			mutate(c)
		}
	})
	return h, srv, st
}

// emit emits n realistic events on sess and returns the last seq.
func emit(t *testing.T, sess *gatewaytest.Session, n int) uint64 {
	t.Helper()
	var last uint64
	for i := 0; i < n; i++ {
		seq, err := sess.EmitMessage(wire.EventC2CMessageCreate)
		require.NoError(t, err)
		last = seq
	}
	return last
}

// handledUpTo waits until the client committed seq.
func (h *harness) handledUpTo(seq uint64) {
	h.t.Helper()
	h.eventually(func() bool { return h.c.Status().LastSeqHandled >= seq }, fmt.Sprintf("seq %d handled", seq))
}

// firstWait waits for the first wait the client asked for (the one the
// policy chose after the first disconnect) and returns it.
func (h *harness) firstWait() time.Duration {
	h.t.Helper()
	h.eventually(func() bool { return len(h.recordedWaits()) > 0 }, "a wait requested")
	return h.recordedWaits()[0]
}

// holdWaits makes every wait the client asks for (recorded as usual)
// block until release is called, so a test can script the server while the
// client is disconnected. Call it before start.
func (h *harness) holdWaits() (release func()) {
	gate := make(chan struct{})
	client.SetSleep(h.c, func(ctx context.Context, d time.Duration) error {
		h.mu.Lock()
		h.waits = append(h.waits, d)
		h.mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// storedEventually waits until the record (throttled writes flushed)
// satisfies ok.
func (s *clearCountingStore) storedEventually(h *harness, ok func(sessionstore.Record) bool, msg string) {
	h.t.Helper()
	h.eventually(func() bool {
		if err := s.Flush(context.Background()); err != nil {
			return false
		}
		r, err := s.Load(context.Background(), gatewaytest.DefaultAppID, gatewaytest.DefaultAppID)
		return err == nil && ok(r)
	}, msg)
}

// assertIncreasing checks the handler saw every seq at most once, in order.
func assertIncreasing(t *testing.T, seqs []uint64) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Errorf("handler saw seq %d after %d: %v", seqs[i], seqs[i-1], seqs)
			return
		}
	}
}

// Dispatch READY — store session id and intent level; write at once.
func TestPolicyReadyStoresSession(t *testing.T) {
	t.Parallel()
	levels := intents.DefaultLevels()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.IntentLevels = levels })
	// A record that is ours but not resumable (no session yet, as the
	// plugin writes after a step down): its intent level still counts.
	require.NoError(t, st.SaveNow(context.Background(), sessionstore.Record{
		AccountID: gatewaytest.DefaultAppID, AppID: gatewaytest.DefaultAppID, IntentLevelIndex: 1,
	}))
	h.start()
	sess := h.session()
	h.eventually(func() bool { return h.rec.has(wire.EventReady) }, "READY handled")

	ids := srv.Identifies()
	require.Len(t, ids, 1)
	assert.EqualValues(t, levels[1].Intents, ids[0].Intents, "IDENTIFY at the stored level")
	assert.Empty(t, srv.Resumes())

	var rec sessionstore.Record
	h.eventually(func() bool {
		r, err := st.load(t)
		rec = r
		return err == nil && r.SessionID == sess.ID()
	}, "the record written on READY")
	assert.True(t, rec.HasSeq)
	assert.EqualValues(t, 1, rec.LastSeq, "READY's seq is committed at once")
	assert.Equal(t, 1, rec.IntentLevelIndex)
	assert.Equal(t, gatewaytest.DefaultAppID, rec.AppID)
	assert.False(t, rec.LastConnectedAt.IsZero())

	s := h.c.Status()
	assert.Equal(t, client.StateConnected, s.State)
	assert.Equal(t, sess.ID(), s.SessionID)
	h.eventually(func() bool { return h.c.Status().Identifies == 1 }, "the Identifies counter") // counted after the write returns
	assert.Equal(t, 1, s.IntentLevel)
	assert.True(t, s.Degraded)
	assert.Equal(t, []string{wire.EventReady}, h.rec.types())
	assert.Equal(t, []uint64{1}, h.rec.seqs())
}

// Dispatch RESUMED after replayed events — write at once, count a
// successful resume.
func TestPolicyResumedAfterReplay(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	release := h.holdWaits()
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 2))

	sess.Drop()
	h.eventually(func() bool { return len(h.recordedWaits()) == 1 }, "the client waiting to reconnect")
	last := emit(t, sess, 3) // logged while detached: replayed on RESUME
	release()
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

	rs := srv.Resumes()
	require.Len(t, rs, 1)
	assert.Equal(t, sess.ID(), rs[0].SessionID)
	assert.EqualValues(t, 3, rs[0].Seq)
	assert.Len(t, srv.Identifies(), 1)
	assert.Equal(t, 2, srv.Connections())

	assert.Equal(t, []uint64{1, 2, 3, 4, 5, 6, last + 1}, h.rec.seqs(), "replayed events once, then RESUMED")
	types := h.rec.types()
	assert.Equal(t, wire.EventReady, types[0])
	assert.Equal(t, wire.EventResumed, types[len(types)-1])

	s := h.c.Status()
	assert.EqualValues(t, 1, s.Resumes)
	assert.EqualValues(t, 0, s.FailedResumes)
	h.eventually(func() bool { return h.c.Status().Identifies == 1 }, "the Identifies counter") // counted after the write returns
	assert.EqualValues(t, 3, s.Replayed)
	assert.Equal(t, wire.CloseAbnormal, s.LastCloseCode)

	st.storedEventually(h, func(r sessionstore.Record) bool {
		return r.SessionID == sess.ID() && r.LastSeq >= last
	}, "the record written with the replayed seq")
	assert.Zero(t, st.clears.Load())
}

// Op 7 RECONNECT — reconnect at once, RESUME; the 4009 close that
// follows must not clear the session.
func TestPolicyReconnectOp(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	release := h.holdWaits()
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 2))

	sess.Reconnect(gatewaytest.Close{Code: wire.CloseSessionTimedOut, Reason: "Session timed out"})
	h.eventually(func() bool { return len(h.recordedWaits()) == 1 }, "the client about to reconnect")
	last := emit(t, sess, 1) // replayed on RESUME
	release()
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

	rs := srv.Resumes()
	require.Len(t, rs, 1)
	assert.Equal(t, sess.ID(), rs[0].SessionID)
	assert.EqualValues(t, 3, rs[0].Seq)
	assert.Len(t, srv.Identifies(), 1, "the 4009 after op 7 does not end the session")
	assert.Equal(t, time.Duration(0), h.firstWait(), "op 7 reconnects at once")
	assert.Equal(t, []uint64{1, 2, 3, last, last + 1}, h.rec.seqs())

	s := h.c.Status()
	assert.EqualValues(t, 1, s.Resumes)
	assert.EqualValues(t, 0, s.FailedResumes)
	assert.Equal(t, sess.ID(), s.SessionID)
	assert.Zero(t, st.clears.Load(), "the session was never cleared")
	r, err := st.load(t)
	require.NoError(t, err)
	assert.Equal(t, sess.ID(), r.SessionID)
}

// Op 9 d:true — reconnect, RESUME.
func TestPolicyInvalidSessionResumable(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 1))

	sess.InvalidSession(true)
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

	rs := srv.Resumes()
	require.Len(t, rs, 1)
	assert.Equal(t, sess.ID(), rs[0].SessionID)
	assert.EqualValues(t, 2, rs[0].Seq)
	assert.Len(t, srv.Identifies(), 1)
	assert.Equal(t, 1, srv.TokenFetches(), "op 9 true keeps the token")
	assert.Equal(t, []string{wire.EventReady, wire.EventC2CMessageCreate, wire.EventResumed}, h.rec.types())
	s := h.c.Status()
	assert.EqualValues(t, 1, s.Resumes)
	assert.EqualValues(t, 0, s.FailedResumes)
	assert.Zero(t, st.clears.Load())
}

// Op 9 d:false — clear the session, refetch the token, wait about
// 3 s, IDENTIFY.
func TestPolicyInvalidSessionNotResumable(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 1))
	require.Equal(t, 1, srv.TokenFetches())

	sess.InvalidSession(false)
	sess2 := h.session()
	h.eventually(func() bool { return h.rec.count(wire.EventReady) == 2 }, "second READY handled")

	assert.NotEqual(t, sess.ID(), sess2.ID())
	assert.Empty(t, srv.Resumes(), "no RESUME of an invalidated session")
	require.Len(t, srv.Identifies(), 2)
	assert.Equal(t, 2, srv.TokenFetches(), "the token is fetched again")
	w := h.firstWait()
	assert.GreaterOrEqual(t, w, 3*time.Second)
	assert.Less(t, w, 4500*time.Millisecond)
	assert.Equal(t, []uint64{1, 2, 1}, h.rec.seqs())

	s := h.c.Status()
	h.eventually(func() bool { return h.c.Status().Identifies == 2 }, "the Identifies counter") // counted after the write returns
	assert.EqualValues(t, 0, s.Resumes)
	assert.Equal(t, sess2.ID(), s.SessionID)
	assert.GreaterOrEqual(t, st.clears.Load(), int32(1), "the record was cleared")
	h.eventually(func() bool {
		r, err := st.load(t)
		return err == nil && r.SessionID == sess2.ID()
	}, "the new session stored")
}

// Close 1000, 1001, 1005, 1006 — backoff, RESUME.
func TestPolicyCloseResumeWithBackoff(t *testing.T) {
	t.Parallel()
	for _, code := range []wire.CloseCode{wire.CloseNormal, wire.CloseGoingAway, wire.CloseNoStatus, wire.CloseAbnormal} {
		t.Run(fmt.Sprint(int(code)), func(t *testing.T) {
			t.Parallel()
			h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
			h.start()
			sess := h.session()
			h.handledUpTo(emit(t, sess, 1))

			sess.CloseWith(code, "bye")
			h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

			rs := srv.Resumes()
			require.Len(t, rs, 1)
			assert.Equal(t, sess.ID(), rs[0].SessionID)
			assert.EqualValues(t, 2, rs[0].Seq)
			assert.Len(t, srv.Identifies(), 1)
			assert.Greater(t, h.firstWait(), time.Duration(0), "a backoff")
			want := code
			if code == wire.CloseNoStatus {
				want = wire.CloseAbnormal // 1005 cannot be sent: the server drops the connection
			}
			s := h.c.Status()
			assert.Equal(t, want, s.LastCloseCode)
			assert.EqualValues(t, 1, s.Resumes)
			assert.Equal(t, []string{wire.EventReady, wire.EventC2CMessageCreate, wire.EventResumed}, h.rec.types())
			assert.Zero(t, st.clears.Load())
		})
	}
}

// Close 4009 — RESUME at once.
func TestPolicySessionTimedOutResumesAtOnce(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 2))

	sess.CloseWith(wire.CloseSessionTimedOut, "Session timed out")
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

	rs := srv.Resumes()
	require.Len(t, rs, 1)
	assert.Equal(t, sess.ID(), rs[0].SessionID)
	assert.EqualValues(t, 3, rs[0].Seq)
	assert.Len(t, srv.Identifies(), 1)
	assert.Equal(t, time.Duration(0), h.firstWait())
	s := h.c.Status()
	assert.Equal(t, wire.CloseSessionTimedOut, s.LastCloseCode)
	assert.EqualValues(t, 1, s.Resumes)
	assert.Zero(t, st.clears.Load())
}

// "At once" does not become a tight loop: the second 4009 in a row on a
// connection that did not stay up StableAfter waits a backoff.
func TestPolicyQuickClosesDoNotLoopTightly(t *testing.T) {
	t.Parallel()
	h, srv, _ := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.StableAfter = time.Hour })
	h.start()
	sess := h.session()
	sess.CloseWith(wire.CloseSessionTimedOut, "Session timed out")
	h.eventually(func() bool { return h.rec.count(wire.EventResumed) == 1 }, "the first RESUMED")
	sess.CloseWith(wire.CloseSessionTimedOut, "Session timed out")
	h.eventually(func() bool { return h.rec.count(wire.EventResumed) == 2 }, "the second RESUMED")

	waits := h.recordedWaits()
	require.Len(t, waits, 2)
	assert.Zero(t, waits[0], "the first 4009: at once")
	assert.Greater(t, waits[1], time.Duration(0), "the second in a row: a backoff")
	assert.Len(t, srv.Identifies(), 1)
}

// Close 4008 — wait at least 60 s, RESUME.
func TestPolicyRateLimitedWaitsAMinute(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 1))

	sess.CloseWith(wire.CloseRateLimited, "rate limited")
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

	rs := srv.Resumes()
	require.Len(t, rs, 1)
	assert.Equal(t, sess.ID(), rs[0].SessionID)
	assert.EqualValues(t, 2, rs[0].Seq)
	assert.Len(t, srv.Identifies(), 1)
	assert.GreaterOrEqual(t, h.firstWait(), 60*time.Second)
	s := h.c.Status()
	assert.Equal(t, wire.CloseRateLimited, s.LastCloseCode)
	assert.EqualValues(t, 1, s.Resumes)
	assert.Zero(t, st.clears.Load())
}

// Close 4004 — refetch the token, backoff, RESUME.
func TestPolicyAuthFailedRefetchesAndResumes(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 1))
	require.Equal(t, 1, srv.TokenFetches())

	sess.CloseWith(wire.CloseAuthenticationFailed, "authentication failed")
	h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")

	rs := srv.Resumes()
	require.Len(t, rs, 1)
	assert.Equal(t, sess.ID(), rs[0].SessionID)
	assert.EqualValues(t, 2, rs[0].Seq)
	assert.Len(t, srv.Identifies(), 1)
	assert.Equal(t, 2, srv.TokenFetches(), "the token is fetched again")
	assert.Greater(t, h.firstWait(), time.Duration(0), "a backoff")
	s := h.c.Status()
	assert.Equal(t, wire.CloseAuthenticationFailed, s.LastCloseCode)
	assert.EqualValues(t, 1, s.Resumes)
	assert.Zero(t, st.clears.Load())
}

// Close 4004 three times in a row — fatal, record kept.
func TestPolicyAuthFailedThreeTimesIsFatal(t *testing.T) {
	t.Parallel()
	h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	last := emit(t, sess, 1)
	h.handledUpTo(last)
	st.storedEventually(h, func(r sessionstore.Record) bool { return r.LastSeq == last }, "the commit stored")
	before, err := st.load(t)
	require.NoError(t, err)

	srv.CloseNextAfterHello(wire.CloseAuthenticationFailed, "authentication failed")
	srv.CloseNextAfterHello(wire.CloseAuthenticationFailed, "authentication failed")
	sess.CloseWith(wire.CloseAuthenticationFailed, "authentication failed")

	err = h.runErr()
	require.Error(t, err)
	assert.Equal(t, wire.CloseAuthenticationFailed, client.CloseCode(err))
	var ce *client.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "authentication failed", ce.Reason)
	assert.Equal(t, 3, srv.Connections(), "no connection after the third 4004")
	assert.Equal(t, 3, srv.TokenFetches(), "a new token before each retry")
	assert.Len(t, srv.Identifies(), 1, "4004 never re-identifies")
	for _, r := range srv.Resumes() {
		assert.Equal(t, sess.ID(), r.SessionID)
	}
	s := h.c.Status()
	assert.Equal(t, client.StateFailed, s.State)
	assert.Equal(t, wire.CloseAuthenticationFailed, s.LastCloseCode)
	assert.EqualValues(t, 0, s.Resumes)

	after, err := st.load(t)
	require.NoError(t, err, "the record is kept")
	assert.Equal(t, before.SessionID, after.SessionID)
	assert.Equal(t, before.LastSeq, after.LastSeq)
	assert.Zero(t, st.clears.Load())
}

// Config.MaxAuthFailures sets how many 4004 closes in a row are fatal:
// with 5, the third one is retried and the fifth ends Run; with 1, the
// first does.
func TestPolicyAuthFailedLimitIsConfigurable(t *testing.T) {
	t.Parallel()
	t.Run("five", func(t *testing.T) {
		t.Parallel()
		h, srv, _ := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.MaxAuthFailures = 5 })
		h.start()
		sess := h.session()
		for range 4 {
			srv.CloseNextAfterHello(wire.CloseAuthenticationFailed, "authentication failed")
		}
		sess.CloseWith(wire.CloseAuthenticationFailed, "authentication failed")
		err := h.runErr()
		assert.Equal(t, wire.CloseAuthenticationFailed, client.CloseCode(err))
		assert.Equal(t, 5, srv.Connections(), "no connection after the fifth 4004")
	})
	t.Run("one", func(t *testing.T) {
		t.Parallel()
		h, srv, _ := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.MaxAuthFailures = 1 })
		h.start()
		sess := h.session()
		sess.CloseWith(wire.CloseAuthenticationFailed, "authentication failed")
		err := h.runErr()
		assert.Equal(t, wire.CloseAuthenticationFailed, client.CloseCode(err))
		assert.Equal(t, 1, srv.Connections(), "no connection after the first 4004")
	})
}

// Close 4006, 4007, 4003, 4005, 4000, 4900–4913 — clear the
// session, refetch the token, backoff, IDENTIFY.
func TestPolicyCloseClearsAndIdentifies(t *testing.T) {
	t.Parallel()
	codes := []wire.CloseCode{4006, 4007, 4003, 4005, 4000}
	for c := wire.CloseCode(4900); c <= 4913; c++ {
		codes = append(codes, c)
	}
	for _, code := range codes {
		t.Run(fmt.Sprint(int(code)), func(t *testing.T) {
			t.Parallel()
			h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
			h.start()
			sess := h.session()
			h.handledUpTo(emit(t, sess, 1))

			sess.CloseWith(code, "server says so")
			sess2 := h.session()
			h.eventually(func() bool { return h.rec.count(wire.EventReady) == 2 }, "second READY handled")

			assert.NotEqual(t, sess.ID(), sess2.ID())
			assert.Empty(t, srv.Resumes())
			require.Len(t, srv.Identifies(), 2)
			assert.Equal(t, 2, srv.TokenFetches(), "the token is fetched again")
			assert.Greater(t, h.firstWait(), time.Duration(0), "a backoff")
			assert.Equal(t, []uint64{1, 2, 1}, h.rec.seqs())
			s := h.c.Status()
			assert.Equal(t, code, s.LastCloseCode)
			h.eventually(func() bool { return h.c.Status().Identifies == 2 }, "the Identifies counter") // counted after the write returns
			assert.EqualValues(t, 0, s.Resumes)
			assert.EqualValues(t, 0, s.FailedResumes)
			assert.GreaterOrEqual(t, st.clears.Load(), int32(1), "the record was cleared")
			h.eventually(func() bool {
				r, err := st.load(t)
				return err == nil && r.SessionID == sess2.ID()
			}, "the new session stored")
		})
	}
}

// Close 4013, 4014 — step the intent level down, IDENTIFY.
func TestPolicyIntentsCloseStepsDown(t *testing.T) {
	t.Parallel()
	for _, mode := range []gatewaytest.RejectMode{gatewaytest.RejectClose4013, gatewaytest.RejectClose4014} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			levels := intents.DefaultLevels()
			h, srv, st := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.IntentLevels = levels })
			srv.RejectIdentifies(1, mode)
			h.start()
			sess := h.session()
			h.eventually(func() bool { return h.rec.has(wire.EventReady) }, "READY handled")

			ids := srv.Identifies()
			require.Len(t, ids, 2)
			assert.EqualValues(t, levels[0].Intents, ids[0].Intents)
			assert.EqualValues(t, levels[1].Intents, ids[1].Intents)
			assert.EqualValues(t, levels[1].Intents, sess.Intents())
			assert.Empty(t, srv.Resumes())
			assert.Equal(t, 2, srv.Connections())
			s := h.c.Status()
			assert.Equal(t, 1, s.IntentLevel)
			assert.Equal(t, levels[1].Name, s.IntentLevelName)
			assert.True(t, s.Degraded)
			h.eventually(func() bool { return h.c.Status().Identifies == 2 }, "the Identifies counter") // counted after the write returns
			assert.Equal(t, []string{wire.EventReady}, h.rec.types())
			h.eventually(func() bool {
				r, err := st.load(t)
				return err == nil && r.SessionID == sess.ID() && r.IntentLevelIndex == 1
			}, "the degraded level stored with the session")
		})
	}
}

// Close 4013/4014 at the last intent level — fatal.
func TestPolicyIntentsCloseAtLastLevelIsFatal(t *testing.T) {
	t.Parallel()
	levels := intents.DefaultLevels()
	h, srv, _ := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.IntentLevels = levels })
	srv.RejectIdentifies(len(levels), gatewaytest.RejectClose4014)
	h.start()

	err := h.runErr()
	require.Error(t, err)
	assert.Equal(t, wire.CloseDisallowedIntents, client.CloseCode(err))
	ids := srv.Identifies()
	require.Len(t, ids, len(levels), "one IDENTIFY per level")
	for i, id := range ids {
		assert.EqualValues(t, levels[i].Intents, id.Intents, "level %d", i)
	}
	assert.Equal(t, len(levels), srv.Connections(), "nothing after the fatal close")
	s := h.c.Status()
	assert.Equal(t, client.StateFailed, s.State)
	assert.Equal(t, len(levels)-1, s.IntentLevel)
	assert.True(t, s.Degraded)
	assert.Empty(t, h.rec.all())
}

// Op 9 d:false before READY with intent levels configured (the
// gateway's intent rejection, op 9 false then close 4903) — one step down
// per rejection, not two.
func TestPolicyIntentRejectionOp9StepsDownOnce(t *testing.T) {
	t.Parallel()
	t.Run("AllowedIntents", func(t *testing.T) {
		t.Parallel()
		levels := intents.DefaultLevels()
		h, srv, st := policyHarness(t, gatewaytest.Options{AllowedIntents: uint32(levels[1].Intents)},
			func(c *client.Config) { c.IntentLevels = levels })
		h.start()
		sess := h.session()
		h.eventually(func() bool { return h.rec.has(wire.EventReady) }, "READY handled")

		ids := srv.Identifies()
		require.Len(t, ids, 2)
		assert.EqualValues(t, levels[0].Intents, ids[0].Intents)
		assert.EqualValues(t, levels[1].Intents, ids[1].Intents, "one level down, not two")
		assert.Equal(t, 2, srv.Connections())
		w := h.firstWait()
		assert.GreaterOrEqual(t, w, 3*time.Second)
		assert.Less(t, w, 4500*time.Millisecond)
		assert.Equal(t, 2, srv.TokenFetches())
		s := h.c.Status()
		assert.Equal(t, 1, s.IntentLevel)
		assert.Equal(t, levels[1].Name, s.IntentLevelName)
		assert.EqualValues(t, levels[1].Intents, s.Intents)
		assert.True(t, s.Degraded)
		assert.Equal(t, sess.ID(), s.SessionID)
		h.eventually(func() bool {
			r, err := st.load(t)
			return err == nil && r.SessionID == sess.ID() && r.IntentLevelIndex == 1
		}, "the degraded level stored")
	})
	t.Run("RejectIdentifiesTwice", func(t *testing.T) {
		t.Parallel()
		levels := intents.DefaultLevels()
		h, srv, _ := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) { c.IntentLevels = levels })
		srv.RejectIdentifies(2, gatewaytest.RejectInvalidSession4903)
		h.start()
		sess := h.session()
		h.eventually(func() bool { return h.rec.has(wire.EventReady) }, "READY handled")

		ids := srv.Identifies()
		require.Len(t, ids, 3)
		for i, id := range ids {
			assert.EqualValues(t, levels[i].Intents, id.Intents, "identify %d", i)
		}
		assert.EqualValues(t, levels[2].Intents, sess.Intents())
		s := h.c.Status()
		assert.Equal(t, 2, s.IntentLevel)
		assert.Equal(t, levels[2].Name, s.IntentLevelName)
		assert.True(t, s.Degraded)
	})
	t.Run("SingleLevel", func(t *testing.T) {
		// With one level (Config.Intents only), op 9 false before READY
		// clears and identifies again with the same intents.
		t.Parallel()
		h, srv, _ := policyHarness(t, gatewaytest.Options{}, func(c *client.Config) {
			c.Intents = intents.DefaultLevels()[0].Intents
		})
		srv.RejectIdentifies(1, gatewaytest.RejectInvalidSession4903)
		h.start()
		h.session()
		h.eventually(func() bool { return h.rec.has(wire.EventReady) }, "READY handled")
		ids := srv.Identifies()
		require.Len(t, ids, 2)
		assert.Equal(t, ids[0].Intents, ids[1].Intents)
		s := h.c.Status()
		assert.Equal(t, 0, s.IntentLevel)
		assert.False(t, s.Degraded)
	})
}

// Close 4001, 4002, 4010, 4011, 4012, 4914, 4915 — fatal: Run
// returns a *CloseError, nothing reconnects, the record is kept.
func TestPolicyFatalCloses(t *testing.T) {
	t.Parallel()
	for _, code := range []wire.CloseCode{4001, 4002, 4010, 4011, 4012, 4914, 4915} {
		t.Run(fmt.Sprint(int(code)), func(t *testing.T) {
			t.Parallel()
			h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
			h.start()
			sess := h.session()
			last := emit(t, sess, 1)
			h.handledUpTo(last)
			st.storedEventually(h, func(r sessionstore.Record) bool { return r.LastSeq == last }, "the commit stored")
			before, err := st.load(t)
			require.NoError(t, err)

			sess.CloseWith(code, "fatal reason")
			err = h.runErr()
			require.Error(t, err)
			var ce *client.CloseError
			require.True(t, errors.As(err, &ce), "Run returned %T %v", err, err)
			assert.Equal(t, code, ce.Code)
			assert.Equal(t, "fatal reason", ce.Reason)
			assert.Equal(t, code, client.CloseCode(err))

			assert.Equal(t, 1, srv.Connections(), "no second connection")
			assert.Len(t, srv.Identifies(), 1)
			assert.Empty(t, srv.Resumes())
			assert.Empty(t, h.recordedWaits(), "no wait before a retry that never comes")
			s := h.c.Status()
			assert.Equal(t, client.StateFailed, s.State)
			assert.Equal(t, code, s.LastCloseCode)
			assert.Equal(t, []uint64{1, 2}, h.rec.seqs())

			after, err := st.load(t)
			require.NoError(t, err, "the record is kept")
			assert.Equal(t, before.SessionID, after.SessionID)
			assert.Equal(t, before.LastSeq, after.LastSeq)
			assert.Equal(t, before.IntentLevelIndex, after.IntentLevelIndex)
			assert.Zero(t, st.clears.Load())
		})
	}
}

// Close 4914/4915 right after HELLO, before READY — fatal too.
func TestPolicyFatalCloseAtConnect(t *testing.T) {
	t.Parallel()
	h, srv, _ := policyHarness(t, gatewaytest.Options{}, nil)
	srv.CloseNextAfterHello(wire.CloseBotBanned, "banned")
	h.start()
	err := h.runErr()
	assert.Equal(t, wire.CloseBotBanned, client.CloseCode(err))
	assert.Equal(t, 1, srv.Connections())
	assert.Empty(t, h.rec.all())
}

// Any other close code — backoff, IDENTIFY.
func TestPolicyOtherCloseIdentifies(t *testing.T) {
	t.Parallel()
	for _, code := range []int{4100, 3000} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			h, srv, _ := policyHarness(t, gatewaytest.Options{}, nil)
			h.start()
			sess := h.session()
			h.handledUpTo(emit(t, sess, 1))

			sess.CloseWith(wire.CloseCode(code), "something else")
			sess2 := h.session()
			h.eventually(func() bool { return h.rec.count(wire.EventReady) == 2 }, "second READY handled")

			assert.NotEqual(t, sess.ID(), sess2.ID())
			assert.Empty(t, srv.Resumes())
			assert.Len(t, srv.Identifies(), 2)
			assert.Greater(t, h.firstWait(), time.Duration(0), "a backoff")
			s := h.c.Status()
			assert.EqualValues(t, code, s.LastCloseCode)
			h.eventually(func() bool { return h.c.Status().Identifies == 2 }, "the Identifies counter") // counted after the write returns
			assert.Equal(t, sess2.ID(), s.SessionID)
			assert.Equal(t, []uint64{1, 2, 1}, h.rec.seqs())
		})
	}
}

// Policy row: a RESUME that ends before RESUMED for any reason other than
// the server refusing the session is not a rejection: resume again, with a
// backoff, as often as it takes. No count of failed resumes.
func TestPolicyFailedResumesKeepResuming(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script func(*gatewaytest.Server)
	}{
		{"DropBeforeResumed", func(s *gatewaytest.Server) { s.RejectResumes(3, gatewaytest.ResumeDropBeforeResumed) }},
		{"DropMidReplay", func(s *gatewaytest.Server) { s.RejectResumes(3, gatewaytest.ResumeDropMidReplay) }},
		{"Close1001", func(s *gatewaytest.Server) {
			s.RejectResumes(3, gatewaytest.Close{Code: wire.CloseGoingAway, Reason: "going away"})
		}},
		{"Close4009", func(s *gatewaytest.Server) {
			s.RejectResumes(3, gatewaytest.Close{Code: wire.CloseSessionTimedOut, Reason: "Session timed out"})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, srv, _ := policyHarness(t, gatewaytest.Options{}, nil)
			release := h.holdWaits()
			h.start()
			sess := h.session()
			h.handledUpTo(emit(t, sess, 1))

			tc.script(srv)
			sess.Drop()
			h.eventually(func() bool { return len(h.recordedWaits()) == 1 }, "the client waiting to reconnect")
			last := emit(t, sess, 8) // replayed, in parts, by the resumes that get that far
			release()
			h.eventually(func() bool { return h.rec.has(wire.EventResumed) }, "RESUMED handled")
			h.handledUpTo(last)

			rs := srv.Resumes()
			require.Len(t, rs, 4, "three resumes cut short, then one that succeeds")
			for i, r := range rs {
				assert.Equal(t, sess.ID(), r.SessionID)
				if i > 0 {
					assert.GreaterOrEqual(t, r.Seq, rs[i-1].Seq)
				}
			}
			assert.EqualValues(t, 2, rs[0].Seq)
			assert.Len(t, srv.Identifies(), 1, "never IDENTIFY")
			assert.Equal(t, 5, srv.Connections())
			for _, w := range h.recordedWaits() {
				assert.Greater(t, w, time.Duration(0), "a backoff before each new RESUME")
			}
			s := h.c.Status()
			assert.EqualValues(t, 3, s.FailedResumes)
			assert.EqualValues(t, 1, s.Resumes)
			assert.Equal(t, sess.ID(), s.SessionID)
			assert.Equal(t, last+1, s.LastSeqHandled, "committed up to RESUMED")
			seqs := h.rec.seqs()
			assertIncreasing(t, seqs)
			assert.Len(t, seqs, int(last)+1, "every event handled once: READY, 9 events, RESUMED")
		})
	}
}

// The brief's case in full: the connection drops three times in the middle
// of a replay; every event is handled, once, in order, and every
// reconnection RESUMEs.
func TestThreeDropsMidReplayLoseNothing(t *testing.T) {
	t.Parallel()
	h, srv, _ := policyHarness(t, gatewaytest.Options{}, nil)
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 2))
	release := h.holdReconnects()
	srv.RejectResumes(3, gatewaytest.ResumeDropMidReplay)
	sess.Drop()
	h.eventually(func() bool { return len(h.recordedWaits()) == 1 }, "the client waiting to reconnect")
	last := emit(t, sess, 20)
	release()
	h.eventually(func() bool { return h.c.Status().Resumes == 1 }, "RESUMED")
	h.handledUpTo(last)
	assert.Len(t, srv.Resumes(), 4)
	assert.Len(t, srv.Identifies(), 1)
	var want []uint64
	for s := uint64(1); s <= last+1; s++ {
		want = append(want, s)
	}
	assert.Equal(t, want, h.rec.seqs())
}

// A session is resumed while it is valid: 5 minutes after the last
// connection. Resumes cut short for longer than that end in an IDENTIFY.
func TestResumesStopWhenTheSessionExpires(t *testing.T) {
	t.Parallel()
	h, srv, clk := clockHarness(t, gatewaytest.Options{}, nil)
	var mu sync.Mutex
	var waited time.Duration
	var elapsedAtConnect []time.Duration // fake time waited before each new connection
	client.SetSleep(h.c, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waited += d
		elapsedAtConnect = append(elapsedAtConnect, waited)
		mu.Unlock()
		clk.Advance(d) // the backoff passes on the fake clock
		return ctx.Err()
	})
	h.start()
	sess := h.session()
	h.handledUpTo(emit(t, sess, 1))
	srv.RejectResumes(1000, gatewaytest.Close{Code: wire.CloseAbnormal}) // every RESUME is dropped
	sess.Drop()
	next := h.session()
	h.eventually(func() bool { return h.rec.count(wire.EventReady) == 2 }, "a new session")

	assert.NotEqual(t, sess.ID(), next.ID())
	n := len(srv.Resumes())
	assert.GreaterOrEqual(t, n, 3, "resumed again and again first")
	mu.Lock()
	defer mu.Unlock()
	// The waits before each connection after the drop: the RESUMEs come
	// while under 5 minutes have passed, the IDENTIFY after.
	require.GreaterOrEqual(t, len(elapsedAtConnect), n+1)
	assert.Less(t, elapsedAtConnect[n-1], sessionstore.Expiry, "the last RESUME came while the session was valid")
	assert.GreaterOrEqual(t, elapsedAtConnect[n], sessionstore.Expiry, "the IDENTIFY came once it was not")
	assert.Len(t, srv.Identifies(), 2)
}

// Policy rows 4902 / op 9 false / 4006 on a RESUME: the server refuses the
// session, so the client clears it and identifies after that one refusal.
func TestPolicyResumeRejectedIdentifiesAtOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range []gatewaytest.ResumeReject{gatewaytest.ResumeReject4902, gatewaytest.ResumeRejectInvalidSession, gatewaytest.ResumeReject4006} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			h, srv, st := policyHarness(t, gatewaytest.Options{}, nil)
			h.start()
			sess := h.session()
			h.handledUpTo(emit(t, sess, 1))

			srv.RejectResumes(1, mode)
			sess.Drop()
			sess2 := h.session()
			h.eventually(func() bool { return h.rec.count(wire.EventReady) == 2 }, "second READY handled")

			assert.NotEqual(t, sess.ID(), sess2.ID())
			rs := srv.Resumes()
			require.Len(t, rs, 1, "one resume, then an identify")
			assert.Equal(t, sess.ID(), rs[0].SessionID)
			assert.EqualValues(t, 2, rs[0].Seq)
			assert.Len(t, srv.Identifies(), 2)
			assert.Equal(t, 3, srv.Connections())
			assert.Equal(t, 2, srv.TokenFetches(), "the token is fetched again")
			s := h.c.Status()
			assert.EqualValues(t, 1, s.FailedResumes)
			assert.EqualValues(t, 0, s.Resumes)
			assert.Equal(t, sess2.ID(), s.SessionID)
			assert.Equal(t, []uint64{1, 2, 1}, h.rec.seqs())
			assert.GreaterOrEqual(t, st.clears.Load(), int32(1), "the session was cleared")
			h.eventually(func() bool {
				r, err := st.load(t)
				return err == nil && r.SessionID == sess2.ID()
			}, "the new session stored")
		})
	}
}
