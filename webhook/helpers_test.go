package webhook_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/webhook"
)

const (
	testApp    = "102000001"
	testSecret = "DG5g3B4j9X2KOErG"
)

// recorder is a handler that records the events it got and signals each.
type recorder struct {
	mu  sync.Mutex
	evs []event.Event
	got chan event.Event
}

func newRecorder() *recorder { return &recorder{got: make(chan event.Event, 1024)} }

func (r *recorder) HandleEvent(_ context.Context, ev event.Event) error {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	r.got <- ev
	return nil
}

func (r *recorder) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.evs...)
}

// newBot opens a bot in dir; cleanup closes it.
func newBot(t testing.TB, dir, app, secret string, h event.Handler, mod ...func(*webhook.BotConfig)) *webhook.Bot {
	t.Helper()
	cfg := webhook.BotConfig{AppID: app, Secret: secret, Handler: h, Inbox: webhook.InboxConfig{Dir: dir}}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := webhook.NewBot(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// run runs b's dispatcher until the returned stop is called (cleanup calls
// it too); stop waits for Run to return.
func run(t testing.TB, b *webhook.Bot) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// serve serves h on a loopback test server and returns a platform for app.
func serve(t testing.TB, h *httptest.Server, app, secret string) *gatewaytest.WebhookPlatform {
	t.Helper()
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: h.URL + "/", AppID: app, Secret: secret, Client: h.Client()})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}
