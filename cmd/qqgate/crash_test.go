package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/testutil"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// TestRunSurvivesSIGKILL kills the real runner with SIGKILL at random
// points while the gateway emits events, restarts it each time, and checks
// that every seq the gateway sent reached stdout at least once and that
// every restart resumed the stored session.
func TestRunSurvivesSIGKILL(t *testing.T) {
	const kills = 20
	srv := gatewaytest.NewTestServer(t, gatewaytest.Options{})
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	printed := map[uint64]int{}
	record := func(lines []testutil.Line) {
		for _, l := range lines {
			printed[l.Seq]++
		}
	}

	p := startRun(t, srv, dir, gatewaytest.DefaultSecret, "--log-level", "warn")
	record(p.until(wire.EventReady))
	sess := srv.Session(gatewaytest.DefaultAppID)
	require.NotNil(t, sess)
	// The READY record is written at once; wait for it so the first kill
	// leaves something to resume.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, sessionstore.FileName(gatewaytest.DefaultAppID)))
		return err == nil
	}, procWait, time.Millisecond)

	for round := 0; round < kills; round++ {
		n := 1 + rng.IntN(8)
		for i := 0; i < n; i++ {
			_, err := sess.EmitMessage(wire.EventC2CMessageCreate)
			require.NoError(t, err)
		}
		// Read a random number of lines (maybe none), then kill.
		for i, r := 0, rng.IntN(n+1); i < r; i++ {
			record([]testutil.Line{p.Next()})
		}
		require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
		_ = p.Wait()
		for _, l := range p.Rest() { // what it printed before dying
			record([]testutil.Line{l})
		}
		p = startRun(t, srv, dir, gatewaytest.DefaultSecret, "--log-level", "warn")
		record(p.until(wire.EventResumed))
	}
	last, err := sess.EmitMessage(wire.EventFriendAdd)
	require.NoError(t, err)
	for {
		l := p.Next()
		record([]testutil.Line{l})
		if l.Seq == last {
			break
		}
	}
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait())

	// Every seq of the session reached stdout at least once. RESUMED
	// frames are not replayed, so a RESUMED whose process died before
	// printing it is the only kind of seq allowed to be missing.
	resumed := map[uint64]bool{}
	for _, f := range sess.Frames() {
		if f.T == wire.EventResumed {
			resumed[f.S] = true
		}
	}
	for seq := uint64(1); seq <= last; seq++ {
		if !resumed[seq] {
			assert.GreaterOrEqual(t, printed[seq], 1, "seq %d never printed", seq)
		}
	}
	// Every restart resumed the one stored session.
	resumes := srv.Resumes()
	require.Len(t, resumes, kills)
	for i, r := range resumes {
		assert.Equal(t, sess.ID(), r.SessionID, "restart %d", i)
	}
	assert.Len(t, srv.Identifies(), 1, "never re-identified")
	t.Logf("%d kills, %d seqs, %d lines printed", kills, last, sumCounts(printed))
}

func sumCounts(m map[uint64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
