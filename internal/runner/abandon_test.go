package runner

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
)

func TestAbandoningReturnsWhenTheContextEnds(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	stuck := event.HandlerFunc(func(ctx context.Context, ev event.Event) error {
		close(started)
		<-release // ignores ctx
		return nil
	})
	a := abandoning{h: stuck, log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.HandleEvent(ctx, event.Event{Type: "T", Seq: 7}) }()
	<-started
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "T #7")
	close(release) // the abandoned call ends; goleak checks it did
}

func TestAbandoningPassesResultsAndPanicsThrough(t *testing.T) {
	boom := errors.New("boom")
	a := abandoning{h: event.HandlerFunc(func(context.Context, event.Event) error { return boom }), log: zerolog.Nop()}
	require.ErrorIs(t, a.HandleEvent(context.Background(), event.Event{}), boom)

	a.h = event.HandlerFunc(func(context.Context, event.Event) error { panic("kaput") })
	func() {
		defer func() {
			p := recover()
			require.NotNil(t, p, "the panic reaches the caller, whose recover counts it")
			assert.Contains(t, p, "kaput")
		}()
		_ = a.HandleEvent(context.Background(), event.Event{})
	}()
}
