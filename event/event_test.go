package event_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/wire"
)

func TestTypedViewsAcceptOnlyTheirTypes(t *testing.T) {
	msg := event.Event{Type: wire.EventGroupMessageCreate, Data: json.RawMessage(`{"id":"m1","content":"hi","group_openid":"g"}`)}
	require.True(t, msg.IsMessage())
	m, err := msg.Message()
	require.NoError(t, err)
	assert.Equal(t, "hi", m.Content)
	_, err = msg.Friend()
	assert.Error(t, err, "a message is not a friend event")

	friend := event.Event{Type: wire.EventC2CMsgReceive, Data: json.RawMessage(`{"openid":"u1","timestamp":1}`)}
	assert.False(t, friend.IsMessage())
	f, err := friend.Friend()
	require.NoError(t, err)
	assert.Equal(t, "u1", f.OpenID)
	_, err = friend.Message()
	assert.Error(t, err)

	bad := event.Event{Type: wire.EventC2CMessageCreate, Seq: 7, Data: json.RawMessage(`[`)}
	_, err = bad.Message()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "seq 7", "the error names the event")
}

func TestMuxRoutes(t *testing.T) {
	var got []string
	var mux event.Mux
	mux.HandleFunc(wire.EventReady, func(context.Context, event.Event) error { got = append(got, "ready"); return nil })
	mux.OnMessage(func(_ context.Context, _ event.Event, m wire.Message) error {
		got = append(got, "msg:"+m.Content)
		return nil
	})
	mux.Default(event.HandlerFunc(func(_ context.Context, ev event.Event) error { got = append(got, "default:"+ev.Type); return nil }))
	ctx := context.Background()
	require.NoError(t, mux.HandleEvent(ctx, event.Event{Type: wire.EventReady, Data: json.RawMessage(`{}`)}))
	require.NoError(t, mux.HandleEvent(ctx, event.Event{Type: wire.EventC2CMessageCreate, Data: json.RawMessage(`{"content":"a"}`)}))
	require.NoError(t, mux.HandleEvent(ctx, event.Event{Type: wire.EventFriendAdd, Data: json.RawMessage(`{}`)}))
	assert.Equal(t, []string{"ready", "msg:a", "default:FRIEND_ADD"}, got)

	// A message body that does not decode is an error, not a silent skip.
	err := mux.HandleEvent(ctx, event.Event{Type: wire.EventAtMessageCreate, Data: json.RawMessage(`"x"`)})
	require.Error(t, err)

	// A handler's error comes back as it is.
	boom := errors.New("boom")
	mux.HandleFunc(wire.EventResumed, func(context.Context, event.Event) error { return boom })
	assert.ErrorIs(t, mux.HandleEvent(ctx, event.Event{Type: wire.EventResumed}), boom)

	// The zero Mux takes every event and does nothing.
	var empty event.Mux
	assert.NoError(t, empty.HandleEvent(ctx, event.Event{Type: "ANY"}))
}
