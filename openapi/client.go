package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/wire"
)

// maxAnswerBytes bounds how much of an answer is read.
const maxAnswerBytes = 4 << 20

// tokenPrefix is the scheme of the Authorization header.
const tokenPrefix = "QQBot "

// Client sends through the OpenAPI for one app. Create it with [New]. All
// its methods are safe for concurrent use; it starts no goroutines and
// needs no Close.
type Client struct {
	cfg     Config
	log     zerolog.Logger
	inbound *inboundTracker

	mu    sync.Mutex
	stats Stats
}

// Stats are the client's counters since New.
type Stats struct {
	// Sent counts messages the platform accepted, Duplicate and
	// PendingAudit results included.
	Sent uint64
	// Duplicates counts sends reported as already delivered (40054005).
	Duplicates uint64
	// PendingAudit counts messages held for audit.
	PendingAudit uint64
	// Retries counts attempts after the first, token refetches included.
	Retries uint64
	// TokenRefetches counts token refusals answered by a refetch.
	TokenRefetches uint64
	// Failures counts failed calls by class.
	Failures map[Class]uint64
}

// New returns a client for cfg, after [Config.Validate].
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Client{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "openapi").Str("app_id", cfg.AppID).Logger(),
		inbound: newInboundTracker(cfg.SeqCacheSize),
		stats:   Stats{Failures: make(map[Class]uint64)},
	}, nil
}

// Stats returns a copy of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Failures = make(map[Class]uint64, len(c.stats.Failures))
	for k, v := range c.stats.Failures {
		s.Failures[k] = v
	}
	return s
}

func (c *Client) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// request is one logical call, perhaps sent several times.
type request struct {
	method, path string
	body         []byte // nil: no body
	// safe: repeating the request cannot duplicate its effect (a c2c or
	// group message with its msg_seq, GET, PUT, DELETE, a plain upload).
	safe bool
	// callbackAppID adds X-Callback-AppID (interaction ACKs).
	callbackAppID bool
}

// answer is a 2xx answer.
type answer struct {
	status   int
	body     []byte
	traceID  string
	attempts int
	// pending: accepted asynchronously (201/202, or an audit code).
	pending bool
	auditID string
}

// call sends r, retrying as its failures allow: a token refusal once
// after a refetch; rate limits always; other temporary failures when r is
// safe or Config.RetryAmbiguous is set, or when the request never left.
// A retry sends the same bytes. The error is an *APIError, a transport
// error matching ErrTransient, or the context's error.
func (c *Client) call(ctx context.Context, r *request) (*answer, int, error) {
	var (
		b            backoff.BackOff
		tokenRetried bool
		retries      int
	)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, attempt - 1, fmt.Errorf("openapi: %s %s: %w", r.method, r.path, err)
		}
		token, err := c.cfg.Tokens.Token(ctx)
		if err != nil {
			return nil, attempt - 1, fmt.Errorf("openapi: %s %s: access token: %w", r.method, r.path, err)
		}
		a, err := c.attempt(ctx, r, token)
		if err == nil {
			a.attempts = attempt
			return a, attempt, nil
		}
		if ctx.Err() != nil {
			return nil, attempt, fmt.Errorf("openapi: %s %s: %w (last attempt: %v)", r.method, r.path, ctx.Err(), err)
		}
		var (
			ae      *APIError
			te      *transportError
			wait    time.Duration
			retry   bool
			isToken bool
		)
		switch {
		case errors.As(err, &ae):
			switch ae.Class() {
			case ClassToken:
				isToken = !tokenRetried
			case ClassRateLimited:
				retry, wait = true, ae.RetryAfter
			case ClassTransient:
				retry = r.safe || c.cfg.RetryAmbiguous
			}
		case errors.As(err, &te):
			retry = r.safe || c.cfg.RetryAmbiguous || !te.sent
		}
		if isToken {
			tokenRetried = true
			c.refreshToken(ctx, token)
			c.count(func(s *Stats) { s.Retries++; s.TokenRefetches++ })
			c.log.Debug().Str("path", r.path).Int("code", ae.EffectiveCode()).Str("trace_id", ae.TraceID).
				Msg("token refused; fetching a new one and retrying")
			continue
		}
		if !retry || retries >= c.cfg.MaxRetries {
			return nil, attempt, err
		}
		if b == nil {
			b = c.cfg.Backoff()
		}
		d := b.NextBackOff()
		if d == backoff.Stop {
			return nil, attempt, err
		}
		retries++
		wait = max(wait, d)
		c.count(func(s *Stats) { s.Retries++ })
		c.log.Debug().Err(err).Str("path", r.path).Int("attempt", attempt).Dur("wait", wait).Msg("retrying")
		if serr := sleep(ctx, wait); serr != nil {
			return nil, attempt, fmt.Errorf("openapi: %s %s: %w (last attempt: %v)", r.method, r.path, serr, err)
		}
	}
}

// refreshToken makes the next Token call return a new token, unless
// another caller already replaced the refused one.
func (c *Client) refreshToken(ctx context.Context, refused string) {
	if cur, err := c.cfg.Tokens.Token(ctx); err == nil && cur != refused {
		return
	}
	c.cfg.Tokens.Invalidate()
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt sends r once.
func (c *Client) attempt(ctx context.Context, r *request, token string) (*answer, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, c.cfg.BaseURL+r.path, body)
	if err != nil {
		return nil, invalid("build request %s %s: %v", r.method, r.path, err)
	}
	req.Header.Set("Authorization", tokenPrefix+token)
	req.Header.Set("X-Union-Appid", c.cfg.AppID)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if r.callbackAppID {
		req.Header.Set("X-Callback-AppID", c.cfg.AppID)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, &transportError{method: r.method, path: r.path, err: stripURL(err), sent: !notSent(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, &transportError{method: r.method, path: r.path, err: fmt.Errorf("read answer: %w", stripURL(err)), sent: true}
	}
	ae := wire.ParseAPIAnswer(resp.StatusCode, resp.Header.Get(wire.TraceIDHeader), raw)
	code := ae.EffectiveCode()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok && ClassOf(resp.StatusCode, code) == ClassPendingAudit {
		return &answer{status: resp.StatusCode, body: raw, traceID: ae.TraceID, pending: true, auditID: ae.AuditID}, nil
	}
	if ok && code == 0 {
		return &answer{status: resp.StatusCode, body: raw, traceID: ae.TraceID}, nil
	}
	ae.Request = c.requestName(r.method, r.path)
	ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	if ae.Message == "" {
		ae.Message = http.StatusText(resp.StatusCode)
		if len(raw) > 0 && json.Unmarshal(raw, &struct{}{}) != nil { // not a JSON object
			ae.Message += ": " + truncate(string(raw), 200)
		}
	}
	return nil, ae
}

// requestName names a request in an [*APIError]: "POST
// https://host/v2/…", the query string left out.
func (c *Client) requestName(method, path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return method + " " + c.cfg.BaseURL + path
}

// stripURL drops the *url.Error wrapper, whose text repeats the URL.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After of whole seconds, capped at a minute.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, time.Minute)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// flexInt decodes a JSON number or a string holding one; anything else is 0.
type flexInt int

// UnmarshalJSON never fails: a code the client cannot read counts as 0.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		*f = 0
		return nil
	}
	*f = flexInt(n)
	return nil
}

// Do is the escape hatch: it sends any OpenAPI request with the client's
// headers, token handling and retries, and decodes the answer into out.
//
// path is relative to Config.BaseURL ("/v2/users/…/messages", a query
// allowed); absolute URLs are refused, so the token never leaves for
// another host. in nil sends no body; []byte and json.RawMessage are sent
// as they are; anything else is encoded as JSON. out nil discards the
// answer.
//
// GET, HEAD, PUT and DELETE are retried after any temporary failure; POST
// and PATCH only after failures that prove nothing happened (rate limits,
// token refusals, a failed dial), unless Config.RetryAmbiguous is set. An
// answer held for audit returns an *APIError matching ErrPendingAudit.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	method = strings.ToUpper(strings.TrimSpace(method))
	if method == "" || strings.ContainsAny(method, " \r\n\t") {
		return invalid("bad method %q", method)
	}
	if err := checkPath(path); err != nil {
		return err
	}
	var body []byte
	switch v := in.(type) {
	case nil:
	case []byte:
		body = v
	case json.RawMessage:
		body = v
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return invalid("encode request body: %v", err)
		}
		body = b
	}
	safe := method == http.MethodGet || method == http.MethodHead || method == http.MethodPut || method == http.MethodDelete
	a, _, err := c.call(ctx, &request{method: method, path: path, body: body, safe: safe})
	if err != nil {
		c.failed(err, method, path)
		return err
	}
	if a.pending {
		return &APIError{Status: a.status, Code: CodeAuditPending, Message: "message pending audit",
			TraceID: a.traceID, Request: c.requestName(method, path), AuditID: a.auditID}
	}
	if out == nil || len(bytes.TrimSpace(a.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("openapi: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// checkPath accepts an absolute path on the base URL's host.
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return invalid("path %q must start with a single /", path)
	}
	u, err := url.Parse(path)
	if err != nil {
		return invalid("path %q: %v", path, err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil {
		return invalid("path %q must be relative to the base URL", path)
	}
	if strings.ContainsAny(path, " \r\n\t#") {
		return invalid("path %q contains whitespace or a fragment", path)
	}
	return nil
}

// failed counts and logs a call's final failure.
func (c *Client) failed(err error, method, path string) {
	class := Classify(err)
	c.count(func(s *Stats) { s.Failures[class]++ })
	ev := c.log.Warn().Str("class", string(class)).Str("method", method).Str("path", path)
	var ae *APIError
	if errors.As(err, &ae) {
		ev = ev.Int("status", ae.Status).Int("code", ae.EffectiveCode()).Str("trace_id", ae.TraceID)
	}
	ev.Err(err).Msg("openapi call failed")
}

// pathID validates one id of a path and escapes it.
func pathID(what, id string) (string, error) {
	if id == "" {
		return "", invalid("%s is empty", what)
	}
	if id == "." || id == ".." || strings.ContainsAny(id, "/\\?#%\r\n\t \x00") {
		return "", invalid("%s %q contains characters no id has", what, truncate(id, 64))
	}
	return url.PathEscape(id), nil
}
