package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// A bot that answers nothing yet: it logs every message it receives, and
// resumes its session after a restart through the openclaw-compatible
// record in ~/.openclaw/qqbot/sessions.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	store, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	var mux event.Mux
	mux.OnMessage(func(ctx context.Context, ev event.Event, m wire.Message) error {
		log.Printf("%s #%d: %q", ev.Type, ev.Seq, m.Content)
		return nil
	})
	c, err := client.New(client.Config{
		AppID:        os.Getenv("QQBOT_APP_ID"),
		ClientSecret: os.Getenv("QQBOT_CLIENT_SECRET"),
		Store:        store,
		Handler:      &mux,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatalf("stopped: %v (close code %d)", err, client.CloseCode(err))
	}
}

func ExampleCloseCode() {
	err := fmt.Errorf("run: %w", &client.CloseError{Code: wire.CloseBotBanned, Reason: "banned"})
	fmt.Println(client.CloseCode(err))
	fmt.Println(client.CloseCode(context.Canceled))
	// Output:
	// 4915 bot banned
	// -1
}

func ExampleMux() {
	var mux event.Mux
	mux.HandleFunc(wire.EventGroupAddRobot, func(ctx context.Context, ev event.Event) error {
		g, err := ev.GroupRobot()
		fmt.Println("added to", g.GroupOpenID)
		return err
	})
	mux.OnMessage(func(ctx context.Context, ev event.Event, m wire.Message) error {
		fmt.Println("message:", m.Content)
		return nil
	})
	_ = mux.HandleEvent(context.Background(), event.Event{Type: wire.EventC2CMessageCreate, Data: []byte(`{"id":"m1","content":"hi","author":{"user_openid":"u"}}`)})
	_ = mux.HandleEvent(context.Background(), event.Event{Type: wire.EventGroupAddRobot, Data: []byte(`{"group_openid":"G1","op_member_openid":"M1","timestamp":1}`)})
	// Output:
	// message: hi
	// added to G1
}
