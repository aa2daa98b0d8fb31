package cluster

import (
	"context"
	"fmt"

	"github.com/qqgate/qqgate/client"
)

// GateTokens wraps an account's token source so that it hands out a token
// (and so lets the client connect, IDENTIFY or RESUME) only while this
// runner owns the account: a runner that wakes after its lease expired
// (paused, partitioned) does not reconnect an account another runner now
// serves.
func (n *Node) GateTokens(accountID string, ts client.TokenSource) client.TokenSource {
	return gated{n: n, id: accountID, ts: ts}
}

type gated struct {
	n  *Node
	id string
	ts client.TokenSource
}

func (g gated) Token(ctx context.Context) (string, error) {
	if !g.n.Owns(g.id) {
		g.n.poke()
		return "", fmt.Errorf("account %q: %w", g.id, ErrNotOwner)
	}
	return g.ts.Token(ctx)
}

func (g gated) Invalidate() { g.ts.Invalidate() }
