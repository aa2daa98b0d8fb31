package webhook_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/webhook"
	"github.com/qqgate/qqgate/wire"
)

// A bot on its own URL, with the fake platform validating the URL and
// pushing a message, delivered twice.
func Example() {
	dir, _ := os.MkdirTemp("", "webhook-example-")
	defer os.RemoveAll(dir)

	got := make(chan string, 1)
	mux := &event.Mux{}
	mux.OnMessage(func(ctx context.Context, ev event.Event, m wire.Message) error {
		got <- fmt.Sprintf("seq %d %s: %q", ev.Seq, ev.Type, m.Content)
		return nil
	})
	bot, err := webhook.NewBot(webhook.BotConfig{AppID: "102000001", Secret: "DG5g3B4j9X2KOErG", Handler: mux,
		Inbox: webhook.InboxConfig{Dir: dir}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- bot.Run(ctx) }()
	srv := httptest.NewServer(bot) // a real bot serves HTTPS: http.ListenAndServeTLS
	defer srv.Close()

	platform, _ := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: srv.URL, AppID: "102000001", Secret: "DG5g3B4j9X2KOErG"})
	defer platform.Close()
	fmt.Println("validated:", platform.Validate(ctx, false) == nil)
	res, _ := platform.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{Deliveries: 2})
	fmt.Println("acknowledged:", res.Acked, len(res.Attempts), "times")
	fmt.Println(<-got)
	stop()
	<-done
	fmt.Println("duplicates:", bot.Stats().Duplicates)
	// Output:
	// validated: true
	// acknowledged: true 2 times
	// seq 1 C2C_MESSAGE_CREATE: "hello 1"
	// duplicates: 1
}
