package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/handler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result is one OnResult call.
type result struct {
	seq      uint64
	attempts int
	err      error
}

// recorder collects OnResult calls and the waits asked of Sleep.
type recorder struct {
	mu      sync.Mutex
	results []result
	waits   []time.Duration
}

func (r *recorder) onResult(ev event.Event, attempts int, err error, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, result{ev.Seq, attempts, err})
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recorder) options() handler.Options {
	return handler.Options{Sleep: r.sleep, OnResult: r.onResult, Backoff: handler.Backoff{Jitter: -1}}
}

func (r *recorder) last(t *testing.T) result {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.results)
	return r.results[len(r.results)-1]
}

func testEvent(seq uint64) event.Event {
	return event.Event{
		AccountID: "shop-bot",
		Type:      "C2C_MESSAGE_CREATE",
		Seq:       seq,
		ID:        fmt.Sprintf("C2C_MESSAGE_CREATE:%d", seq),
		Data:      json.RawMessage(fmt.Sprintf(`{"content":"hello %d"}`, seq)),
	}
}

func mustLine(t *testing.T, ev event.Event) string {
	t.Helper()
	b, err := handler.Line(ev)
	require.NoError(t, err)
	return string(b)
}

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   event.Event
		want string
		err  bool
	}{
		{
			name: "message",
			ev:   event.Event{AccountID: "a", Type: "C2C_MESSAGE_CREATE", Seq: 7, ID: "x:1", Data: json.RawMessage(`{"content":"hi"}`)},
			want: `{"account":"a","seq":7,"type":"C2C_MESSAGE_CREATE","id":"x:1","data":{"content":"hi"}}`,
		},
		{
			name: "empty data is null, empty id kept",
			ev:   event.Event{AccountID: "a", Type: "RESUMED", Seq: 3},
			want: `{"account":"a","seq":3,"type":"RESUMED","id":"","data":null}`,
		},
		{
			name: "data is compacted, never reinterpreted",
			ev:   event.Event{AccountID: "a", Type: "T", Seq: 1, Data: json.RawMessage("{\n  \"n\": 1.50,\n  \"s\": \"\\u4f60\"\n}")},
			want: `{"account":"a","seq":1,"type":"T","id":"","data":{"n":1.50,"s":"\u4f60"}}`,
		},
		{
			name: "strings are escaped",
			ev:   event.Event{AccountID: "a\"b", Type: "T\n", Seq: 18446744073709551615, ID: "<&>", Data: json.RawMessage(`[1]`)},
			want: `{"account":"a\"b","seq":18446744073709551615,"type":"T\n","id":"\u003c\u0026\u003e","data":[1]}`,
		},
		{
			name: "invalid data",
			ev:   event.Event{AccountID: "a", Type: "T", Data: json.RawMessage(`{"broken`)},
			err:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := handler.Line(tc.ev)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
			assert.NotContains(t, string(b), "\n")
			assert.True(t, json.Valid(b))
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec handler.Spec
		want string // substring of the error; empty: valid
	}{
		{"zero is stdout", handler.Spec{}, ""},
		{"stdout", handler.Spec{Type: "stdout", Retries: -1}, ""},
		{"exec", handler.Spec{Type: "exec", Command: []string{"./reply.sh", "-v"}, Timeout: time.Second, Concurrency: 4}, ""},
		{"http loopback", handler.Spec{Type: "http", URL: "http://127.0.0.1:8080/events", Timeout: 5 * time.Second}, ""},
		{"http localhost", handler.Spec{Type: "http", URL: "http://localhost/x"}, ""},
		{"http ipv6 loopback", handler.Spec{Type: "http", URL: "http://[::1]:9/x"}, ""},
		{"https anywhere", handler.Spec{Type: "http", URL: "https://bots.example.com/hook", Headers: map[string]string{"Authorization": "Bearer s3cret"}}, ""},

		{"unknown type", handler.Spec{Type: "kafka"}, `unknown type "kafka"`},
		{"exec without command", handler.Spec{Type: "exec"}, "needs a command"},
		{"exec with empty command", handler.Spec{Type: "exec", Command: []string{""}}, "needs a command"},
		{"negative timeout", handler.Spec{Type: "exec", Command: []string{"x"}, Timeout: -time.Second}, "timeout -1s is negative"},
		{"negative concurrency", handler.Spec{Type: "exec", Command: []string{"x"}, Concurrency: -1}, "concurrency -1 is negative"},
		{"http without url", handler.Spec{Type: "http"}, "needs a url"},
		{"http relative url", handler.Spec{Type: "http", URL: "/events"}, "not an absolute URL"},
		{"http non-loopback", handler.Spec{Type: "http", URL: "http://10.0.0.1/events"}, "only on loopback"},
		{"http other scheme", handler.Spec{Type: "http", URL: "ftp://127.0.0.1/x"}, "scheme must be http or https"},
		{"url on exec", handler.Spec{Type: "exec", Command: []string{"x"}, URL: "https://a/"}, "url is only for type http"},
		{"command on http", handler.Spec{Type: "http", URL: "https://a/", Command: []string{"x"}}, "command is only for type exec"},
		{"concurrency on stdout", handler.Spec{Concurrency: 2}, "concurrency is only for type exec"},
		{"headers on exec", handler.Spec{Type: "exec", Command: []string{"x"}, Headers: map[string]string{"A": "b"}}, "headers are only for type http"},
		{"reserved header", handler.Spec{Type: "http", URL: "https://a/", Headers: map[string]string{"x-qqgate-seq": "1"}}, "X-Qqgate-Seq is set by qqgate"},
		{"bad header name", handler.Spec{Type: "http", URL: "https://a/", Headers: map[string]string{"Bad Name": "1"}}, "not a valid token"},
		{"header value with newline", handler.Spec{Type: "http", URL: "https://a/", Headers: map[string]string{"X-Token": "a\r\nEvil: 1"}}, "line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cret")
			_, err = handler.New(tc.spec, handler.Options{})
			assert.Error(t, err, "New validates")
		})
	}
}

func TestValidateHidesURLSecrets(t *testing.T) {
	err := handler.Spec{Type: "http", URL: "http://user:pw123@10.1.1.1/x?token=tok456"}.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "pw123")
	assert.NotContains(t, err.Error(), "tok456")
}

// flakyWriter fails its first fail writes.
type flakyWriter struct {
	fail   int
	writes []string
}

func (w *flakyWriter) Write(p []byte) (int, error) {
	if w.fail > 0 {
		w.fail--
		return 0, errors.New("disk on fire")
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestStdoutRetriesAWrite(t *testing.T) {
	var rec recorder
	w := &flakyWriter{fail: 1}
	opts := rec.options()
	opts.Stdout = w
	h, err := handler.New(handler.Spec{}, opts)
	require.NoError(t, err)
	require.NoError(t, h.HandleEvent(t.Context(), testEvent(1)))
	assert.Equal(t, []string{mustLine(t, testEvent(1)) + "\n"}, w.writes)
	assert.Equal(t, 2, rec.last(t).attempts)

	w.fail = 100
	err = h.HandleEvent(t.Context(), testEvent(2))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "disk on fire")
	assert.Equal(t, 4, rec.last(t).attempts, "DefaultRetries after the first")
}

// lineChecker records writes and checks that each holds whole lines only,
// each valid JSON, and that no two run at once.
type lineChecker struct {
	mu     sync.Mutex
	busy   bool
	bad    []string
	writes []string // the lines written
	calls  int      // the Writes
}

func (w *lineChecker) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.busy {
		w.bad = append(w.bad, "concurrent Write")
	}
	w.busy = true
	w.mu.Unlock()
	s := string(p)
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] != "" { // the last line of the Write is not whole
		w.mu.Lock()
		w.bad = append(w.bad, s)
		w.mu.Unlock()
	}
	lines = lines[:len(lines)-1]
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			w.mu.Lock()
			w.bad = append(w.bad, l)
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	w.busy = false
	w.writes = append(w.writes, lines...)
	w.calls++
	w.mu.Unlock()
	return len(p), nil
}

func TestStdoutSharedByAccounts(t *testing.T) {
	w := &lineChecker{}
	shared := handler.NewStdout(w)
	const accounts, events = 8, 50
	var wg sync.WaitGroup
	for a := range accounts {
		h, err := handler.New(handler.Spec{Type: "stdout"}, handler.Options{Stdout: shared})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range uint64(events) {
				ev := testEvent(s + 1)
				ev.AccountID = fmt.Sprintf("acct-%d", a)
				assert.NoError(t, h.HandleEvent(context.Background(), ev))
			}
		}()
	}
	wg.Wait()
	assert.Empty(t, w.bad)
	require.Len(t, w.writes, accounts*events)
	// Each account's lines are in seq order.
	next := map[string]uint64{}
	for _, l := range w.writes {
		var v struct {
			Account string
			Seq     uint64
		}
		require.NoError(t, json.Unmarshal([]byte(l), &v))
		next[v.Account]++
		assert.Equal(t, next[v.Account], v.Seq)
	}
}

func TestStdoutHandleEventDirect(t *testing.T) {
	var buf bytes.Buffer
	s := handler.NewStdout(&buf)
	require.NoError(t, s.HandleEvent(t.Context(), testEvent(5)))
	assert.Equal(t, mustLine(t, testEvent(5))+"\n", buf.String())
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	var rec recorder
	opts := rec.options()
	opts.Stdout = &flakyWriter{fail: 100}
	opts.Backoff = handler.Backoff{Initial: time.Second, Max: 3 * time.Second, Jitter: -1}
	h, err := handler.New(handler.Spec{Retries: 4}, opts)
	require.NoError(t, err)
	require.Error(t, h.HandleEvent(t.Context(), testEvent(1)))
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}, rec.waits)
	assert.Equal(t, 5, rec.last(t).attempts)

	// Negative Retries: one attempt, no wait.
	rec = recorder{}
	opts = rec.options()
	opts.Stdout = &flakyWriter{fail: 100}
	h, err = handler.New(handler.Spec{Retries: -1}, opts)
	require.NoError(t, err)
	require.Error(t, h.HandleEvent(t.Context(), testEvent(1)))
	assert.Empty(t, rec.waits)
	assert.Equal(t, 1, rec.last(t).attempts)
}

func TestShutdownDuringRetryWait(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var rec recorder
	opts := rec.options()
	opts.Stdout = &flakyWriter{fail: 100}
	opts.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel() // the client shuts down hard while we wait
		<-ctx.Done()
		return ctx.Err()
	}
	h, err := handler.New(handler.Spec{}, opts)
	require.NoError(t, err)
	err = h.HandleEvent(ctx, testEvent(1))
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "disk on fire")
	assert.Equal(t, 1, rec.last(t).attempts)
}

// panickyWriter panics on its first panics writes, then records them.
type panickyWriter struct {
	panics int
	writes []string
}

func (w *panickyWriter) Write(p []byte) (int, error) {
	if w.panics > 0 {
		w.panics--
		panic("writer exploded")
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// handleNoPanic calls h.HandleEvent and reports a panic that came out of
// it as a test failure instead of a crash.
func handleNoPanic(t *testing.T, h event.Handler, ev event.Event) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("HandleEvent panicked: %v", p)
			err = fmt.Errorf("panicked: %v", p)
		}
	}()
	return h.HandleEvent(t.Context(), ev)
}

// TestPanicIsAFailedAttempt: an attempt that panics is a failure: retried,
// and never reported (OnResult, the returned error) as a delivery.
func TestPanicIsAFailedAttempt(t *testing.T) {
	var rec recorder
	w := &panickyWriter{panics: 1}
	opts := rec.options()
	opts.Stdout = w
	h, err := handler.New(handler.Spec{}, opts)
	require.NoError(t, err)
	require.NoError(t, handleNoPanic(t, h, testEvent(1)))
	assert.Equal(t, []string{mustLine(t, testEvent(1)) + "\n"}, w.writes, "delivered by the retry")
	assert.Equal(t, result{seq: 1, attempts: 2}, rec.last(t))

	w.panics = 100
	err = handleNoPanic(t, h, testEvent(2))
	require.Error(t, err)
	assert.ErrorIs(t, err, handler.ErrPanic)
	var pe *handler.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "writer exploded", pe.Value)
	assert.Contains(t, string(pe.Stack), "panickyWriter")
	last := rec.last(t)
	assert.Equal(t, 4, last.attempts, "retried like any failure")
	assert.ErrorIs(t, last.err, handler.ErrPanic, "OnResult sees the failure")
}
