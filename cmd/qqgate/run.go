package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/intents"
	"github.com/qqgate/qqgate/sessionstore"
)

// runOptions are the flags of `qqgate run`, each with an environment
// fallback.
type runOptions struct {
	appID, secret, secretFile string
	apiBase, tokenURL         string
	account, sessionDir       string
	intents, logLevel         string
}

func (o *runOptions) register(fs *flag.FlagSet, e *env) {
	def := func(name, fallback string) string {
		if v := e.getenv(name); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&o.appID, "app-id", def("QQBOT_APP_ID", ""), "bot app id (env QQBOT_APP_ID)")
	fs.StringVar(&o.secret, "secret", def("QQBOT_CLIENT_SECRET", ""), "client secret (env QQBOT_CLIENT_SECRET); prefer --secret-file")
	fs.StringVar(&o.secretFile, "secret-file", "", "file holding the client secret")
	fs.StringVar(&o.apiBase, "api-base", def("QQBOT_API_BASE", client.DefaultAPIBase), "OpenAPI base URL (env QQBOT_API_BASE)")
	fs.StringVar(&o.tokenURL, "token-url", def("QQBOT_TOKEN_URL", client.DefaultTokenURL), "access token URL (env QQBOT_TOKEN_URL)")
	fs.StringVar(&o.account, "account", def("QQBOT_ACCOUNT", ""), "account id naming the session record (env QQBOT_ACCOUNT; default the app id)")
	fs.StringVar(&o.sessionDir, "session-dir", def("QQBOT_SESSION_DIR", ""), "session record directory (env QQBOT_SESSION_DIR; default "+sessionstore.DefaultDir()+")")
	fs.StringVar(&o.intents, "intents", def("QQBOT_INTENTS", ""), "intents: names separated by commas, or a number (env QQBOT_INTENTS; default public_guild_messages,direct_message,group_and_c2c_event)")
	fs.StringVar(&o.logLevel, "log-level", def("QQBOT_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
}

// newLogger writes to w: human-readable on a terminal, JSON otherwise.
func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("unknown log level %q (use debug, info, warn or error)", level)
	}
	if isTerminal(w) {
		w = zerolog.ConsoleWriter{Out: w}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// eventLine is one line of `qqgate run`'s stdout.
type eventLine struct {
	Account string          `json:"account"`
	Seq     uint64          `json:"seq"`
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
}

// lineWriter prints events as JSON lines. The write happens before the
// handler returns, so a committed seq is one that reached stdout.
type lineWriter struct {
	mu  sync.Mutex
	out io.Writer
	buf []byte
}

func (l *lineWriter) HandleEvent(_ context.Context, ev client.Event) error {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	b, err := json.Marshal(eventLine{Account: ev.AccountID, Seq: ev.Seq, Type: ev.Type, ID: ev.ID, Data: data})
	if err != nil {
		return fmt.Errorf("encode event line: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(append(l.buf[:0], b...), '\n')
	if _, err := l.out.Write(l.buf); err != nil {
		return fmt.Errorf("write event line: %w", err)
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, e *env) int {
	fs := flag.NewFlagSet("qqgate run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var o runOptions
	o.register(fs, e)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return e.errorf("run: unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(e.stderr, o.logLevel)
	if err != nil {
		return e.errorf("run: %v", err)
	}
	cfg, err := o.config(e)
	if err != nil {
		return e.errorf("run: %v", err)
	}
	cfg.Logger = log
	cfg.Handler = &lineWriter{out: e.stdout}
	return runAccount(ctx, cfg, o.sessionDir, e)
}

// config turns the options into a client config.
func (o *runOptions) config(e *env) (client.Config, error) {
	cfg := client.Config{AppID: o.appID, AccountID: o.account, APIBase: o.apiBase, TokenURL: o.tokenURL}
	if cfg.AppID == "" {
		return cfg, errors.New("no app id: set --app-id or QQBOT_APP_ID")
	}
	secret := o.secret
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return cfg, fmt.Errorf("read secret file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return cfg, errors.New("no client secret: set --secret-file, --secret or QQBOT_CLIENT_SECRET")
	}
	cfg.ClientSecret = secret
	if o.intents != "" {
		set, err := intents.Parse(o.intents)
		if err != nil {
			return cfg, fmt.Errorf("--intents: %w", err)
		}
		cfg.Intents = set
	}
	return cfg, nil
}

// runAccount runs one account with a file store and its lock until ctx
// ends (exit 0) or a fatal error (exit 1, one line on stderr).
func runAccount(ctx context.Context, cfg client.Config, dir string, e *env) int {
	if dir == "" {
		dir = sessionstore.DefaultDir()
	}
	account := cfg.AccountID
	if account == "" {
		account = cfg.AppID
	}
	store, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir, Logger: cfg.Logger})
	if err != nil {
		return e.errorf("run: session store: %v", err)
	}
	defer store.Close()
	lock, err := store.Lock(account)
	if err != nil {
		return e.errorf("run: account %s: %v", account, err)
	}
	defer lock.Unlock()
	cfg.Store = store

	c, err := client.New(cfg)
	if err != nil {
		return e.errorf("run: %v", err)
	}
	// Another process rewriting or removing this account's record means two
	// tools fight over one session: say so loudly.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = store.Watch(watchCtx, account, func(ch sessionstore.Change) {
			ev := cfg.Logger.Warn().Str("account", account).Str("path", store.Path(account))
			switch {
			case ch.Removed:
				ev.Msg("another process removed this account's session record")
			case ch.Err != nil:
				ev.Err(ch.Err).Msg("another process wrote an unreadable session record")
			default:
				ev.Str("session", ch.Record.SessionID).Uint64("seq", ch.Record.LastSeq).
					Msg("another process rewrote this account's session record; is a second runner or the openclaw plugin using it?")
			}
		})
	}()
	err = c.Run(ctx)
	stopWatch()
	wg.Wait()
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, client.ErrClosed):
		return 0
	}
	return e.errorf("account %s: %v", account, err)
}
