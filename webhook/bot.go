package webhook

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/event"
)

// Headers the platform sends.
const (
	HeaderAppID     = "X-Bot-Appid"
	HeaderSignature = "X-Signature-Ed25519"
	HeaderTimestamp = "X-Signature-Timestamp"
)

// Defaults.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultShutdownTimeout = 10 * time.Second
)

// Reasons a push is rejected, the label of the rejected counter.
const (
	RejectMissingSignature = "missing_signature" // 401: no signature headers on a push
	RejectBadSignature     = "bad_signature"     // 401: the signature does not verify
	RejectStale            = "stale_timestamp"   // 401: older (or newer) than MaxAge
	RejectBadBody          = "bad_body"          // 400: not a push
	RejectTooLarge         = "too_large"         // 413: over MaxBodyBytes
	RejectMethod           = "method"            // 405: not POST
	RejectInboxFull        = "inbox_full"        // 503: the inbox is full
	RejectStopped          = "stopped"           // 503: the bot is stopping
	RejectWriteFailed      = "write_failed"      // 500: the inbox could not write it
	RejectUnknownApp       = "unknown_app"       // 404: no bot with this app id
	RejectNoAppID          = "no_app_id"         // 400: no X-Bot-Appid on a shared listener
)

// BotConfig configures one bot.
type BotConfig struct {
	// AppID and Secret are the bot's; the secret derives the key that
	// answers validations and checks every push. Required.
	AppID, Secret string
	// AccountID names the bot in events, logs and its inbox; default AppID.
	AccountID string
	// Handler receives the pushes, one at a time, in order. Required.
	Handler event.Handler
	// Inbox configures the inbox (Dir, the session directory, is
	// required; AccountID and AppID are filled in).
	Inbox InboxConfig
	// MaxBodyBytes bounds a request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxAge, when positive, refuses a push whose X-Signature-Timestamp is
	// further than MaxAge from now (a replayed request). Off by default:
	// the platform documents no bound.
	MaxAge time.Duration
	// ShutdownTimeout bounds the handler in hand when Run's context ends;
	// a handler still busy then has its context cancelled and its push
	// stays in the inbox. Zero means DefaultShutdownTimeout. Run waits for
	// the handler to return: a handler that ignores its context keeps Run
	// from returning (qqgate run abandons such a call instead).
	ShutdownTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the bot's logs.
	Logger zerolog.Logger
	// OnAccept, when set, is called with each push accepted into the
	// inbox (not for duplicates), before it is acknowledged: metrics.
	OnAccept func(ev event.Event)
}

// PushStats count a bot's requests.
type PushStats struct {
	Accepted    uint64            // pushes written to the inbox and acknowledged
	Duplicates  uint64            // pushes whose envelope id was accepted before: acknowledged, not handled again
	Validations uint64            // op 13 validations answered
	Rejected    map[string]uint64 // by reason (the Reject constants)
	Handled     uint64            // pushes whose handler returned (committed)
	Inbox       InboxStats
}

// Bot serves one bot's webhook: it is an http.Handler on its own, and a
// Server routes to several. Create it with NewBot, run its dispatcher
// with Run.
type Bot struct {
	cfg   BotConfig
	key   ed25519.PrivateKey
	pub   ed25519.PublicKey
	inbox *Inbox
	log   zerolog.Logger

	accepted, dups, validations, handled atomic.Uint64
	rejMu                                sync.Mutex
	rejected                             map[string]uint64
	closeOnce                            sync.Once
	closeErr                             error
}

// NewBot derives the bot's key and opens its inbox (see OpenInbox). An
// empty secret is ErrEmptySecret.
func NewBot(cfg BotConfig) (*Bot, error) {
	if cfg.AppID == "" {
		return nil, errors.New("webhook: bot needs an app id")
	}
	if cfg.Handler == nil {
		return nil, errors.New("webhook: bot needs a handler")
	}
	key, err := KeyFromSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if cfg.AccountID == "" {
		cfg.AccountID = cfg.AppID
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ic := cfg.Inbox
	ic.AccountID, ic.AppID = cfg.AccountID, cfg.AppID
	if ic.Now == nil {
		ic.Now = cfg.Now
	}
	ic.Logger = cfg.Logger.With().Str("account", cfg.AccountID).Logger()
	inbox, err := OpenInbox(ic)
	if err != nil {
		return nil, err
	}
	b := &Bot{cfg: cfg, key: key, pub: key.Public().(ed25519.PublicKey), inbox: inbox, rejected: map[string]uint64{},
		log: cfg.Logger.With().Str("account", cfg.AccountID).Logger()}
	if n := inbox.Stats().Skipped; n > 0 {
		b.log.Warn().Uint64("lines", n).Str("inbox", inbox.Dir()).Msg("webhook inbox lines that did not parse were skipped")
	}
	if d := inbox.Stats().Depth; d > 0 {
		b.log.Info().Int("pending", d).Str("inbox", inbox.Dir()).Msg("webhook inbox holds pushes a previous run did not handle; handling them first")
	}
	return b, nil
}

// AppID is the bot's app id.
func (b *Bot) AppID() string { return b.cfg.AppID }

// AccountID is the bot's account id.
func (b *Bot) AccountID() string { return b.cfg.AccountID }

// Inbox is the bot's inbox.
func (b *Bot) Inbox() *Inbox { return b.inbox }

// Stats returns the bot's counters.
func (b *Bot) Stats() PushStats {
	s := PushStats{Accepted: b.accepted.Load(), Duplicates: b.dups.Load(), Validations: b.validations.Load(),
		Handled: b.handled.Load(), Inbox: b.inbox.Stats(), Rejected: map[string]uint64{}}
	b.rejMu.Lock()
	for k, v := range b.rejected {
		s.Rejected[k] = v
	}
	b.rejMu.Unlock()
	return s
}

func (b *Bot) reject(w http.ResponseWriter, status int, reason string) {
	b.rejMu.Lock()
	b.rejected[reason]++
	b.rejMu.Unlock()
	b.log.Debug().Str("reason", reason).Int("status", status).Msg("webhook request rejected")
	writeReject(w, status, reason)
}

func writeReject(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"op\":12,\"d\":1,\"error\":%q}\n", reason)
}

var ackBody = []byte(`{"op":12,"d":0}`)

// ServeHTTP serves the bot alone: X-Bot-Appid may be absent, and when
// present must be the bot's (else 404).
func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get(HeaderAppID); id != "" && id != b.cfg.AppID {
		writeReject(w, http.StatusNotFound, RejectUnknownApp)
		return
	}
	b.serve(w, r)
}

// serve handles a request routed to the bot.
func (b *Bot) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		b.reject(w, http.StatusMethodNotAllowed, RejectMethod)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			b.reject(w, http.StatusRequestEntityTooLarge, RejectTooLarge)
			return
		}
		b.reject(w, http.StatusBadRequest, RejectBadBody)
		return
	}
	sig, ts := r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp)
	if sig == "" && ts == "" {
		// Only a validation may come unsigned (some platform versions
		// do not sign it).
		if p, err := ParsePush(body); err == nil && p.Op == OpValidation {
			b.validate(w, p)
			return
		}
		b.reject(w, http.StatusUnauthorized, RejectMissingSignature)
		return
	}
	if !Verify(b.pub, sig, ts, body) {
		b.reject(w, http.StatusUnauthorized, RejectBadSignature)
		return
	}
	if b.cfg.MaxAge > 0 {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || b.cfg.Now().Sub(time.Unix(sec, 0)).Abs() > b.cfg.MaxAge {
			b.reject(w, http.StatusUnauthorized, RejectStale)
			return
		}
	}
	p, err := ParsePush(body)
	if err != nil {
		b.reject(w, http.StatusBadRequest, RejectBadBody)
		return
	}
	switch p.Op {
	case OpValidation:
		b.validate(w, p)
	case OpDispatch:
		b.accept(w, p)
	default:
		b.log.Info().Int("op", p.Op).Msg("webhook push with an op this version does not handle; acknowledged")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(ackBody)
	}
}

func (b *Bot) validate(w http.ResponseWriter, p Push) {
	b.validations.Add(1)
	out, _ := json.Marshal(struct {
		PlainToken string `json:"plain_token"`
		Signature  string `json:"signature"`
	}{p.PlainToken, SignValidation(b.key, p.EventTS, p.PlainToken)})
	b.log.Info().Msg("webhook URL validation answered")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (b *Bot) accept(w http.ResponseWriter, p Push) {
	res, err := b.inbox.Accept(p.ID, p.Type, p.Data)
	switch {
	case errors.Is(err, ErrInboxFull):
		b.log.Warn().Str("type", p.Type).Msg("webhook inbox full: push refused, the platform will retry it")
		b.reject(w, http.StatusServiceUnavailable, RejectInboxFull)
		return
	case errors.Is(err, ErrClosed):
		b.reject(w, http.StatusServiceUnavailable, RejectStopped)
		return
	case err != nil:
		b.log.Error().Err(err).Str("type", p.Type).Msg("webhook push not written: refused, the platform will retry it")
		b.reject(w, http.StatusInternalServerError, RejectWriteFailed)
		return
	case res.Duplicate:
		b.dups.Add(1)
		b.log.Debug().Str("id", p.ID).Uint64("seq", res.Seq).Msg("webhook push retried: acknowledged, not handled again")
	default:
		b.accepted.Add(1)
		if b.cfg.OnAccept != nil {
			b.cfg.OnAccept(event.Event{AccountID: b.cfg.AccountID, Type: p.Type, Seq: res.Seq, ID: p.ID, Data: p.Data})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ackBody)
}

// Run hands the inbox's pushes to the handler, one at a time, in order,
// committing each after its handler returned, until ctx ends; then it lets
// the handler in hand finish (up to ShutdownTimeout; a push whose handler
// was cancelled stays in the inbox), closes the inbox and returns nil.
// Pushes left by an earlier process come first. Call it once.
func (b *Bot) Run(ctx context.Context) error {
	defer b.Close()
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	var tmu sync.Mutex
	var timer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		tmu.Lock()
		timer = time.AfterFunc(b.cfg.ShutdownTimeout, cancelHard)
		tmu.Unlock()
	})
	defer func() {
		stop()
		tmu.Lock()
		if timer != nil {
			timer.Stop()
		}
		tmu.Unlock()
	}()
	for {
		if ctx.Err() != nil {
			return nil
		}
		ev, ok := b.inbox.Next()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-b.inbox.Ready():
			}
			continue
		}
		b.handle(hard, ev)
		if hard.Err() != nil {
			b.inbox.Requeue(ev.Seq)
			b.log.Warn().Uint64("seq", ev.Seq).Str("type", ev.Type).Msg("handler cancelled at shutdown: the push stays in the inbox and is handled at the next start")
			return nil
		}
		if err := b.inbox.Commit(ev.Seq); err != nil {
			b.log.Error().Err(err).Uint64("seq", ev.Seq).Msg("commit a handled push; it may be handled again after a restart")
		}
		b.handled.Add(1)
	}
}

// handle calls the handler; an error or a panic is logged, never fatal.
func (b *Bot) handle(ctx context.Context, ev event.Event) {
	defer func() {
		if v := recover(); v != nil {
			b.log.Error().Interface("panic", v).Bytes("stack", debug.Stack()).Uint64("seq", ev.Seq).Str("type", ev.Type).Msg("handler panicked")
		}
	}()
	if err := b.cfg.Handler.HandleEvent(ctx, ev); err != nil {
		b.log.Warn().Err(err).Uint64("seq", ev.Seq).Str("type", ev.Type).Msg("handler failed")
	}
}

// Close closes the bot's inbox (Run does on return): later pushes get 503.
func (b *Bot) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.inbox.Close() })
	return b.closeErr
}
