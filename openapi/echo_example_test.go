package openapi_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// An echo bot: a Mux handler replies to every message with one call, on
// the gateway client's own token source. Against the fake platform, the
// example prints what the user saw.
func Example_echoBot() {
	srv := gatewaytest.NewServer(gatewaytest.Options{})
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	tokens := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.TokenURL(), hc)
	api, err := openapi.New(openapi.Config{AppID: gatewaytest.DefaultAppID, Tokens: tokens, BaseURL: srv.URL(), HTTPClient: hc})
	if err != nil {
		fmt.Println(err)
		return
	}

	replied := make(chan string, 1)
	var mux event.Mux
	mux.OnMessage(func(ctx context.Context, ev event.Event, m wire.Message) error {
		_, err := api.ReplyEventText(ctx, ev, "echo: "+m.Content)
		replied <- m.Author.UserOpenID
		return err
	})
	c, err := client.New(client.Config{
		AppID: gatewaytest.DefaultAppID, TokenSource: tokens, APIBase: srv.URL(), HTTPClient: hc,
		Store: sessionstore.NewMemoryStore(), Handler: &mux,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	sess, err := srv.WaitSession(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := sess.EmitMessage(wire.EventC2CMessageCreate); err != nil {
		fmt.Println(err)
		return
	}
	user := <-replied
	for _, m := range srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: user}) {
		fmt.Printf("user sees %q (msg_seq %d)\n", m.Content, m.MsgSeq)
	}
	// Output:
	// user sees "echo: hello 1" (msg_seq 1)
}
