package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/runner"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// cmdDemo is `qqgate demo`: an echo bot run by the runner against an
// embedded fake platform. A fake user writes to the bot; the runner hands
// each message to an http handler with `reply: text` (a tiny echo server
// in this process), sends its answer back through the OpenAPI, and the
// demo prints what the fake platform recorded: what the user saw. Then
// the connection drops, the user writes while the bot is away, and the
// resumed session replays the message and answers it. Exits 0. No account,
// no network.
func cmdDemo(ctx context.Context, args []string, e *env) int {
	fs := flag.NewFlagSet("qqgate demo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	defFormat := logAuto
	if v := e.getenv("QQGATE_LOG_FORMAT"); v != "" {
		defFormat = v
	}
	logFormat := fs.String("log-format", defFormat, logFormatUsage)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	hook := fs.Bool("webhook", false, "the webhook transport: validation, signed pushes, a retry, the runner (a subprocess) killed after an ACK and restarted")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(e.stderr, *logLevel, *logFormat)
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	if err := hideProcess(); err != nil { // as `qqgate run` does
		log.Warn().Err(err).Msg("cannot make the process non-dumpable")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *hook {
		say := func(format string, args ...any) { fmt.Fprintf(e.stderr, "demo: "+format+"\n", args...) }
		if err := demoWebhook(ctx, e, say); err != nil {
			return e.errorf("demo: %v", err)
		}
		return 0
	}

	srv := gatewaytest.NewServer(gatewaytest.Options{HeartbeatInterval: time.Second})
	defer srv.Close()
	dir, err := os.MkdirTemp("", "qqgate-demo-")
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	defer os.RemoveAll(dir)
	echoURL, stopEcho, err := startEcho()
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	defer stopEcho()

	say := func(format string, args ...any) { fmt.Fprintf(e.stderr, "demo: "+format+"\n", args...) }
	r, err := runner.New(runner.Options{
		Config: &runner.Config{SessionDir: dir, Accounts: []runner.Account{{
			ID: "demo", AppID: gatewaytest.DefaultAppID, Secret: gatewaytest.DefaultSecret, SecretFrom: "secret",
			APIBase: srv.URL(), TokenURL: srv.TokenURL(), Shard: [2]int{0, 1},
			Handler: handler.Spec{Type: handler.TypeHTTP, URL: echoURL, Reply: handler.ReplyText},
		}}},
		Stdout: e.stdout,
		Logger: log,
		Getenv: func(string) string { return "" },
		Client: func(c *client.Config) {
			c.Backoff = client.BackoffConfig{Initial: 200 * time.Millisecond, Max: time.Second}
		},
	})
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()

	wait := func(what string, cond func() bool) error {
		if err := srv.Wait(ctx, cond); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		return nil
	}
	var sess *gatewaytest.Session
	n := 0
	// chat has the fake user write text in a private chat and returns the
	// chat's target, to read what the user sees.
	chat := func(user, text string) (gatewaytest.SendTarget, error) {
		n++
		_, err := sess.Emit(wire.EventC2CMessageCreate, wire.Message{
			ID: fmt.Sprintf("ROBOT1.0_demo.%d", n), Content: text, Timestamp: time.Now().Format(time.RFC3339),
			Author: wire.Author{ID: user, UserOpenID: user}, MessageScene: &wire.MessageScene{Source: "default"},
		})
		return gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: user}, err
	}
	// saw prints what the user of target saw, once it holds n messages.
	saw := func(target gatewaytest.SendTarget, n int) error {
		if err := wait("the bot's answer", func() bool { return len(srv.Delivered(target)) >= n }); err != nil {
			return err
		}
		d := srv.Delivered(target)[n-1]
		fmt.Fprintf(e.stdout, "the user saw: %q (msg_id %s, msg_seq %d)\n", d.Content, d.MsgID, d.MsgSeq)
		return nil
	}
	script := func() error {
		say("fake platform on %s; the runner connects app %s with an http handler that echoes, reply: text", srv.URL(), gatewaytest.DefaultAppID)
		if sess, err = srv.WaitSession(ctx); err != nil {
			return fmt.Errorf("waiting for the bot to connect: %w", err)
		}
		alice := "C0000000000000000000000000A11CE"
		for _, text := range []string{"hello, bot", "what is 6 x 7?"} {
			fmt.Fprintf(e.stdout, "the user wrote: %q\n", text)
			target, err := chat(alice, text)
			if err != nil {
				return err
			}
			if err := saw(target, len(srv.Delivered(target))+1); err != nil {
				return err
			}
		}
		say("dropping the connection without a close frame; the user writes while the bot is away")
		sess.Drop()
		text := "are you still there?"
		fmt.Fprintf(e.stdout, "the user wrote: %q (the bot is disconnected)\n", text)
		before := len(srv.Delivered(gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: alice}))
		target, err := chat(alice, text)
		if err != nil {
			return err
		}
		if err := saw(target, before+1); err != nil {
			return err
		}
		say("the bot resumed session %s; the message it missed was replayed and answered", sess.ID())
		return nil
	}
	scriptErr := script()
	stopRun()
	err = <-runErr
	if scriptErr != nil {
		return e.errorf("demo: %v", scriptErr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return e.errorf("demo: %v", err)
	}
	var st client.Status
	for _, a := range r.Snapshot() {
		st = a.Status
	}
	sent := srv.Sent()
	store, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir, Logger: log})
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	defer store.Close()
	rec, lerr := store.Load(context.Background(), "demo", gatewaytest.DefaultAppID)
	if lerr != nil {
		return e.errorf("demo: the session record was not kept: %v", lerr)
	}
	say("stopped gracefully: %d events handled, %d resume(s), %d reply requests, %d messages the user saw; record %s holds session %s at seq %d (a restart within 5 minutes resumes it)",
		st.Handled, st.Resumes, len(sent), srv.DeliveredCount(), sessionstore.FileName("demo"), rec.SessionID, rec.LastSeq)
	return 0
}

// startEcho serves the demo's handler on loopback: a message event is
// answered with "echo: " and its text (text/plain, which `reply: text`
// sends back as one message), anything else with 204, no reply.
func startEcho() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"` // "" for RESUMED
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		var msg struct {
			Content string `json:"content"`
		}
		if !strings.HasSuffix(ev.Type, "MESSAGE_CREATE") || json.Unmarshal(ev.Data, &msg) != nil || msg.Content == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "echo: "+msg.Content)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/events", func() { _ = hs.Close(); <-done }, nil
}
