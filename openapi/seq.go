package openapi

import (
	"container/list"
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Range of FreshMsgSeq. Reply numbering counts from 1 and never gets near
// FreshSeqMin, so an active send cannot collide with a handler's reply.
const (
	FreshSeqMin = 1 << 20
	FreshSeqMax = 1<<31 - 1
)

// FreshMsgSeq returns a random msg_seq in [FreshSeqMin, FreshSeqMax], for
// a send that answers no inbound message. The client uses it for such
// sends when Message.MsgSeq is zero; a retry of the send keeps it.
func FreshMsgSeq() int {
	return FreshSeqMin + rand.IntN(FreshSeqMax-FreshSeqMin+1)
}

type scopeKey struct{}

// replyScope numbers the replies of one handler invocation.
type replyScope struct {
	mu   sync.Mutex
	next map[string]int // passive key → last index used
}

// WithReplyScope returns a context that numbers replies afresh: the
// replies sent with it (or a context derived from it) to one inbound
// message take msg_seq 1, 2, 3… in the order they are made. Call it once
// per delivery of an event to a handler, so that a handler run again after
// a crash or a redelivery sends its replies with the same msg_seq as
// before; the platform then drops the ones already delivered (40054005),
// which the client reports as success with SendResult.Duplicate. All the
// replies to one inbound message must come from one scope: a second scope
// starts again at 1, and its replies are taken as already delivered.
//
// Without a scope, the client keeps one counter per inbound id (bounded by
// Config.SeqCacheSize), which continues across handler runs in the same
// process.
func WithReplyScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, scopeKey{}, &replyScope{next: make(map[string]int)})
}

// nextIndex returns the next reply index for key in ctx's scope, or false
// when ctx has none.
func scopeIndex(ctx context.Context, key string) (int, bool) {
	s, ok := ctx.Value(scopeKey{}).(*replyScope)
	if !ok || s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next[key]++
	return s.next[key], true
}

// inboundTracker remembers, per inbound id, when it was first seen and the
// last reply index given outside a scope. It is a bounded LRU.
type inboundTracker struct {
	mu   sync.Mutex
	max  int
	ll   *list.List // of *inboundEntry, most recent first
	byID map[string]*list.Element
}

type inboundEntry struct {
	key       string
	firstSeen time.Time
	last      int
}

func newInboundTracker(max int) *inboundTracker {
	return &inboundTracker{max: max, ll: list.New(), byID: make(map[string]*list.Element)}
}

// touch returns key's first-seen time (now, the first time) and, when
// count is set, the next reply index of the client-wide counter.
func (t *inboundTracker) touch(key string, now time.Time, count bool) (firstSeen time.Time, index int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byID[key]
	if ok {
		t.ll.MoveToFront(el)
	} else {
		el = t.ll.PushFront(&inboundEntry{key: key, firstSeen: now})
		t.byID[key] = el
		for t.ll.Len() > t.max {
			old := t.ll.Back()
			t.ll.Remove(old)
			delete(t.byID, old.Value.(*inboundEntry).key)
		}
	}
	e := el.Value.(*inboundEntry)
	if count {
		e.last++
		index = e.last
	}
	return e.firstSeen, index
}

// len reports how many ids are remembered.
func (t *inboundTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ll.Len()
}
