//go:build unix

package handler_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/handler"
)

// script writes an executable /bin/sh script into a temporary directory
// and returns its path and the directory.
func script(t *testing.T, body string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "handler.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return path, dir
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestExecStdinEnvAndOrder(t *testing.T) {
	t.Setenv("QQGATE_TEST_INHERITED", "inherited")
	path, dir := script(t, `
cat >> "$1/stdin"
printf '%s|%s|%s|%s|%s\n' "$QQGATE_ACCOUNT" "$QQGATE_TYPE" "$QQGATE_SEQ" "$QQGATE_ID" "$QQGATE_TEST_INHERITED" >> "$1/env"
echo "to stdout is fine"`)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path, dir}}, rec.options())
	require.NoError(t, err)

	var wantStdin, wantEnv []string
	for s := uint64(1); s <= 5; s++ {
		ev := testEvent(s)
		require.NoError(t, h.HandleEvent(t.Context(), ev))
		wantStdin = append(wantStdin, mustLine(t, ev))
		wantEnv = append(wantEnv, fmt.Sprintf("shop-bot|C2C_MESSAGE_CREATE|%d|C2C_MESSAGE_CREATE:%d|inherited", s, s))
		assert.Equal(t, result{seq: s, attempts: 1}, rec.last(t))
	}
	assert.Equal(t, wantStdin, readLines(t, filepath.Join(dir, "stdin")), "one line per event, in order")
	assert.Equal(t, wantEnv, readLines(t, filepath.Join(dir, "env")))
	assert.Empty(t, rec.waits)
}

func TestExecRetriedUntilSuccess(t *testing.T) {
	// Fails the first two times, then succeeds.
	path, dir := script(t, `
n=$(cat "$1/count" 2>/dev/null || echo 0)
n=$((n+1))
echo "$n" > "$1/count"
if [ "$n" -le 2 ]; then echo "not yet ($n)" >&2; exit 1; fi
cat > "$1/delivered"`)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path, dir}}, rec.options())
	require.NoError(t, err)

	require.NoError(t, h.HandleEvent(t.Context(), testEvent(9)))
	// Returned only after the successful run.
	assert.Equal(t, []string{mustLine(t, testEvent(9))}, readLines(t, filepath.Join(dir, "delivered")))
	assert.Equal(t, result{seq: 9, attempts: 3}, rec.last(t))
	assert.Equal(t, []time.Duration{handler.DefaultBackoffInitial, 2 * handler.DefaultBackoffInitial}, rec.waits)
}

func TestExecPermanentFailure(t *testing.T) {
	path, _ := script(t, `
i=0
while [ $i -lt 1000 ]; do echo "noise line $i" >&2; i=$((i+1)); done
echo "fatal: cannot reach the shop" >&2
exit 7`)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path}, Retries: 2}, rec.options())
	require.NoError(t, err)

	err = h.HandleEvent(t.Context(), testEvent(4))
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, path)
	assert.Contains(t, msg, "exit status 7")
	assert.Contains(t, msg, "fatal: cannot reach the shop")
	assert.Contains(t, msg, "after 3 attempts")
	assert.NotContains(t, msg, "noise line 0\n")
	assert.Less(t, len(msg), handler.StderrTail+512, "stderr is bounded")
	r := rec.last(t)
	assert.Equal(t, 3, r.attempts)
	assert.Equal(t, err, r.err)
	assert.Len(t, rec.waits, 2)
}

func TestExecStartFailureIsRetried(t *testing.T) {
	path, _ := script(t, `exit 0`)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path}, Retries: 1}, rec.options())
	require.NoError(t, err)
	require.NoError(t, os.Remove(path)) // gone after New resolved it

	err = h.HandleEvent(t.Context(), testEvent(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "start:")
	assert.Equal(t, 2, rec.last(t).attempts)
}

func TestExecCommandNotFound(t *testing.T) {
	_, err := handler.New(handler.Spec{Type: "exec", Command: []string{"qqgate-no-such-command-here"}}, handler.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "qqgate-no-such-command-here")

	// A bare name is looked up in PATH.
	path, dir := script(t, `cat > "$QQGATE_TEST_OUT"`)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("QQGATE_TEST_OUT", filepath.Join(dir, "out"))
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{filepath.Base(path)}}, handler.Options{})
	require.NoError(t, err)
	require.NoError(t, h.HandleEvent(t.Context(), testEvent(2)))
	assert.Equal(t, []string{mustLine(t, testEvent(2))}, readLines(t, filepath.Join(dir, "out")))
}

// gone reports whether pid is no longer running (absent, or a zombie nobody
// has reaped yet).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) != nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	// The script's child must die too.
	path, dir := script(t, `
sleep 30 &
echo $! > "$1/child"
sleep 30`)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path, dir}, Timeout: 200 * time.Millisecond, Retries: -1}, rec.options())
	require.NoError(t, err)

	err = h.HandleEvent(t.Context(), testEvent(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timed out after 200ms")
	assert.Equal(t, 1, rec.last(t).attempts)

	lines := readLines(t, filepath.Join(dir, "child"))
	pid, err := strconv.Atoi(lines[0])
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return gone(pid) }, 5*time.Second, 10*time.Millisecond, "child %d still running", pid)
}

func TestExecShutdownKillsTheRunningCommand(t *testing.T) {
	path, dir := script(t, `
echo started > "$1/fifo"
exec sleep 30`)
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path, dir}, Timeout: time.Minute}, rec.options())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		f, err := os.Open(fifo) // blocks until the script opens it
		if err != nil {
			cancel()
			return
		}
		defer f.Close()
		_, _ = bufio.NewReader(f).ReadString('\n')
		cancel() // the client shuts down hard while the command runs
	}()
	err = h.HandleEvent(ctx, testEvent(1))
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "not handled")
	assert.Equal(t, 1, rec.last(t).attempts, "no retry after shutdown")
	assert.Empty(t, rec.waits)
}

func TestExecConcurrencyLimit(t *testing.T) {
	// Each run claims the lowest free slot directory; with at most two runs
	// at once no run ever needs slot 2.
	path, dir := script(t, `
i=0
while ! mkdir "$1/slot$i" 2>/dev/null; do i=$((i+1)); done
echo "$i" >> "$1/slots"
sleep 0.2
rmdir "$1/slot$i"`)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path, dir}, Concurrency: 2}, rec.options())
	require.NoError(t, err)

	const n = 6
	var wg sync.WaitGroup
	for s := range uint64(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, h.HandleEvent(context.Background(), testEvent(s+1)))
		}()
	}
	wg.Wait()
	slots := readLines(t, filepath.Join(dir, "slots"))
	require.Len(t, slots, n)
	maxSlot := 0
	for _, s := range slots {
		i, err := strconv.Atoi(s)
		require.NoError(t, err)
		maxSlot = max(maxSlot, i)
	}
	assert.Equal(t, 1, maxSlot, "two commands ran at once, never three: %v", slots)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Len(t, rec.results, n)
}

func TestExecDoesNotPassSecretsOn(t *testing.T) {
	t.Setenv("QQBOT_CLIENT_SECRET", "top-secret")
	t.Setenv("SHOP_BOT_SECRET", "also-secret")
	t.Setenv("QQGATE_TEST_INHERITED", "inherited")
	path, dir := script(t, `env > "$1/env"`)
	var rec recorder
	opts := rec.options()
	opts.HideEnv = func() []string { return []string{"QQBOT_CLIENT_SECRET", "SHOP_BOT_SECRET"} }
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path, dir}}, opts)
	require.NoError(t, err)
	require.NoError(t, h.HandleEvent(t.Context(), testEvent(1)))
	env := readLines(t, filepath.Join(dir, "env"))
	assert.Contains(t, env, "QQGATE_TEST_INHERITED=inherited")
	for _, kv := range env {
		assert.NotContains(t, kv, "secret", "a secret reached the command: %s", kv)
	}
}

// TestExecOddTypeAndID: an event whose type or id cannot be an environment
// value as it is (a NUL, a line break, a huge id) is still delivered, with
// those variables quoted (MetaValue) and the exact values on stdin.
func TestExecOddTypeAndID(t *testing.T) {
	path, dir := script(t, `
cat >> "$1/stdin"
printf '%s\n' "$QQGATE_TYPE" >> "$1/type"
printf '%s\n' "$QQGATE_ID" >> "$1/id"`)
	var rec recorder
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path, dir}, Retries: -1}, rec.options())
	require.NoError(t, err)
	odd := []struct{ typ, id string }{
		{"C2C_MESSAGE_CREATE", "C2C:abc\x00def"},
		{"T\r\nX-Evil: 1", "id\n2"},
		{"BIG", strings.Repeat("i", 256<<10)}, // over the kernel's limit for one variable
	}
	var wantStdin []string
	for i, o := range odd {
		ev := testEvent(uint64(i + 1))
		ev.Type, ev.ID = o.typ, o.id
		require.NoError(t, h.HandleEvent(t.Context(), ev))
		assert.Equal(t, result{seq: ev.Seq, attempts: 1}, rec.last(t))
		wantStdin = append(wantStdin, mustLine(t, ev))
	}
	assert.Equal(t, wantStdin, readLines(t, filepath.Join(dir, "stdin")), "the exact values on stdin")
	types := readLines(t, filepath.Join(dir, "type"))
	assert.Equal(t, []string{"C2C_MESSAGE_CREATE", `"T\r\nX-Evil: 1"`, "BIG"}, types)
	ids := readLines(t, filepath.Join(dir, "id"))
	require.Len(t, ids, 3)
	assert.Equal(t, `"C2C:abc\x00def"`, ids[0])
	assert.Equal(t, `"id\n2"`, ids[1])
	assert.Equal(t, handler.MetaValue(odd[2].id), ids[2])
	assert.True(t, strings.HasSuffix(ids[2], `"...`))
}
