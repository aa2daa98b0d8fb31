package handler_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/handler"
)

// panicWriter panics on its first panics writes, then writes.
type panicWriter struct {
	panics int64
	n      atomic.Int64
}

func (w *panicWriter) Write(p []byte) (int, error) {
	if w.n.Add(1) <= w.panics {
		panic("writer exploded")
	}
	return len(p), nil
}

func TestPanickingAttemptIsAFailedAttempt(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		var rec recorder
		opts := rec.options()
		opts.Stdout = &panicWriter{panics: 1}
		h, err := handler.New(handler.Spec{Type: handler.TypeStdout, Retries: 2}, opts)
		require.NoError(t, err)
		var got error
		require.NotPanics(t, func() { got = h.HandleEvent(context.Background(), testEvent(1)) })
		require.NoError(t, got)
		r := rec.last(t)
		assert.Equal(t, 2, r.attempts, "the panic was one failed attempt, then a retry")
		assert.NoError(t, r.err)
	})
	t.Run("exhausted", func(t *testing.T) {
		var rec recorder
		opts := rec.options()
		opts.Stdout = &panicWriter{panics: 100}
		h, err := handler.New(handler.Spec{Type: handler.TypeStdout, Retries: 2}, opts)
		require.NoError(t, err)
		var got error
		require.NotPanics(t, func() { got = h.HandleEvent(context.Background(), testEvent(2)) })
		require.Error(t, got)
		assert.Contains(t, got.Error(), "panic")
		assert.Contains(t, got.Error(), "writer exploded")
		r := rec.last(t)
		assert.Equal(t, 3, r.attempts)
		require.Error(t, r.err, "OnResult counts the event as failed, not handled")
	})
}
