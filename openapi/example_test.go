package openapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/openapi"
)

// The client's token source is the gateway connection's
// (client.AppTokenSource), so the account has one token cycle.
var _ openapi.TokenSource = (*client.AppTokenSource)(nil)

// newExample starts a fake platform and a client of it. The caller calls
// the returned stop.
func newExample() (srv *gatewaytest.Server, api *openapi.Client, stop func()) {
	srv = gatewaytest.NewServer(gatewaytest.Options{})
	hc := &http.Client{Transport: &http.Transport{}}
	tokens := client.NewAppTokenSource(gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.TokenURL(), hc)
	api, err := openapi.New(openapi.Config{
		AppID:      gatewaytest.DefaultAppID,
		Tokens:     tokens,
		BaseURL:    srv.URL(),
		HTTPClient: hc,
	})
	if err != nil {
		panic(err)
	}
	return srv, api, func() { srv.Close(); hc.CloseIdleConnections() }
}

// inboundOf converts the fake's event (what a gateway client receives).
func inboundOf(ev gatewaytest.InboundEvent) openapi.Inbound {
	return openapi.Inbound{Type: ev.Type, ID: ev.ID, Data: ev.Data}
}

// Replying to a QQ user's message: the replies carry the message's id and
// msg_seq 1, 2; the user sees both.
func Example() {
	srv, api, stop := newExample()
	defer stop()
	ev, _ := srv.NewInbound("C2C_MESSAGE_CREATE") // as received from the gateway
	in := inboundOf(ev)

	ctx := openapi.WithReplyScope(context.Background()) // one per handler run
	for _, text := range []string{"hello", "how can I help?"} {
		res, err := api.ReplyText(ctx, in, text)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println("sent msg_seq", res.MsgSeq)
	}

	route, _ := openapi.RouteOf(in)
	for _, m := range srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: route.ID}) {
		fmt.Printf("user sees %q (msg_id %s, msg_seq %d)\n", m.Content, m.MsgID, m.MsgSeq)
	}
	// Output:
	// sent msg_seq 1
	// sent msg_seq 2
	// user sees "hello" (msg_id ROBOT1.0_c2c.1, msg_seq 1)
	// user sees "how can I help?" (msg_id ROBOT1.0_c2c.1, msg_seq 2)
}

// A handler that runs again (after a crash, or a redelivery) sends the same
// msg_seq numbers in a fresh scope: what was delivered is reported as
// Duplicate, and the user sees each reply once.
func ExampleWithReplyScope() {
	srv, api, stop := newExample()
	defer stop()
	ev, _ := srv.NewInbound("GROUP_AT_MESSAGE_CREATE")
	in := inboundOf(ev)

	handle := func(replies ...string) {
		ctx := openapi.WithReplyScope(context.Background())
		for _, text := range replies {
			res, err := api.ReplyText(ctx, in, text)
			if err != nil {
				fmt.Println("error:", err)
				return
			}
			fmt.Printf("%s: msg_seq %d, duplicate %v\n", text, res.MsgSeq, res.Duplicate)
		}
	}
	handle("one")        // the first run stops after one reply
	handle("one", "two") // the second run does it all

	route, _ := openapi.RouteOf(in)
	fmt.Println("the group sees", len(srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneGroup, ID: route.ID})), "messages")
	// Output:
	// one: msg_seq 1, duplicate false
	// one: msg_seq 1, duplicate true
	// two: msg_seq 2, duplicate false
	// the group sees 2 messages
}

// Where a reply goes, without sending it.
func ExampleRouteOf() {
	in := openapi.Inbound{
		Type: "GROUP_ADD_ROBOT",
		ID:   "GROUP_ADD_ROBOT:9f3ab1",
		Data: json.RawMessage(`{"group_openid":"G1","op_member_openid":"M1","timestamp":1772366400}`),
	}
	t, err := openapi.RouteOf(in)
	fmt.Println(t.Kind, t.ID, "event_id", t.EventID, err)

	_, err = openapi.RouteOf(openapi.Inbound{Type: "GROUP_DEL_ROBOT", Data: json.RawMessage(`{}`)})
	fmt.Println(errors.Is(err, openapi.ErrNoRoute))
	// Output:
	// group G1 event_id GROUP_ADD_ROBOT:9f3ab1 <nil>
	// true
}

// The sixth reply to a group message is refused before any request: the
// platform allows five.
func ExampleClient_Reply_limits() {
	srv, api, stop := newExample()
	defer stop()
	ev, _ := srv.NewInbound("GROUP_AT_MESSAGE_CREATE")
	in := inboundOf(ev)
	ctx := openapi.WithReplyScope(context.Background())
	for i := 1; i <= 6; i++ {
		_, err := api.ReplyText(ctx, in, fmt.Sprint("reply ", i))
		if errors.Is(err, openapi.ErrQuota) {
			fmt.Println("reply", i, "refused:", openapi.Classify(err))
		}
	}
	fmt.Println("requests sent:", len(srv.Sent()))
	// Output:
	// reply 6 refused: quota
	// requests sent: 5
}

// An image: upload it for the target's kind, then send its file_info.
func ExampleClient_UploadC2CMedia() {
	srv, api, stop := newExample()
	defer stop()
	ev, _ := srv.NewInbound("C2C_MESSAGE_CREATE")
	in := inboundOf(ev)
	route, _ := openapi.RouteOf(in)
	ctx := context.Background()

	info, err := api.UploadC2CMedia(ctx, route.ID, openapi.MediaUpload{
		FileType: openapi.FileImage,
		URL:      "https://example.com/cat.png",
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	if _, err := api.Reply(ctx, in, openapi.Media(info.FileInfo)); err != nil {
		fmt.Println("error:", err)
		return
	}
	m := srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: route.ID})[0]
	fmt.Println("msg_type", m.MsgType, "file_info matches:", m.FileInfo == info.FileInfo)
	// Output:
	// msg_type 7 file_info matches: true
}

// Do sends what the typed methods do not cover, with the same headers,
// token handling and retries.
func ExampleClient_Do() {
	_, api, stop := newExample()
	defer stop()
	var gw struct {
		Shards            int `json:"shards"`
		SessionStartLimit struct {
			Total int `json:"total"`
		} `json:"session_start_limit"`
	}
	if err := api.Do(context.Background(), http.MethodGet, "/gateway/bot", nil, &gw); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("shards", gw.Shards, "identify budget", gw.SessionStartLimit.Total)
	// Output:
	// shards 1 identify budget 1000
}

// Errors carry the platform's code and trace id, and match the sentinel of
// their class.
func ExampleAPIError() {
	srv, api, stop := newExample()
	defer stop()
	ev, _ := srv.NewInbound("C2C_MESSAGE_CREATE")
	srv.FailNextSendsWith(1, http.StatusBadRequest, 304025, "content blocked")

	_, err := api.ReplyText(context.Background(), inboundOf(ev), "something")
	var ae *openapi.APIError
	if errors.As(err, &ae) {
		fmt.Println(ae.Status, ae.EffectiveCode(), ae.Message, ae.TraceID != "")
	}
	fmt.Println(errors.Is(err, openapi.ErrContent), openapi.Classify(err))
	// Output:
	// 400 304025 content blocked true
	// true content
}
