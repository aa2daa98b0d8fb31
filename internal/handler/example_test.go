package handler_test

import (
	"context"
	"encoding/json"
	"log"
	"os"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/handler"
)

// The default handler prints each event as one JSON line. Share one
// *Stdout between every account writing to the same stream.
func ExampleNew() {
	stdout := handler.NewStdout(os.Stdout)
	h, err := handler.New(handler.Spec{Type: "stdout"}, handler.Options{Stdout: stdout})
	if err != nil {
		log.Fatal(err)
	}
	// Normally client.Config.Handler = h; here one event by hand.
	err = h.HandleEvent(context.Background(), event.Event{
		AccountID: "shop-bot",
		Type:      "C2C_MESSAGE_CREATE",
		Seq:       42,
		ID:        "C2C_MESSAGE_CREATE:abc",
		Data:      json.RawMessage(`{"content":"hi"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"account":"shop-bot","seq":42,"type":"C2C_MESSAGE_CREATE","id":"C2C_MESSAGE_CREATE:abc","data":{"content":"hi"}}
}

// An exec handler runs a command per event, the event's line on its stdin;
// an http handler POSTs it. Both retry a failure with backoff.
func ExampleNew_exec() {
	spec := handler.Spec{Type: "exec", Command: []string{"sh", "-c", "cat > /dev/null"}, Concurrency: 2, Retries: 2}
	if err := spec.Validate(); err != nil {
		log.Fatal(err)
	}
	h, err := handler.New(spec, handler.Options{})
	if err != nil {
		log.Fatal(err)
	}
	_ = h // client.Config{..., Handler: h}
}
