package openapi

import (
	"context"

	"github.com/qqgate/qqgate/event"
)

// InboundOf is what a reply needs of an event from any transport.
func InboundOf(ev event.Event) Inbound {
	return Inbound{Type: ev.Type, ID: ev.ID, Data: ev.Data}
}

// ReplyEvent answers ev where it came from, as [Client.Reply] does: the
// handler code of a chat bot is one call, with no wiring between the
// transport and the sender. Without a [WithReplyScope] in ctx, the replies
// to one event are numbered 1, 2, 3, ... by the client's own counter for
// its id, which starts again at 1 in a new process: a handler run again
// after a crash re-sends with the same msg_seq, and the platform's
// duplicate answer (40054005) is reported as delivered.
func (c *Client) ReplyEvent(ctx context.Context, ev event.Event, m *Message) (*SendResult, error) {
	return c.Reply(ctx, InboundOf(ev), m)
}

// ReplyEventText is ReplyEvent with a text message.
func (c *Client) ReplyEventText(ctx context.Context, ev event.Event, text string) (*SendResult, error) {
	return c.Reply(ctx, InboundOf(ev), Text(text))
}
