package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// cmdDemo is `qqgate demo`: the runner against an embedded fake gateway.
// It shows events arriving, a dropped connection and the resume that
// replays what was missed, then exits 0. No account, no network.
func cmdDemo(ctx context.Context, args []string, e *env) int {
	fs := flag.NewFlagSet("qqgate demo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	defFormat := logAuto
	if v := e.getenv("QQGATE_LOG_FORMAT"); v != "" {
		defFormat = v
	}
	logFormat := fs.String("log-format", defFormat, logFormatUsage)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
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

	srv := gatewaytest.NewServer(gatewaytest.Options{HeartbeatInterval: time.Second})
	defer srv.Close()
	dir, err := os.MkdirTemp("", "qqgate-demo-")
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	defer os.RemoveAll(dir)
	store, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir, Logger: log})
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	defer store.Close()

	say := func(format string, args ...any) { fmt.Fprintf(e.stderr, "demo: "+format+"\n", args...) }
	seen := make(chan client.Event, 64)
	lines := handler.NewStdout(e.stdout) // the stdout handler of `qqgate run`
	c, err := client.New(client.Config{
		AppID:        gatewaytest.DefaultAppID,
		ClientSecret: gatewaytest.DefaultSecret,
		AccountID:    "demo",
		APIBase:      srv.URL(),
		TokenURL:     srv.TokenURL(),
		Store:        store,
		Logger:       log,
		Backoff:      client.BackoffConfig{Initial: 200 * time.Millisecond, Max: time.Second},
		Handler: client.HandlerFunc(func(ctx context.Context, ev client.Event) error {
			err := lines.HandleEvent(ctx, ev)
			seen <- ev
			return err
		}),
	})
	if err != nil {
		return e.errorf("demo: %v", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()

	waitFor := func(typ string, n int) error {
		for n > 0 {
			select {
			case ev := <-seen:
				if ev.Type == typ {
					n--
				}
			case err := <-runErr:
				runErr <- err
				return fmt.Errorf("client stopped: %v", err)
			case <-ctx.Done():
				return fmt.Errorf("timed out waiting for %s", typ)
			}
		}
		return nil
	}
	script := func() error {
		say("fake gateway listening on %s; the bot connects with app id %s", srv.URL(), gatewaytest.DefaultAppID)
		if err := waitFor(wire.EventReady, 1); err != nil {
			return err
		}
		sess := srv.Session(gatewaytest.DefaultAppID)
		say("READY: session %s; the gateway now sends three messages", sess.ID())
		for _, typ := range []string{wire.EventC2CMessageCreate, wire.EventGroupAtMessageCreate, wire.EventAtMessageCreate} {
			if _, err := sess.EmitMessage(typ); err != nil {
				return err
			}
		}
		if err := waitFor(wire.EventAtMessageCreate, 1); err != nil {
			return err
		}
		say("dropping the TCP connection without a close frame; two messages are sent while the bot is away")
		sess.Drop()
		for _, typ := range []string{wire.EventC2CMessageCreate, wire.EventInteractionCreate} {
			if _, err := sess.EmitMessage(typ); err != nil {
				return err
			}
		}
		if err := waitFor(wire.EventResumed, 1); err != nil {
			return err
		}
		st := c.Status()
		say("RESUMED session %s: %d missed events replayed, nothing lost, nothing twice", st.SessionID, st.Replayed)
		if _, err := sess.EmitMessage(wire.EventFriendAdd); err != nil {
			return err
		}
		return waitFor(wire.EventFriendAdd, 1)
	}
	scriptErr := script()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	closeErr := c.Close(cctx)
	err = <-runErr
	if scriptErr != nil {
		return e.errorf("demo: %v", scriptErr)
	}
	if closeErr != nil {
		return e.errorf("demo: close: %v", closeErr)
	}
	if err != nil && !errors.Is(err, client.ErrClosed) {
		return e.errorf("demo: %v", err)
	}
	st := c.Status()
	rec, lerr := store.Load(context.Background(), "demo", gatewaytest.DefaultAppID)
	if lerr != nil {
		return e.errorf("demo: the session record was not kept: %v", lerr)
	}
	say("stopped gracefully: %d events handled, %d resume(s), record %s holds session %s at seq %d (a restart within 5 minutes resumes it)",
		st.Handled, st.Resumes, sessionstore.FileName("demo"), rec.SessionID, rec.LastSeq)
	return 0
}
