package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/intents"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/runner"
	"github.com/qqgate/qqgate/sessionstore"
)

// runOptions are the flags of `qqgate run`, each with an environment
// fallback.
type runOptions struct {
	config                    string
	appID, secret, secretFile string
	apiBase, tokenURL         string
	account, sessionDir       string
	intents, logLevel         string
	logFormat                 string
	listen                    string
	exitOnFatal               bool
	shutdownTimeout           time.Duration
	webhook                   webhookFlags
}

func (o *runOptions) register(fs *flag.FlagSet, e *env) {
	def := func(name, fallback string) string {
		if v := e.getenv(name); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&o.config, "config", def("QQGATE_CONFIG", ""), "YAML file of accounts, reloaded on change and SIGHUP (env QQGATE_CONFIG)")
	fs.StringVar(&o.appID, "app-id", def("QQBOT_APP_ID", ""), "bot app id (env QQBOT_APP_ID)")
	fs.StringVar(&o.secret, "secret", def("QQBOT_CLIENT_SECRET", ""), "client secret (env QQBOT_CLIENT_SECRET); prefer --secret-file")
	fs.StringVar(&o.secretFile, "secret-file", "", "file holding the client secret")
	fs.StringVar(&o.apiBase, "api-base", def("QQBOT_API_BASE", client.DefaultAPIBase), "OpenAPI base URL (env QQBOT_API_BASE)")
	fs.StringVar(&o.tokenURL, "token-url", def("QQBOT_TOKEN_URL", client.DefaultTokenURL), "access token URL (env QQBOT_TOKEN_URL)")
	fs.StringVar(&o.account, "account", def("QQBOT_ACCOUNT", ""), "account id naming the session record (env QQBOT_ACCOUNT; default the app id)")
	fs.StringVar(&o.sessionDir, "session-dir", def("QQBOT_SESSION_DIR", ""), "session record directory (env QQBOT_SESSION_DIR; default "+sessionstore.DefaultDir()+")")
	fs.StringVar(&o.intents, "intents", def("QQBOT_INTENTS", ""), "intents: names separated by commas, or a number (env QQBOT_INTENTS; default the four levels, full with interaction first)")
	fs.StringVar(&o.logLevel, "log-level", def("QQBOT_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", def("QQGATE_LOG_FORMAT", logAuto), logFormatUsage)
	fs.StringVar(&o.listen, "listen", def("QQGATE_LISTEN", ""), "serve /healthz, /status and /metrics on this address (env QQGATE_LISTEN)")
	fs.BoolVar(&o.exitOnFatal, "exit-on-fatal", false, "exit at the first account's fatal error (default: when no account is left running)")
	o.webhook.register(fs, def)
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", client.DefaultShutdownTimeout, "bound on each account's graceful shutdown: a handler still busy then is cancelled, or abandoned with its event uncommitted")
}

// Log formats: the values of --log-format and QQGATE_LOG_FORMAT.
const (
	logAuto    = "auto"    // console on a terminal, JSON otherwise
	logConsole = "console" // one human-readable line per entry
	logJSON    = "json"    // one JSON object per line
)

// logFormatUsage is the help text of --log-format.
const logFormatUsage = "log format: auto (human-readable on a terminal, JSON otherwise), console or json (env QQGATE_LOG_FORMAT)"

// newLogger writes to w at level, in format: logAuto (or empty) is the
// console writer when w is a terminal and JSON otherwise (a pipe, a file,
// a journal), so a person reads it and a program parses it.
func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("unknown log level %q (use debug, info, warn or error)", level)
	}
	tty := isTerminal(w)
	switch strings.ToLower(format) {
	case "", logAuto:
		if tty {
			w = zerolog.ConsoleWriter{Out: w}
		}
	case logConsole:
		w = zerolog.ConsoleWriter{Out: w, NoColor: !tty}
	case logJSON:
	default:
		return zerolog.Nop(), fmt.Errorf("unknown log format %q (use auto, console or json)", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// exitConfig is the exit status of a configuration the process cannot run
// with, such as an unusable session directory: EX_CONFIG from sysexits.h.
// A restart cannot fix it, so the systemd unit does not restart on it
// (RestartPreventExitStatus).
const exitConfig = 78

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
	log, err := newLogger(e.stderr, o.logLevel, o.logFormat)
	if err != nil {
		return e.errorf("run: %v", err)
	}
	// Before any secret is read or handler started: handlers run as the
	// same user and must not read the secrets out of this process.
	if err := hideProcess(); err != nil {
		log.Warn().Err(err).Msg("cannot make the process non-dumpable; exec handlers may read its environment")
	}
	ropts := runner.Options{
		Listen:          o.listen,
		Stdout:          e.stdout,
		Logger:          log,
		Getenv:          e.getenv,
		ExitOnFatal:     o.exitOnFatal,
		ShutdownTimeout: o.shutdownTimeout,
		Webhook:         o.webhook.listener(),
	}
	if o.config != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, name := range []string{"app-id", "secret", "secret-file", "account", "intents", "session-dir", "transport"} {
			if set[name] {
				return e.errorf("run: --%s and --config do not mix: put the account in the config file", name)
			}
		}
		ropts.ConfigPath = o.config
	} else {
		cfg, err := o.single()
		if err != nil {
			return e.errorf("run: %v", err)
		}
		ropts.Config = cfg
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	ropts.Reload = reload
	fwdCtx, stopFwd := context.WithCancel(ctx)
	fwdDone := make(chan struct{})
	go func() { // owned: ends with fwdCtx, waited for below
		defer close(fwdDone)
		for {
			select {
			case <-fwdCtx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	defer func() { stopFwd(); <-fwdDone }()

	r, err := runner.New(ropts)
	if err != nil {
		var de *sessionstore.DirError
		if errors.As(err, &de) {
			fix := "set --session-dir or QQBOT_SESSION_DIR to a directory this user owns or may create"
			if o.config != "" {
				fix = "set session_dir in " + o.config + " (or QQBOT_SESSION_DIR, when the file has none) to a directory this user owns or may create"
			}
			e.errorf("run: %s; %s", strings.TrimPrefix(de.Error(), "sessionstore: "), fix)
			return exitConfig
		}
		return e.errorf("run: %v", err)
	}
	if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return e.errorf("%v", err)
	}
	return 0
}

// single turns the one-account flags into a runner config.
func (o *runOptions) single() (*runner.Config, error) {
	a := runner.Account{ID: o.account, AppID: strings.TrimSpace(o.appID), APIBase: o.apiBase, TokenURL: o.tokenURL,
		Shard: [2]int{0, 1}, Handler: handler.Spec{Type: handler.TypeStdout}}
	if a.AppID == "" {
		return nil, errors.New("no app id: set --app-id or QQBOT_APP_ID (or use --config)")
	}
	if a.ID == "" {
		a.ID = a.AppID
	}
	a.Secret, a.SecretFrom = o.secret, "secret"
	if o.secretFile != "" {
		secret, err := runner.ReadSecretFile(o.secretFile)
		if err != nil {
			return nil, fmt.Errorf("read secret file: %w", err)
		}
		a.Secret, a.SecretFrom = secret, "file "+o.secretFile
	}
	if a.Secret == "" {
		return nil, errors.New("no client secret: set --secret-file, --secret or QQBOT_CLIENT_SECRET")
	}
	if o.intents != "" {
		set, err := intents.Parse(o.intents)
		if err != nil {
			return nil, fmt.Errorf("--intents: %w", err)
		}
		a.Intents = set
	}
	// Validate the endpoints now, for one clear line before anything starts.
	if err := (client.Config{AppID: a.AppID, ClientSecret: a.Secret, APIBase: a.APIBase, TokenURL: a.TokenURL}).Validate(); err != nil {
		return nil, err
	}
	switch o.webhook.transport {
	case "", runner.TransportWebsocket:
	case runner.TransportWebhook:
		a.Transport = runner.TransportWebhook
	default:
		return nil, fmt.Errorf("--transport %q: use websocket or webhook", o.webhook.transport)
	}
	return &runner.Config{SessionDir: o.sessionDir, Accounts: []runner.Account{a}}, nil
}
