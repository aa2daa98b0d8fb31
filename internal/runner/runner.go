// Package runner is the multi-account bot runner behind `qqgate run`: it
// runs one client per configured account, isolated from the others (its
// own token cache, connection, record, lock and backoff), hot-reloads the
// configuration file, and exposes the accounts' state for health and
// metrics.
//
// Each account also has an OpenAPI client on the same token source as its
// gateway connection (one token cycle per account). Handlers with `reply:`
// on send their output back where each event came from through it, before
// the event is committed (package reply), and the ops server's local send
// API lets other programs send as the account (package sendapi).
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/cluster"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/internal/reply"
	"github.com/qqgate/qqgate/internal/sendapi"
	"github.com/qqgate/qqgate/openapi"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/webhook"
)

// Options configure a Runner.
type Options struct {
	// ConfigPath is the YAML configuration; it is watched and reloaded,
	// through any symlinks on its path (see watchFile).
	// When empty, Config is used as it is and never reloaded.
	ConfigPath string
	// Config is the configuration when ConfigPath is empty (the one-account
	// flags of `qqgate run`).
	Config *Config
	// Listen overrides the file's listen address when set.
	Listen string
	// Stdout receives the JSON lines of stdout handlers.
	Stdout io.Writer
	// Logger receives the runner's logs.
	Logger zerolog.Logger
	// Getenv resolves secret_env and, when the configuration has no
	// session_dir, the default session directory (QQBOT_SESSION_DIR, else
	// $HOME/.openclaw/qqbot/sessions); zero means os.Getenv.
	Getenv Env
	// ExitOnFatal ends Run at the first account's fatal error; otherwise
	// Run ends only when no account is left running.
	ExitOnFatal bool
	// Reload delivers reload requests (SIGHUP).
	Reload <-chan struct{}
	// ReloadDebounce is the quiet time after a file change before it is
	// read. Zero means 200ms.
	ReloadDebounce time.Duration
	// ShutdownTimeout bounds each account's graceful shutdown (the handler
	// finishing the event in hand, the final write, the close). Zero means
	// the client's default.
	ShutdownTimeout time.Duration
	// Client, when set, may adjust every account's client config (tests).
	Client func(*client.Config)
	// OpenAPI, when set, may adjust every account's OpenAPI client config
	// (tests).
	OpenAPI func(*openapi.Config)
	// HandlerBackoff tunes the waits between a handler's retries; the zero
	// value means the handler package's defaults.
	HandlerBackoff handler.Backoff
	// Webhook overrides the file's webhook block, field by field where
	// set (the --webhook-* flags).
	Webhook WebhookListener
}

// Runner runs the configured accounts. Create it with New; call Run once.
type Runner struct {
	opts    Options
	log     zerolog.Logger
	stdout  *handler.Stdout
	limiter *client.IdentifyLimiter

	mu            sync.Mutex
	cfg           *Config
	store         runnerStore
	node          *cluster.Node       // nil outside a cluster
	runCtx        context.Context     // Run's context, for accounts the cluster starts
	runWG         *sync.WaitGroup     // Run's goroutines
	accounts      map[string]*account // by id; guarded by mu
	order         []string            // ids in file order; guarded by mu
	exited        chan string         // an account goroutine ended
	addr          atomic.Value        // net.Addr of the ops server, once listening
	reloads       atomic.Uint64
	reloadErrors  atomic.Uint64
	lastReloadErr atomic.Value    // string
	loaded        atomic.Value    // configKey of what the last load of the file read
	sendToken     atomic.Value    // string: the send API's token, "" when off
	sendServed    atomic.Bool     // the listen address allows the send API
	hooks         *webhook.Server // the webhook accounts, by app id
	sessionDir    string          // where the webhook inboxes live
	webhookAddr   atomic.Value    // net.Addr of the webhook listener, once listening

	// apiTransport carries every account's OpenAPI requests: one pool of
	// connections to the API for the runner (the accounts call the same
	// host), not one per account; its idle ones close when Run returns.
	apiTransport *http.Transport

	hideMu sync.Mutex
	hidden map[string]bool // secret variables exec handlers do not pass on; guarded by hideMu
}

// runnerStore is the session store of the accounts: the files, or etcd in
// a cluster.
type runnerStore interface {
	sessionstore.Store
	// Path names where the account's record is (a file, an etcd key).
	Path(accountID string) string
	// Stats counts the account's record writes.
	Stats(accountID string) sessionstore.WriteStats
}

// account is one running (or stopped) account.
type account struct {
	cfg    Account
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	c       *client.Client
	running bool
	fatal   error

	sender *reply.Sender // once started; guarded by mu
	bot    *webhook.Bot  // a webhook account's, once started; guarded by mu

	counts   ops.EventCounts // per type, bounded: the gateway names the types
	failures atomic.Uint64
	latency  ops.Latency
	sends    ops.SendCounter
}

// New loads the configuration (or takes Options.Config) and prepares the
// runner: it creates and checks the session directory (see
// [sessionstore.FileStore.Prepare]), so that a directory that cannot be
// used fails here with a [*sessionstore.DirError] naming it, rather than
// stopping every account later. It starts no account.
func New(opts Options) (*Runner, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.ReloadDebounce == 0 {
		opts.ReloadDebounce = 200 * time.Millisecond
	}
	r := &Runner{
		opts:     opts,
		log:      opts.Logger,
		stdout:   handler.NewStdout(opts.Stdout),
		limiter:  client.NewIdentifyLimiter(),
		accounts: map[string]*account{},
		exited:   make(chan string, 16),
		hooks:    webhook.NewServer(),

		apiTransport: http.DefaultTransport.(*http.Transport).Clone(),
	}
	cfg := opts.Config
	if opts.ConfigPath != "" {
		var err error
		var key configKey
		if cfg, key, err = loadConfigKeyed(opts.ConfigPath, opts.Getenv); err != nil {
			return nil, err
		}
		r.loaded.Store(key)
	}
	if cfg == nil || len(cfg.Accounts) == 0 {
		return nil, errors.New("runner: no account configured")
	}
	if err := r.checkWebhook(cfg); err != nil {
		return nil, err
	}
	r.sessionDir = SessionDir(cfg, opts.Getenv)
	if cfg.Cluster != nil {
		cc := *cfg.Cluster
		if cc.Name == "" {
			// The file is shared by the runners; each may be named by
			// its environment.
			cc.Name = opts.Getenv("QQGATE_CLUSTER_NAME")
		}
		node, err := cluster.NewNode(cc, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		r.cfg, r.node, r.store = cfg, node, cluster.NewStore(node, opts.Logger)
		// The runners share each app's IDENTIFY budget through etcd.
		r.limiter.Share(node.IdentifyBudget())
		r.sendToken.Store(sendToken(cfg, opts.Getenv))
		return r, nil
	}
	store, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: SessionDir(cfg, opts.Getenv), Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	if err := store.Prepare(); err != nil {
		return nil, err
	}
	r.cfg, r.store = cfg, store
	r.sendToken.Store(sendToken(cfg, opts.Getenv))
	return r, nil
}

// sendToken is the local send API's token: send_api.token_file's, else
// QQGATE_SEND_TOKEN, else "" (off).
func sendToken(cfg *Config, getenv Env) string {
	if cfg.SendAPI.Token != "" {
		return cfg.SendAPI.Token
	}
	return strings.TrimSpace(getenv("QQGATE_SEND_TOKEN"))
}

// servedSendToken is the token the send API checks, "" when it is off.
func (r *Runner) servedSendToken() string {
	if !r.sendServed.Load() {
		return ""
	}
	t, _ := r.sendToken.Load().(string)
	return t
}

// mountSendAPI adds the local send API to the ops server on ln. It is
// served only on a loopback address unless send_api.allow_remote: it
// carries a bearer token in the clear.
func (r *Runner) mountSendAPI(srv *ops.Server, ln net.Listener) {
	tcp, _ := ln.Addr().(*net.TCPAddr)
	loopback := tcp != nil && tcp.IP.IsLoopback()
	r.sendServed.Store(loopback || r.cfg.SendAPI.AllowRemote)
	token, _ := r.sendToken.Load().(string)
	switch {
	case token == "":
		r.log.Debug().Msg("send API off: no send_api.token_file and no QQGATE_SEND_TOKEN")
	case !r.sendServed.Load():
		r.log.Warn().Str("listen", ln.Addr().String()).
			Msg("send API off: the listen address is not loopback; set send_api.allow_remote: true (and put TLS in front) to serve it there")
	default:
		r.log.Info().Str("listen", ln.Addr().String()).Str("path", "/v1/accounts/{account}/messages").Msg("send API on")
	}
	srv.Handle(sendapi.Pattern, sendapi.Handler(sendapi.Config{Token: r.servedSendToken, Sender: r.Sender, Log: r.log}))
}

// SessionDir is the session directory of cfg: its session_dir, else the
// environment's QQBOT_SESSION_DIR, else $HOME/.openclaw/qqbot/sessions
// (/tmp/.openclaw/qqbot/sessions when HOME is unset), the same default as
// the one-account flags and `qqgate session`. getenv nil means os.Getenv.
func SessionDir(cfg *Config, getenv Env) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg != nil && cfg.SessionDir != "" {
		return cfg.SessionDir
	}
	if dir := getenv("QQBOT_SESSION_DIR"); dir != "" {
		return dir
	}
	return sessionstore.DirForHome(getenv("HOME"))
}

// ErrAllStopped is wrapped by Run's error when every account stopped with
// a fatal error.
var ErrAllStopped = errors.New("no account left running")

// Run starts every account and the health server, reloads on file changes
// and Options.Reload, and returns when ctx ends (nil, after every account
// shut down gracefully, in parallel) or when no account is left running
// (an error naming the causes).
func (r *Runner) Run(ctx context.Context) error {
	defer r.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// On every return: stop the accounts (in parallel, gracefully), then
	// end ctx so that the ops server, the file watcher and any account
	// goroutine still reporting its exit return, then wait for them all.
	// ctx must end before wg.Wait: Run may return (a fatal error, the ops
	// server failing) while its parent context is still live.
	defer func() {
		r.stopAll()
		cancel()
		wg.Wait()
		r.apiTransport.CloseIdleConnections()
	}()

	listen := r.opts.Listen
	if listen == "" {
		listen = r.cfg.Listen
	}
	srvErr := make(chan error, 1)
	if listen != "" {
		// Listen here, not in the server goroutine, so that a bad address
		// fails Run at once and Addr reports the port of ":0".
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", listen)
		if err != nil {
			return fmt.Errorf("health server on %s: %w", listen, err)
		}
		r.addr.Store(ln.Addr())
		srv := ops.NewServer(r.Snapshot, r.log)
		if r.node != nil {
			srv.SetCluster(r.clusterHealth)
		}
		r.mountSendAPI(srv, ln)
		r.registerWebhookMetrics(srv.Registry())
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvErr <- srv.ServeListener(ctx, ln)
		}()
	}
	fileEvents := make(chan struct{}, 1)
	if r.opts.ConfigPath != "" {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return fmt.Errorf("watch config: %w", err)
		}
		// The file's own directory, resolved (event names are then
		// resolved paths, see configPaths); watchFile adds the others.
		base := filepath.Dir(r.opts.ConfigPath)
		if abs, err := filepath.Abs(base); err == nil {
			base = abs
		}
		if real, err := filepath.EvalSymlinks(base); err == nil {
			base = real
		}
		if err := w.Add(base); err != nil {
			w.Close()
			return fmt.Errorf("watch config: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			r.watchFile(ctx, w, base, fileEvents)
		}()
	}

	r.mu.Lock()
	r.runCtx, r.runWG = ctx, &wg
	if r.node != nil {
		// The cluster decides which accounts run here.
		r.node.SetHooks(cluster.Hooks{Start: r.clusterStart, Stop: r.clusterStop})
		r.node.SetAccounts(accountIDs(r.cfg))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = r.node.Run(ctx)
		}()
	} else {
		for _, a := range r.cfg.Accounts {
			r.startLocked(ctx, &wg, a)
		}
	}
	r.mu.Unlock()
	// After the accounts: their app ids are reserved (503 until they
	// serve, never 404).
	if err := r.startWebhook(ctx, &wg, srvErr); err != nil {
		return err
	}
	r.log.Info().Int("accounts", len(r.cfg.Accounts)).Str("listen", listen).Msg("runner started")

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-srvErr:
			if err != nil {
				return fmt.Errorf("health server on %s or webhook listener: %w", listen, err)
			}
		case <-r.opts.Reload:
			r.reload(ctx, &wg, "SIGHUP")
		case <-fileEvents:
			r.reload(ctx, &wg, reasonFileChanged)
		case id := <-r.exited:
			if err := r.afterExit(id); err != nil {
				return err
			}
		}
	}
}

// afterExit decides whether one account's end ends the runner.
func (r *Runner) afterExit(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.accounts[id]
	if a == nil {
		return nil
	}
	a.mu.Lock()
	fatal := a.fatal
	a.mu.Unlock()
	if fatal == nil {
		return nil
	}
	r.log.Error().Str("account", id).Err(fatal).Msg("account stopped")
	if r.node != nil {
		// In a cluster the runner stays up for the accounts it may own
		// later; the failed account keeps its owner until a reload.
		return nil
	}
	if r.opts.ExitOnFatal {
		return fmt.Errorf("account %s: %w", id, fatal)
	}
	var causes []error
	for _, oid := range r.order {
		o := r.accounts[oid]
		o.mu.Lock()
		running, ofatal := o.running, o.fatal
		o.mu.Unlock()
		if running {
			return nil
		}
		if ofatal != nil {
			causes = append(causes, fmt.Errorf("account %s: %w", oid, ofatal))
		}
	}
	return fmt.Errorf("%w: %w", ErrAllStopped, errors.Join(causes...))
}

// startLocked starts one account's goroutine. r.mu is held.
func (r *Runner) startLocked(ctx context.Context, wg *sync.WaitGroup, cfg Account) {
	actx, cancel := context.WithCancel(ctx)
	r.noteSecretEnvsLocked(cfg)
	a := &account{cfg: cfg, cancel: cancel, done: make(chan struct{}), running: true}
	r.accounts[cfg.ID] = a
	r.order = r.orderWith(cfg.ID)
	release := r.reserveWebhook(cfg)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := r.runAccount(actx, a)
		release()
		a.mu.Lock()
		a.running = false
		if err != nil && actx.Err() == nil {
			a.fatal = err
		}
		a.mu.Unlock()
		// done before the report: reload and stopAll wait for done on the
		// goroutine that drains exited, so reporting first could block
		// them forever once exited's buffer is full.
		close(a.done)
		select {
		case r.exited <- cfg.ID:
		case <-ctx.Done():
		}
	}()
}

func (r *Runner) orderWith(id string) []string {
	for _, x := range r.order {
		if x == id {
			return r.order
		}
	}
	return append(r.order, id)
}

// runAccount runs one account until ctx ends or a fatal error.
//
// Its goroutine is the account's, which the client makes the reader of
// its connection, parked there for as long as the account runs: the frame
// of every function on the way there stays on its stack. So the account
// is set up in openAccount, whose locals are gone once it returns, and the
// record watch has no goroutine of its own (see watchRecord).
func (r *Runner) runAccount(ctx context.Context, a *account) error {
	if a.cfg.IsWebhook() {
		return r.runWebhookAccount(ctx, a)
	}
	c, stop, err := r.openAccount(a)
	if err != nil {
		return err
	}
	defer stop()
	err = c.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// openAccount takes the account's lock, builds its client and sender and
// starts the record watch; stop undoes it all once the client returned.
// (The work is here, not in runAccount, so that none of its frame stays
// on the account goroutine's stack while the client runs.)
func (r *Runner) openAccount(a *account) (c *client.Client, stop func(), err error) {
	lock, err := r.store.Lock(a.cfg.ID)
	if err != nil {
		return nil, nil, err
	}
	c, sender, err := r.newClient(a)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	a.mu.Lock()
	a.c, a.sender = c, sender
	a.mu.Unlock()
	stopWatch := r.watchRecord(a.cfg.ID)
	return c, func() {
		if stopWatch != nil {
			stopWatch()
		}
		a.mu.Lock()
		a.sender = nil // the send API answers 404 for a stopped account
		a.mu.Unlock()
		lock.Unlock()
	}, nil
}

// newClient builds the account's gateway client, its handler and its
// OpenAPI sender (one token source for both).
func (r *Runner) newClient(a *account) (c *client.Client, sender *reply.Sender, err error) {
	id := a.cfg.ID
	cfg := client.Config{
		AppID:              a.cfg.AppID,
		ClientSecret:       a.cfg.Secret,
		AccountID:          id,
		APIBase:            a.cfg.APIBase,
		TokenURL:           a.cfg.TokenURL,
		Intents:            a.cfg.Intents,
		HandlerConcurrency: a.cfg.Handler.Concurrency,
		ShutdownTimeout:    r.opts.ShutdownTimeout,
		IntentLevels:       a.cfg.IntentLevels,
		Shard:              a.cfg.Shard,
		Store:              r.store,
		Logger:             r.log, // the client names the account itself
		IdentifyLimiter:    r.limiter,
		OnReceive: func(ev event.Event) {
			a.counts.Received(ev.Type)
		},
		// The runner's logger, naming the account on each line: a logger
		// of its own per account (zerolog's With) would keep a context
		// buffer of its own per account.
		OnStateChange: func(s client.Status) {
			r.log.Info().Str("account", id).Stringer("state", s.State).Str("session", s.SessionID).Uint64("seq", s.LastSeqReceived).
				Int("close_code", int(s.LastCloseCode)).Dur("next_delay", s.NextRetry).Msg("state changed")
		},
	}
	if r.opts.Client != nil {
		r.opts.Client(&cfg)
	}
	// One token cycle per account: the gateway connection and the OpenAPI
	// share this source.
	if cfg.TokenSource == nil {
		cfg.TokenSource = client.NewAppTokenSource(cfg.AppID, cfg.ClientSecret, cfg.TokenURL, cfg.HTTPClient)
	}
	if r.node != nil {
		// No connection unless this runner owns the account (a runner
		// waking after its lease expired must not reconnect), and the
		// other runners learn its state for their /status.
		cfg.TokenSource = r.node.GateTokens(a.cfg.ID, cfg.TokenSource)
		onState := cfg.OnStateChange
		cfg.OnStateChange = func(s client.Status) {
			if onState != nil {
				onState(s)
			}
			r.node.SetState(a.cfg.ID, s.State.String(), s.SessionID, s.LastSeqHandled)
		}
	}
	sender, err = r.newSender(a, cfg.TokenSource, r.log.With().Str("account", id).Logger())
	if err != nil {
		return nil, nil, err
	}
	h, err := handler.New(a.cfg.Handler, handler.Options{
		Stdout:   r.stdout,
		HideEnv:  r.hiddenEnv,
		Logger:   r.log, // the handler names the account itself
		Backoff:  r.opts.HandlerBackoff,
		Replier:  sender,
		OnResult: r.onResult(a),
	})
	if err != nil {
		return nil, nil, err
	}
	cfg.Handler = abandoning{h: h, log: r.log}
	c, err = client.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return c, sender, nil
}

// watchRecord warns when another process rewrites or removes the
// account's record: two tools fighting over one session. It returns the
// function that stops the watch, or nil when the watch could not start
// (logged; the account runs without it). The watch is a callback on the
// store's one directory watcher, not a goroutine per account.
//
// A store without WatchFunc (the cluster's etcd store, whose writes are
// fenced so that no other process writes an owned record) has no watch.
func (r *Runner) watchRecord(id string) (stop func()) {
	ws, ok := r.store.(interface {
		WatchFunc(accountID string, fn func(sessionstore.Change)) (func(), error)
	})
	if !ok {
		return nil
	}
	stop, err := ws.WatchFunc(id, func(ch sessionstore.Change) {
		ev := r.log.Warn().Str("account", id).Str("path", r.store.Path(id))
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
	if err != nil {
		r.log.Warn().Str("account", id).Err(err).Msg("cannot watch the session record for other writers")
		return nil
	}
	return stop
}

// onResult counts a handler's outcome for the account.
func (r *Runner) onResult(a *account) func(ev event.Event, attempts int, err error, took time.Duration) {
	return func(ev event.Event, attempts int, err error, took time.Duration) {
		a.latency.Observe(took)
		if err != nil {
			a.failures.Add(1)
			// Replies that a retry was to send, now given up (unless
			// the runner is stopping: the event then stays
			// uncommitted and its replies go out after the restart).
			var re *reply.Error
			if errors.As(err, &re) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				a.sends.GiveUp(string(re.Class), 1)
			}
			return
		}
		a.counts.Handled(ev.Type)
	}
}

// newSender makes the account's OpenAPI client, on the token source of
// its gateway connection and the runner's shared HTTP transport, with a
// client of its own that follows no redirect.
func (r *Runner) newSender(a *account, tokens client.TokenSource, log zerolog.Logger) (*reply.Sender, error) {
	ocfg := openapi.Config{
		AppID:   a.cfg.AppID,
		Tokens:  tokens,
		BaseURL: a.cfg.APIBase,
		HTTPClient: &http.Client{
			Transport:     r.apiTransport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Logger: log,
	}
	if r.opts.OpenAPI != nil {
		r.opts.OpenAPI(&ocfg)
	}
	api, err := openapi.New(ocfg)
	if err != nil {
		return nil, err
	}
	return reply.NewSender(api, a.cfg.ID, &a.sends, r.log), nil
}

// Sender returns the OpenAPI sender of a running account, or nil when
// there is no such account or it has not started.
func (r *Runner) Sender(id string) *reply.Sender {
	r.mu.Lock()
	a := r.accounts[id]
	r.mu.Unlock()
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sender
}

// noteSecretEnvsLocked adds the account's secret_env to the variables
// no exec handler passes on. The list only grows: a handler started
// before a reload must not pass on a variable a later config names.
func (r *Runner) noteSecretEnvsLocked(a Account) {
	r.hideMu.Lock()
	defer r.hideMu.Unlock()
	if r.hidden == nil {
		r.hidden = map[string]bool{"QQBOT_CLIENT_SECRET": true}
	}
	if name, ok := strings.CutPrefix(a.SecretFrom, "env "); ok {
		r.hidden[name] = true
	}
}

// hiddenEnv lists the variables that hold secrets (handler.Options.HideEnv).
func (r *Runner) hiddenEnv() []string {
	r.hideMu.Lock()
	defer r.hideMu.Unlock()
	out := make([]string, 0, len(r.hidden))
	for name := range r.hidden {
		out = append(out, name)
	}
	return out
}

// stopAll shuts every account down in parallel and waits.
func (r *Runner) stopAll() {
	r.mu.Lock()
	accs := make([]*account, 0, len(r.accounts))
	for _, a := range r.accounts {
		accs = append(accs, a)
	}
	r.mu.Unlock()
	for _, a := range accs {
		a.cancel()
	}
	for _, a := range accs {
		<-a.done
	}
}

// reasonFileChanged is the why of a reload the config watcher asked for.
const reasonFileChanged = "file changed"

// reload re-reads the file and applies the difference: accounts added,
// removed or changed are started, stopped or restarted; the others keep
// their connections. A broken file changes nothing. A watcher request for
// bytes already loaded is skipped; SIGHUP always reloads.

func (r *Runner) reload(ctx context.Context, wg *sync.WaitGroup, why string) {
	if r.opts.ConfigPath == "" {
		r.log.Info().Msg("reload requested, but there is no config file; nothing to do")
		return
	}
	cfg, key, err := loadConfigKeyed(r.opts.ConfigPath, r.opts.Getenv)
	prev, _ := r.loaded.Load().(configKey)
	r.loaded.Store(key)
	if why == reasonFileChanged && key == prev && key != (configKey{}) {
		// A second request for a change this loop has already loaded: the
		// watcher asked again before the first reload had run.
		return
	}
	if err != nil {
		// The error before the count: a reader that sees the count
		// (Reloads) sees this error with it, not the previous one.
		r.lastReloadErr.Store(err.Error())
		r.reloadErrors.Add(1)
		r.log.Error().Err(err).Str("why", why).Msg("config reload failed; the running accounts are kept as they are")
		return
	}
	r.lastReloadErr.Store("")
	r.reloads.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if cfg.SessionDir != r.cfg.SessionDir {
		r.log.Error().Str("from", r.cfg.SessionDir).Str("to", cfg.SessionDir).Msg("session_dir changed: it takes effect at the next restart")
		cfg.SessionDir = r.cfg.SessionDir
	}
	if cfg.Listen != r.cfg.Listen {
		r.log.Error().Str("from", r.cfg.Listen).Str("to", cfg.Listen).Msg("listen changed: it takes effect at the next restart")
		cfg.Listen = r.cfg.Listen
	}
	if cfg.Webhook != r.cfg.Webhook {
		r.log.Error().Str("from", r.cfg.Webhook.Listen).Str("to", cfg.Webhook.Listen).Msg("the webhook block changed: it takes effect at the next restart")
		cfg.Webhook = r.cfg.Webhook
	}
	if !reflect.DeepEqual(cfg.Cluster, r.cfg.Cluster) {
		r.log.Error().Msg("cluster changed: it takes effect at the next restart")
		cfg.Cluster = r.cfg.Cluster
	}
	if cfg.SendAPI.AllowRemote != r.cfg.SendAPI.AllowRemote {
		r.log.Error().Bool("from", r.cfg.SendAPI.AllowRemote).Bool("to", cfg.SendAPI.AllowRemote).Msg("send_api.allow_remote changed: it takes effect at the next restart")
		cfg.SendAPI.AllowRemote = r.cfg.SendAPI.AllowRemote
	}
	r.sendToken.Store(sendToken(cfg, r.opts.Getenv)) // a new token applies at once
	want := map[string]Account{}
	for _, a := range cfg.Accounts {
		want[a.ID] = a
	}
	var stopped, started, restarted, kept, fresh []string
	var ending []*account
	for id, a := range r.accounts {
		a.mu.Lock()
		failed := a.fatal != nil
		a.mu.Unlock()
		if w, ok := want[id]; !ok {
			stopped = append(stopped, id)
		} else if failed {
			// A reload is the operator's way to retry an account that
			// stopped on a fatal error (a ban lifted, a sandbox switch).
			restarted = append(restarted, id)
		} else if !w.Same(a.cfg) {
			restarted = append(restarted, id)
			if sessionChanged(a.cfg, w) {
				fresh = append(fresh, id)
			}
		} else {
			continue
		}
		a.cancel()
		ending = append(ending, a)
		delete(r.accounts, id)
	}
	// Stop them in parallel; a restarted account's new client must not
	// start before the old one released its lock. The wait (a graceful
	// shutdown each) runs without r.mu, so /healthz and /metrics answer
	// meanwhile; only Run's loop reloads, so nothing else changes the set.
	r.mu.Unlock()
	for _, a := range ending {
		<-a.done
	}
	r.mu.Lock()
	// A RESUME keeps the gateway session's intents and shard: an account
	// whose intents, levels or shard changed must IDENTIFY anew, so its
	// record (session and intent level) goes.
	for _, id := range fresh {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := r.store.Clear(cctx, id); err != nil {
			r.log.Error().Err(err).Str("account", id).Msg("clear the session record of an account whose intents or shard changed; it may resume its old session")
		}
		cancel()
	}
	r.cfg = cfg
	var order []string
	for _, a := range cfg.Accounts {
		order = append(order, a.ID)
		if _, running := r.accounts[a.ID]; running {
			kept = append(kept, a.ID)
			continue
		}
		if r.node != nil && !contains(restarted, a.ID) {
			continue // the cluster decides where a new account runs
		}
		if !contains(restarted, a.ID) {
			started = append(started, a.ID)
		}
		r.startLocked(ctx, wg, a)
	}
	r.order = order
	if r.node != nil {
		r.node.SetAccounts(order)
	}
	sort.Strings(stopped)
	sort.Strings(restarted)
	r.log.Info().Str("why", why).Strs("added", started).Strs("removed", stopped).Strs("restarted", restarted).
		Int("unchanged", len(kept)).Msg("config reloaded")
}

// sessionChanged reports whether b's gateway session cannot be a resume of
// a's: other intents, intent levels or shard.
func sessionChanged(a, b Account) bool {
	return a.Intents != b.Intents || a.Shard != b.Shard || !reflect.DeepEqual(a.IntentLevels, b.IntentLevels)
}

// Addr returns the address the ops server (/healthz, /status, /metrics)
// listens on, or nil when there is none or Run has not opened it yet.
func (r *Runner) Addr() net.Addr {
	a, _ := r.addr.Load().(net.Addr)
	return a
}

// ReloadStatus counts the configuration reloads.
type ReloadStatus struct {
	Applied   uint64 // reloads that read a valid file and applied it
	Failed    uint64 // reloads refused because the file was broken
	LastError string // the latest refusal, "" once a later reload succeeded
}

// Reloads returns the reload counters.
func (r *Runner) Reloads() ReloadStatus {
	// The counts before the error: reload stores an error before counting
	// it, so the error read here is at least as new as the counts.
	st := ReloadStatus{Applied: r.reloads.Load(), Failed: r.reloadErrors.Load()}
	st.LastError, _ = r.lastReloadErr.Load().(string)
	return st
}

// Snapshot returns every configured account's state, in file order. In a
// cluster it lists every account of the cluster: those this runner owns in
// full, the others with their owner and published state.
func (r *Runner) Snapshot() []ops.AccountState {
	if r.node != nil {
		return r.clusterSnapshot()
	}
	return r.localSnapshot()
}

// localSnapshot is the state of the accounts that run here.
func (r *Runner) localSnapshot() []ops.AccountState {
	r.mu.Lock()
	ids := append([]string(nil), r.order...)
	accs := make([]*account, 0, len(ids))
	for _, id := range ids {
		if a := r.accounts[id]; a != nil {
			accs = append(accs, a)
		}
	}
	r.mu.Unlock()
	out := make([]ops.AccountState, 0, len(accs))
	for _, a := range accs {
		a.mu.Lock()
		c, bot, running, fatal := a.c, a.bot, a.running, a.fatal
		a.mu.Unlock()
		st := ops.AccountState{ID: a.cfg.ID, AppID: a.cfg.AppID, Running: running}
		if fatal != nil {
			st.Fatal = fatal.Error()
		}
		if c != nil {
			st.Status = c.Status()
		}
		if bot != nil {
			webhookState(&st, bot, running)
		} else if a.cfg.IsWebhook() {
			st.Transport = TransportWebhook
		}
		st.ReceivedByType, st.HandledByType = a.counts.Snapshot()
		st.HandlerFailures = a.failures.Load()
		st.HandlerLatency = a.latency.Snapshot()
		ws := r.store.Stats(a.cfg.ID)
		st.StoreWrites, st.StoreErrors = ws.Writes, ws.Errors
		st.Sends = a.sends.Snapshot()
		out = append(out, st)
	}
	return out
}
