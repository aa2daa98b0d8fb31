package runner

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/webhook"
)

// webhookListener is the listener the runner serves: the file's webhook
// block with the non-empty fields of Options.Webhook over it.
func (r *Runner) webhookListener(cfg *Config) WebhookListener {
	w := cfg.Webhook
	o := r.opts.Webhook
	if o.Listen != "" {
		w.Listen = o.Listen
	}
	if o.Path != "" {
		w.Path = o.Path
	}
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		w.TLSCertFile, w.TLSKeyFile = o.TLSCertFile, o.TLSKeyFile
	}
	w.InsecureHTTP = w.InsecureHTTP || o.InsecureHTTP
	if o.MaxAge > 0 {
		w.MaxAge = o.MaxAge
	}
	if w.Path == "" {
		w.Path = "/"
	}
	return w
}

// checkWebhook refuses a configuration whose webhook accounts have no
// listener, or whose listener cannot be served (see WebhookListener.Check).
func (r *Runner) checkWebhook(cfg *Config) error {
	if cfg.Cluster != nil {
		// A webhook account's inbox is on this machine's disk: another
		// runner taking the account over would not have it.
		for _, a := range cfg.Accounts {
			if a.IsWebhook() {
				return fmt.Errorf("account %s has transport webhook, which cluster mode does not run (its inbox is local to one machine): run webhook accounts in a runner without cluster:", a.ID)
			}
		}
	}
	w := r.webhookListener(cfg)
	if err := w.Check(); err != nil {
		return err
	}
	if w.Listen != "" {
		return nil
	}
	for _, a := range cfg.Accounts {
		if a.IsWebhook() {
			return fmt.Errorf("account %s has transport webhook, and there is no webhook listener: set webhook.listen in the file or --webhook-listen", a.ID)
		}
	}
	return nil
}

// startWebhook opens the webhook listener (when one is configured) and
// serves it on a goroutine counted in wg until ctx ends; serve errors go
// to errc.
func (r *Runner) startWebhook(ctx context.Context, wg interface {
	Add(int)
	Done()
}, errc chan<- error) error {
	w := r.webhookListener(r.cfg)
	if w.Listen == "" {
		return nil
	}
	var tlsCfg *tls.Config
	if w.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(w.TLSCertFile, w.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("webhook listener: TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", w.Listen)
	if err != nil {
		return fmt.Errorf("webhook listener on %s: %w", w.Listen, err)
	}
	r.webhookAddr.Store(ln.Addr())
	path := w.Path
	srv := &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			if path != "/" && req.URL.Path != path {
				http.NotFound(rw, req)
				return
			}
			r.hooks.ServeHTTP(rw, req)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// TLS handshake failures and the like, into the runner's log.
		ErrorLog: stdlog.New(r.log.With().Str("component", "webhook listener").Logger(), "", 0),
	}
	scheme := "http"
	if tlsCfg != nil {
		srv.TLSConfig = tlsCfg
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https"
	}
	r.log.Info().Str("listen", ln.Addr().String()).Str("path", path).Str("scheme", scheme).Msg("webhook listener started")
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Only a failure is reported: errc is the ops server's too, and a
		// nil sent at shutdown could fill it and block that server's send.
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errc <- fmt.Errorf("webhook listener on %s: %w", w.Listen, err):
			default:
			}
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}

func (r *Runner) currentConfig() *Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// reserveWebhook makes a webhook account's pushes get 503 (retried by
// the platform), not 404, from the moment it is started until its bot
// serves; it returns the release (a no-op for a gateway account).
func (r *Runner) reserveWebhook(cfg Account) func() {
	if !cfg.IsWebhook() {
		return func() {}
	}
	return r.hooks.Reserve(cfg.AppID)
}

// registerWebhookMetrics adds the webhook listener's requests that reach
// no account: qqgate_webhook_unrouted_total{reason="unknown_app"} (404)
// and {reason="no_app_id"} (400, several accounts and no X-Bot-Appid).
func (r *Runner) registerWebhookMetrics(reg *prometheus.Registry) {
	const help = "Webhook requests that reached no account: unknown_app (an X-Bot-Appid no webhook account has, 404) and no_app_id (no X-Bot-Appid on a listener with several accounts, 400)."
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "qqgate_webhook_unrouted_total", Help: help, ConstLabels: prometheus.Labels{"reason": webhook.RejectUnknownApp}},
			func() float64 { u, _ := r.hooks.Unrouted(); return float64(u) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "qqgate_webhook_unrouted_total", Help: help, ConstLabels: prometheus.Labels{"reason": webhook.RejectNoAppID}},
			func() float64 { _, n := r.hooks.Unrouted(); return float64(n) }),
	)
}

// WebhookAddr returns the address the webhook listener listens on, or nil.
func (r *Runner) WebhookAddr() net.Addr {
	a, _ := r.webhookAddr.Load().(net.Addr)
	return a
}

// runWebhookAccount runs one webhook account: its inbox and dispatcher,
// served on the shared listener under its app id, until ctx ends. The
// handler, replies and counters are the gateway accounts'.
func (r *Runner) runWebhookAccount(ctx context.Context, a *account) error {
	log := r.log.With().Str("account", a.cfg.ID).Logger()
	if cfg := r.currentConfig(); cfg.Cluster != nil {
		return fmt.Errorf("account %s has transport webhook, which cluster mode does not run (its inbox is local to one machine)", a.cfg.ID)
	}
	if r.webhookListener(r.currentConfig()).Listen == "" {
		return fmt.Errorf("account %s has transport webhook, and no webhook listener runs: set webhook.listen and restart", a.cfg.ID)
	}
	lock, err := r.store.Lock(a.cfg.ID)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	// The same token source and OpenAPI client as a gateway account's
	// (Options.Client may adjust the token source in tests).
	ccfg := client.Config{AppID: a.cfg.AppID, ClientSecret: a.cfg.Secret, AccountID: a.cfg.ID, APIBase: a.cfg.APIBase, TokenURL: a.cfg.TokenURL}
	if r.opts.Client != nil {
		r.opts.Client(&ccfg)
	}
	if ccfg.TokenSource == nil {
		ccfg.TokenSource = client.NewAppTokenSource(ccfg.AppID, ccfg.ClientSecret, ccfg.TokenURL, ccfg.HTTPClient)
	}
	sender, err := r.newSender(a, ccfg.TokenSource, log)
	if err != nil {
		return err
	}
	h, err := handler.New(a.cfg.Handler, handler.Options{
		Stdout:   r.stdout,
		HideEnv:  r.hiddenEnv,
		Logger:   r.log,
		Backoff:  r.opts.HandlerBackoff,
		Replier:  sender,
		OnResult: r.onResult(a),
	})
	if err != nil {
		return err
	}
	shutdown := r.opts.ShutdownTimeout
	if shutdown <= 0 {
		shutdown = client.DefaultShutdownTimeout
	}
	bot, err := webhook.NewBot(webhook.BotConfig{
		AppID:           a.cfg.AppID,
		Secret:          a.cfg.Secret,
		AccountID:       a.cfg.ID,
		Handler:         abandoning{h: h, log: r.log},
		Inbox:           webhook.InboxConfig{Dir: r.sessionDir},
		MaxAge:          r.webhookListener(r.currentConfig()).MaxAge,
		ShutdownTimeout: shutdown,
		Logger:          r.log,
		OnAccept:        func(ev event.Event) { a.counts.Received(ev.Type) },
	})
	if err != nil {
		return err
	}
	if err := r.hooks.Add(bot); err != nil {
		bot.Close()
		return fmt.Errorf("account %s: app id %s: %w", a.cfg.ID, a.cfg.AppID, err)
	}
	a.mu.Lock()
	a.bot, a.sender = bot, sender
	a.mu.Unlock()
	defer func() {
		r.hooks.Remove(bot)
		a.mu.Lock()
		a.sender = nil
		a.mu.Unlock()
	}()
	if a.cfg.Handler.Concurrency > 1 {
		log.Warn().Int("concurrency", a.cfg.Handler.Concurrency).Msg("handler concurrency does not apply to a webhook account: its pushes are handled one at a time, in order")
	}
	log.Info().Str("app_id", a.cfg.AppID).Str("inbox", bot.Inbox().Dir()).Msg("webhook account started")
	return bot.Run(ctx)
}

// webhookState fills a webhook account's state for /status and /metrics.
func webhookState(st *ops.AccountState, bot *webhook.Bot, running bool) {
	s := bot.Stats()
	st.Transport = TransportWebhook
	st.Webhook = &ops.WebhookStats{Accepted: s.Accepted, Duplicates: s.Duplicates, Validations: s.Validations,
		Rejected: s.Rejected, InboxDepth: s.Inbox.Depth, Fsyncs: s.Inbox.Syncs, Synced: s.Inbox.Synced}
	state := client.StateClosed
	if running {
		state = client.StateConnected
	}
	st.Status = client.Status{AccountID: st.ID, State: state, Events: s.Accepted, Handled: s.Handled,
		QueueLength: s.Inbox.Depth, DuplicatesDropped: s.Duplicates, LastSeqReceived: s.Inbox.NextSeq - 1,
		LastSeqHandled: s.Inbox.LastCommit}
}
