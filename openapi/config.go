package openapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"
)

// Defaults of Config. Each Config field documents which of these its zero
// value means.
const (
	// DefaultBaseURL is the OpenAPI of the live platform. The sandbox is
	// https://sandbox.api.sgroup.qq.com.
	DefaultBaseURL = "https://api.sgroup.qq.com"
	// DefaultTimeout bounds one HTTP attempt. The platform advises at
	// least 5 s, so that a send is not abandoned while it is being
	// delivered.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxRetries is how many times a failed send is retried after
	// its first attempt (the one token refetch is not counted).
	DefaultMaxRetries = 3
	// DefaultSeqCacheSize bounds the inbound ids the client remembers for
	// msg_seq numbering and reply windows outside a reply scope.
	DefaultSeqCacheSize = 10000
	// DefaultRetryInitial, DefaultRetryMax: the default backoff grows from
	// DefaultRetryInitial, doubling, up to DefaultRetryMax, jittered by
	// half either way.
	DefaultRetryInitial = 500 * time.Millisecond
	DefaultRetryMax     = 10 * time.Second

	// MinAdvisedTimeout is the per-request timeout the platform advises as
	// a minimum. Config.Timeout may be shorter (tests do this), at the risk
	// of abandoning sends that were delivered.
	MinAdvisedTimeout = 5 * time.Second

	defaultUserAgent = "qqgate-openapi (+https://github.com/qqgate/qqgate)"
)

// TokenSource supplies access tokens. One source per app should serve both
// the gateway connection and the OpenAPI, so there is one token fetch cycle
// per account (client.AppTokenSource satisfies this interface).
// Implementations must be safe for concurrent use.
type TokenSource interface {
	// Token returns a valid access token, without the "QQBot " prefix.
	Token(ctx context.Context) (string, error)
	// Invalidate drops any cached token, so that the next Token call
	// fetches a fresh one.
	Invalidate()
}

// Limit is the local check of one scene's passive replies.
type Limit struct {
	// Window is how long after the inbound message a reply may be sent.
	// Zero means the scene's default; negative means no local check.
	Window time.Duration
	// Replies is how many replies one inbound message may get. Zero means
	// the scene's default; negative means no limit.
	Replies int
}

// Limits are the passive-reply rules checked before a reply leaves the
// process: a reply past them fails at once with ErrReplyWindow or ErrQuota,
// without a round trip. The platform's own answer stays authoritative;
// these only save a doomed request. The zero value means the platform's
// documented rules ([DefaultLimits]).
type Limits struct {
	// C2C: zero means 60 minutes and 5 replies.
	C2C Limit
	// Group: zero means 5 minutes and 5 replies.
	Group Limit
	// Channel (guild text channel): zero means 5 minutes, no reply limit.
	Channel Limit
	// DM (guild direct message): zero means 5 minutes, no reply limit.
	DM Limit
}

// DefaultLimits returns the platform's documented passive-reply rules:
// C2C 60 min / 5 replies, group 5 min / 5 replies, channel and DM 5 min /
// unlimited.
func DefaultLimits() Limits {
	return Limits{
		C2C:     Limit{Window: 60 * time.Minute, Replies: 5},
		Group:   Limit{Window: 5 * time.Minute, Replies: 5},
		Channel: Limit{Window: 5 * time.Minute, Replies: -1},
		DM:      Limit{Window: 5 * time.Minute, Replies: -1},
	}
}

// NoLimits returns Limits that check nothing locally.
func NoLimits() Limits {
	off := Limit{Window: -1, Replies: -1}
	return Limits{C2C: off, Group: off, Channel: off, DM: off}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *Limit, def Limit) {
		if v.Window == 0 {
			v.Window = def.Window
		}
		if v.Replies == 0 {
			v.Replies = def.Replies
		}
	}
	fill(&l.C2C, d.C2C)
	fill(&l.Group, d.Group)
	fill(&l.Channel, d.Channel)
	fill(&l.DM, d.DM)
	return l
}

func (l Limits) of(k Kind) Limit {
	switch k {
	case KindC2C:
		return l.C2C
	case KindGroup:
		return l.Group
	case KindChannel:
		return l.Channel
	case KindDM:
		return l.DM
	}
	return Limit{Window: -1, Replies: -1}
}

// Config configures a [Client]. The zero value of every field means the
// default written beside it; [New] validates the whole and never changes
// the caller's value.
type Config struct {
	// AppID is the bot's app id, sent as X-Union-Appid. Required.
	AppID string
	// Tokens supplies access tokens. Required. Share the gateway
	// connection's source so the account has one token cycle.
	Tokens TokenSource

	// BaseURL is the OpenAPI base. Zero means DefaultBaseURL. Plain http is
	// accepted only on loopback.
	BaseURL string
	// HTTPClient makes the requests. Its own Timeout, if any, also applies.
	// Zero means a client on http.DefaultTransport without a timeout of
	// its own (Timeout below bounds each attempt).
	HTTPClient *http.Client
	// Timeout bounds one HTTP attempt, reading the answer included. Zero
	// means DefaultTimeout. The platform advises at least 5 s
	// (MinAdvisedTimeout).
	Timeout time.Duration
	// UserAgent is sent as User-Agent. Zero means a qqgate string.
	UserAgent string

	// Limits are the passive-reply rules checked locally. Zero means
	// DefaultLimits().
	Limits Limits

	// Backoff returns the delay policy of one send's retries; it is called
	// once per send, so its result need not be safe for concurrent use.
	// Returning backoff.Stop ends the retries. Zero means exponential from
	// DefaultRetryInitial to DefaultRetryMax, doubling, jittered by half.
	Backoff func() backoff.BackOff
	// MaxRetries is how many times a send is retried after its first
	// attempt when the failure is temporary. Zero means DefaultMaxRetries;
	// negative means never.
	MaxRetries int
	// RetryAmbiguous also retries a channel or DM message, an active c2c or
	// group message (no msg_id or event_id), or an upload with SrvSendMsg,
	// after a failure that leaves its delivery unknown (a 5xx answer, a
	// timeout, a connection lost after sending). The platform drops a
	// repeat only by (msg_id or event_id, msg_seq), which these sends lack,
	// so the user may see the message twice. Zero (false) means they are retried only
	// after failures that prove nothing was delivered (rate limits, token
	// refusals, a failed dial).
	RetryAmbiguous bool

	// SeqCacheSize bounds how many inbound ids the client remembers, to
	// number msg_seq outside a reply scope and to time reply windows from
	// the first sight of an id. Zero means DefaultSeqCacheSize.
	SeqCacheSize int

	// Clock tells the time for reply windows. Zero means time.Now.
	Clock func() time.Time
	// Logger receives a Warn line for every failed send (with its class,
	// code and trace id) and Debug lines for retries. Zero means silent.
	// Tokens are never logged.
	Logger zerolog.Logger
}

// Validate reports the first problem of the configuration, with zero
// fields taken as their defaults.
func (c *Config) Validate() error {
	if c == nil {
		return errors.New("openapi: nil config")
	}
	if strings.TrimSpace(c.AppID) == "" {
		return errors.New("openapi: Config.AppID is required")
	}
	if strings.ContainsAny(c.AppID, "\r\n\x00 \t") {
		return errors.New("openapi: Config.AppID contains whitespace or control characters")
	}
	if c.Tokens == nil {
		return errors.New("openapi: Config.Tokens is required")
	}
	if c.BaseURL != "" {
		if err := checkBaseURL(c.BaseURL); err != nil {
			return err
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("openapi: Config.Timeout %s is negative", c.Timeout)
	}
	if c.SeqCacheSize < 0 {
		return fmt.Errorf("openapi: Config.SeqCacheSize %d is negative", c.SeqCacheSize)
	}
	if strings.ContainsAny(c.UserAgent, "\r\n\x00") {
		return errors.New("openapi: Config.UserAgent contains control characters")
	}
	return nil
}

// withDefaults returns a copy with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.AppID = strings.TrimSpace(c.AppID)
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.UserAgent == "" {
		c.UserAgent = defaultUserAgent
	}
	c.Limits = c.Limits.withDefaults()
	if c.Backoff == nil {
		c.Backoff = defaultBackoff
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.SeqCacheSize == 0 {
		c.SeqCacheSize = DefaultSeqCacheSize
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

func defaultBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(DefaultRetryInitial),
		backoff.WithMaxInterval(DefaultRetryMax),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
}

// checkBaseURL accepts https anywhere and http only on loopback, with no
// query, fragment or credentials.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("openapi: Config.BaseURL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("openapi: Config.BaseURL %q has no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("openapi: Config.BaseURL %q must not carry credentials, a query or a fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("openapi: Config.BaseURL %q: plain http is allowed only on loopback", raw)
	}
	return fmt.Errorf("openapi: Config.BaseURL %q: scheme must be https", raw)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
