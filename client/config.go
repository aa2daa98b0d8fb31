package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/intents"
	"github.com/qqgate/qqgate/internal/resume"
	"github.com/qqgate/qqgate/sessionstore"
	"github.com/qqgate/qqgate/wire"
)

// Defaults of Config. Each Config field documents which of these its zero
// value means.
const (
	DefaultAPIBase         = "https://api.sgroup.qq.com"
	DefaultTokenURL        = "https://bots.qq.com/app/getAppAccessToken"
	DefaultMaxMessageBytes = 4 << 20
	DefaultQueueSize       = 1024
	DefaultQueueBytes      = 8 << 20
	DefaultHelloTimeout    = 10 * time.Second
	DefaultReadyTimeout    = 30 * time.Second
	DefaultHTTPTimeout     = 10 * time.Second
	DefaultDedupeWindow    = 4096
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxAuthFailures = resume.DefaultMaxAuthFailures
	DefaultStableAfter     = 30 * time.Second
	defaultUserAgent       = "qqgate (+https://github.com/qqgate/qqgate)"
)

// Config configures a Client. The zero value of every field means the
// default written beside it; New (and Validate) check the whole and never
// change the caller's value.
type Config struct {
	// AppID is the bot's app id. Required.
	AppID string
	// ClientSecret is the bot's client secret, exchanged for access tokens
	// at TokenURL. Required unless TokenSource is set. It never appears in
	// logs or errors.
	ClientSecret string
	// TokenSource supplies access tokens. Zero means a source that fetches
	// from TokenURL with AppID and ClientSecret, caches the token and
	// refreshes it ahead of expiry.
	TokenSource TokenSource

	// AccountID names the account: it keys the session record and appears
	// in logs. Zero means AppID.
	AccountID string

	// APIBase is the OpenAPI base URL used to discover the gateway. Zero
	// means DefaultAPIBase. Plain http is accepted only on loopback.
	APIBase string
	// TokenURL is the access-token endpoint. Zero means DefaultTokenURL.
	// Plain http is accepted only on loopback.
	TokenURL string
	// GatewayURL skips discovery and dials this WebSocket URL. Zero means
	// discover it through {APIBase}/gateway/bot, then {APIBase}/gateway.
	GatewayURL string

	// Intents are sent in IDENTIFY, as the one level there is. Zero (with
	// IntentLevels also zero) means intents.DefaultLevels: full
	// (public_guild_messages, direct_message, group_and_c2c_event and
	// interaction, 1174409216), then the same without interaction, then
	// group+channel, then channel-only, stepping down on rejection.
	// Interaction is needed for INTERACTION_CREATE (button clicks).
	Intents intents.Set
	// IntentLevels, when set, replaces Intents with an ordered list from
	// full to reduced: IDENTIFY starts at the stored level and steps one
	// level down when the gateway rejects the intents before READY. Zero
	// means the single level Intents.
	IntentLevels []intents.Level
	// Shard is [shard id, shard count]. Zero means [0, 1].
	Shard [2]int

	// Store keeps the session record across restarts. Zero means an
	// in-memory store: the client resumes after network loss but not after
	// a restart. Use sessionstore.NewFileStore for the openclaw-compatible
	// files; any sessionstore.Store will do.
	Store SessionStore

	// Handler receives every dispatch event, READY and RESUMED included,
	// one call at a time in seq order on the dispatcher goroutine. Zero
	// means events are received and committed but not handed anywhere.
	Handler event.Handler
	// HandlerConcurrency is how many Handler calls may run at once. Calls
	// start in seq order; the committed seq stays below the oldest call
	// still running. Above one, the Handler must be safe for concurrent
	// use and events may finish out of order. Zero means one: strictly one
	// call at a time, in order.
	HandlerConcurrency int
	// QueueSize bounds the events received but not yet handled. When the
	// queue is full, reading from the gateway pauses (backpressure); no
	// event is dropped. Zero means DefaultQueueSize.
	QueueSize int
	// QueueBytes bounds the same queue in bytes (the events' data, ids and
	// types): reading pauses while the events queued hold that much, and
	// resumes as the handler takes them. An event larger than the whole
	// budget is still queued when the queue is empty, so nothing is ever
	// dropped. Zero means DefaultQueueBytes.
	QueueBytes int64
	// DedupeWindow is how many recent event ids are remembered to drop
	// duplicate deliveries; negative turns dedupe off. Zero means
	// DefaultDedupeWindow.
	DedupeWindow int

	// MaxMessageBytes is the read limit of one gateway frame. Zero means
	// DefaultMaxMessageBytes (coder/websocket's own default is 32 KiB). It
	// may not exceed wire.MaxFrameBytes (16 MiB), the largest frame the
	// decoder accepts: a frame between the two would pass the read limit
	// and then be skipped as undecodable, losing its event.
	MaxMessageBytes int64
	// HTTPClient makes the token and gateway requests and the WebSocket
	// upgrade. Zero means a client with a DefaultHTTPTimeout timeout. The
	// client uses a copy that follows no redirect to another origin
	// (scheme, host or port), nor to plain http or ws off loopback, so the
	// secret and the tokens go nowhere else; the value given is not
	// changed.
	HTTPClient *http.Client
	// Logger receives the client's logs. Zero means silent.
	Logger zerolog.Logger

	// HelloTimeout bounds the wait for HELLO after the upgrade. Zero means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration
	// ReadyTimeout bounds the wait for READY or RESUMED after IDENTIFY or
	// RESUME. Only the session moving on counts as progress that extends
	// it: events of a replay in front of RESUMED (also while they wait on
	// a full queue); heartbeat ACKs and repeats of seqs already received
	// do not. Zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds the graceful part of a shutdown (the handler
	// finishing the event in hand, the final write, the close handshake).
	// Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Backoff tunes the reconnect backoff. Zero fields mean the policy's
	// defaults: 1 s initial, factor 2, 60 s cap, 0.5 jitter, no limit. A
	// cap below Initial is taken as Initial.
	Backoff BackoffConfig
	// InvalidSessionDelay is the wait after op 9 false. Zero means 3 s.
	InvalidSessionDelay time.Duration
	// RateLimitDelay is the wait after close 4008 or a "Too many requests"
	// answer. Zero means 60 s.
	RateLimitDelay time.Duration
	// StableAfter is how long a session must stay up before the backoff
	// resets, so an accept-then-close server cannot cause a tight loop.
	// Zero means DefaultStableAfter.
	StableAfter time.Duration
	// MaxAuthFailures is how many 4004 closes in a row, with no READY or
	// RESUMED in between, end Run with a *CloseError. Zero or negative
	// means DefaultMaxAuthFailures.
	MaxAuthFailures int

	// IdentifyLimiter spaces IDENTIFYs to obey the session_start_limit of
	// /gateway/bot. Share one value between the clients of one process.
	// Zero means a limiter private to this client.
	IdentifyLimiter *IdentifyLimiter

	// OnReceive, when set, is called with every event once it is in the
	// queue (after replays and duplicates are dropped), so at most once per
	// delivery; the handler may already have started on it. It runs on the
	// connection's reader, the goroutine running Run: return at once.
	OnReceive func(event.Event)

	// OnStateChange, when set, is called with a status snapshot after every
	// state change. It runs on the goroutine that changed the state (Run's,
	// or one of the connection's: its timers, its shutdown): return quickly.
	OnStateChange func(Status)
}

// SessionStore keeps the session record of an account: the methods of a
// sessionstore.Store the client calls, so another store (a database, a
// cache) needs only these. sessionstore.FileStore and MemoryStore
// implement it; their documentation gives the contract of each method. It
// must be safe for concurrent use. The client never closes a store it was
// given.
type SessionStore interface {
	// Load returns the account's record, or an error wrapping
	// sessionstore.ErrNoSession when none is usable (with the record, when
	// it is ours but not resumable).
	Load(ctx context.Context, accountID, appID string) (sessionstore.Record, error)
	// Save stores the record, throttled; the newest state always lands.
	Save(ctx context.Context, r sessionstore.Record) error
	// SaveNow writes the record at once.
	SaveNow(ctx context.Context, r sessionstore.Record) error
	// Clear removes the account's record; a missing one is not an error.
	Clear(ctx context.Context, accountID string) error
	// Flush writes every pending throttled save now.
	Flush(ctx context.Context) error
}

// BackoffConfig tunes the exponential reconnect backoff.
type BackoffConfig struct {
	// Initial is the first delay. Zero means 1 s.
	Initial time.Duration
	// Max caps a delay. Zero means 60 s.
	Max time.Duration
	// Jitter is the randomization factor in [0, 1]. Zero means 0.5; use a
	// negative value for none.
	Jitter float64
	// MaxAttempts, when positive, ends Run with an error after that many
	// failed connection attempts in a row. Zero means never give up.
	MaxAttempts int
}

// ErrConfig is wrapped by every error New and Validate return for a bad
// Config.
var ErrConfig = errors.New("client: invalid config")

// Validate reports whether New would accept the Config, with the same
// error (wrapping ErrConfig) New would return. It does no I/O, builds
// nothing and does not change c.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolve gives the Config New uses: the defaults filled in, validated,
// and the HTTP client guarded against redirects to another origin.
func (c Config) resolve() (Config, error) {
	c = c.withDefaults()
	if err := c.check(); err != nil {
		return c, err
	}
	c.HTTPClient = guardRedirects(c.HTTPClient)
	return c, nil
}

// withDefaults fills every zero field with its default; negative values
// are left for check to refuse.
func (c Config) withDefaults() Config {
	c.AppID = strings.TrimSpace(c.AppID)
	if c.AccountID == "" {
		c.AccountID = c.AppID
	}
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if c.TokenURL == "" {
		c.TokenURL = DefaultTokenURL
	}
	c = c.withIntentLevels()
	if c.Shard == [2]int{} {
		c.Shard = [2]int{0, 1}
	}
	c.QueueSize = orDefault(c.QueueSize, DefaultQueueSize)
	c.QueueBytes = orDefault(c.QueueBytes, DefaultQueueBytes)
	c.DedupeWindow = orDefault(c.DedupeWindow, DefaultDedupeWindow)
	c.MaxMessageBytes = orDefault(c.MaxMessageBytes, DefaultMaxMessageBytes)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	c.HelloTimeout = orDefault(c.HelloTimeout, DefaultHelloTimeout)
	c.ReadyTimeout = orDefault(c.ReadyTimeout, DefaultReadyTimeout)
	c.ShutdownTimeout = orDefault(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.InvalidSessionDelay = orDefault(c.InvalidSessionDelay, resume.DefaultInvalidSessionDelay)
	c.RateLimitDelay = orDefault(c.RateLimitDelay, resume.DefaultRateLimitDelay)
	c.StableAfter = orDefault(c.StableAfter, DefaultStableAfter)
	c.MaxAuthFailures = orDefault(c.MaxAuthFailures, DefaultMaxAuthFailures)
	// Backoff's zero fields are filled where the backoff is built, with
	// the same defaults the policy documents.
	return c
}

// withIntentLevels makes IntentLevels the list IDENTIFY steps through (a
// copy of the caller's) and Intents its first level.
func (c Config) withIntentLevels() Config {
	switch {
	case len(c.IntentLevels) == 0 && c.Intents == 0:
		c.IntentLevels = intents.DefaultLevels()
	case len(c.IntentLevels) == 0:
		c.IntentLevels = []intents.Level{{Name: "configured", Intents: c.Intents}}
	default:
		c.IntentLevels = append([]intents.Level(nil), c.IntentLevels...)
	}
	c.Intents = c.IntentLevels[0].Intents
	return c
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// check validates a Config whose defaults are filled in.
func (c Config) check() error {
	if c.AppID == "" {
		return fmt.Errorf("%w: AppID is required", ErrConfig)
	}
	if c.TokenSource == nil && c.ClientSecret == "" {
		return fmt.Errorf("%w: ClientSecret or TokenSource is required", ErrConfig)
	}
	if err := c.checkEndpoints(); err != nil {
		return err
	}
	for i, l := range c.IntentLevels {
		if l.Intents == 0 {
			return fmt.Errorf("%w: intent level %d (%s) has no intents", ErrConfig, i, l.Name)
		}
	}
	if c.Shard[1] < 1 || c.Shard[0] < 0 || c.Shard[0] >= c.Shard[1] {
		return fmt.Errorf("%w: shard %v is not [id, count] with 0 <= id < count", ErrConfig, c.Shard)
	}
	return c.checkBounds()
}

func (c Config) checkEndpoints() error {
	if err := checkEndpoint("APIBase", c.APIBase, "https", "http"); err != nil {
		return err
	}
	if err := checkEndpoint("TokenURL", c.TokenURL, "https", "http"); err != nil {
		return err
	}
	if c.GatewayURL != "" {
		return checkEndpoint("GatewayURL", c.GatewayURL, "wss", "ws")
	}
	return nil
}

// checkBounds refuses negative sizes and out-of-range limits.
func (c Config) checkBounds() error {
	switch {
	case c.HandlerConcurrency < 0:
		return fmt.Errorf("%w: HandlerConcurrency %d is negative", ErrConfig, c.HandlerConcurrency)
	case c.QueueSize < 0:
		return fmt.Errorf("%w: QueueSize %d is negative", ErrConfig, c.QueueSize)
	case c.QueueBytes < 0:
		return fmt.Errorf("%w: QueueBytes %d is negative", ErrConfig, c.QueueBytes)
	case c.MaxMessageBytes < 1024:
		return fmt.Errorf("%w: MaxMessageBytes %d is too small", ErrConfig, c.MaxMessageBytes)
	case c.MaxMessageBytes > wire.MaxFrameBytes:
		return fmt.Errorf("%w: MaxMessageBytes %d exceeds %d, the largest frame the decoder accepts", ErrConfig, c.MaxMessageBytes, wire.MaxFrameBytes)
	case c.Backoff.Jitter > 1:
		return fmt.Errorf("%w: Backoff.Jitter %v is above 1", ErrConfig, c.Backoff.Jitter)
	}
	return nil
}

// checkEndpoint accepts secure URLs anywhere and plain ones on loopback.
func checkEndpoint(field, raw, secure, plain string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: %s %q is not an absolute URL", ErrConfig, field, redactRawURL(raw))
	}
	switch u.Scheme {
	case secure:
		return nil
	case plain:
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: %s %q: plain %s:// is accepted only on loopback; use %s://", ErrConfig, field, redactURL(u), plain, secure)
	}
	return fmt.Errorf("%w: %s %q: scheme must be %s", ErrConfig, field, redactURL(u), secure)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
