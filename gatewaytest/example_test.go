package gatewaytest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// A client's whole start-up against the fake gateway, with a raw
// coder/websocket connection: token, gateway URL, HELLO, IDENTIFY, READY,
// then an event emitted by the test.
func Example() {
	srv := gatewaytest.NewServer(gatewaytest.Options{HeartbeatInterval: 50 * time.Millisecond})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// 1. The access token.
	body := `{"appId":"` + gatewaytest.DefaultAppID + `","clientSecret":"` + gatewaytest.DefaultSecret + `"}`
	resp, err := http.Post(srv.TokenURL(), "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	var tok wire.TokenResponse
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	_ = resp.Body.Close()
	fmt.Println("token expires in", int64(tok.ExpiresIn), "s")

	// 2. The gateway URL.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/gateway", nil)
	req.Header.Set("Authorization", wire.TokenPrefix+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var gw wire.Gateway
	_ = json.NewDecoder(resp.Body).Decode(&gw)
	_ = resp.Body.Close()

	// 3. HELLO, IDENTIFY, READY.
	ws, _, err := websocket.Dial(ctx, gw.URL, nil)
	if err != nil {
		panic(err)
	}
	defer func() { _ = ws.CloseNow() }()
	read := func() wire.Frame {
		_, data, err := ws.Read(ctx)
		if err != nil {
			panic(err)
		}
		f, _ := wire.DecodeFrame(data)
		return f
	}
	fmt.Println(read().Op)
	identify, _ := wire.EncodeFrame(wire.OpIdentify, wire.Identify{
		Token:   wire.TokenPrefix + tok.AccessToken,
		Intents: 1<<25 | 1<<30,
		Shard:   [2]int{0, 1},
	})
	_ = ws.Write(ctx, websocket.MessageText, identify)
	ready := read()
	fmt.Println(ready.T, ready.S)

	// 4. The test side: find the session and push an event.
	sess, err := srv.WaitSession(ctx)
	if err != nil {
		panic(err)
	}
	_, _ = sess.EmitMessage(wire.EventC2CMessageCreate)
	ev := read()
	var msg wire.Message
	_ = json.Unmarshal(ev.D, &msg)
	fmt.Println(ev.T, ev.S, msg.Content)

	// 5. A scripted rotation: op 7, then close 4009.
	sess.Reconnect(gatewaytest.Close{Code: wire.CloseSessionTimedOut, Reason: "Session timed out"})
	fmt.Println(read().Op)
	_, _, err = ws.Read(ctx)
	fmt.Println(websocket.CloseStatus(err))

	// Output:
	// token expires in 7200 s
	// HELLO
	// READY 1
	// C2C_MESSAGE_CREATE 2 hello 1
	// RECONNECT
	// StatusCode(4009)
}
