package gatewaytest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/qqgate/qqgate/webhook"
	"github.com/qqgate/qqgate/wire"
)

// WebhookOptions configure a WebhookPlatform.
type WebhookOptions struct {
	// URL is the bot's callback URL. Required.
	URL string
	// AppID and Secret are the bot's; the secret derives the signing key.
	AppID, Secret string
	// Client sends the requests; nil means a client of its own (closed by
	// Close). Give one that trusts the bot's TLS certificate for https.
	Client *http.Client
	// AckTimeout is how long a push waits for its answer before it counts
	// as not acknowledged (and is retried); zero means 5s.
	AckTimeout time.Duration
	// Retries is how often a push not acknowledged with a 200 is sent
	// again with the same envelope id; zero means 3, as the platform.
	// Negative means none.
	Retries int
	// Now is the clock of the X-Signature-Timestamp header; nil means
	// time.Now.
	Now func() time.Time
}

// WebhookPlatform plays the platform's webhook side against a bot's
// callback URL: it validates the URL with op 13 (checking the signature),
// pushes signed events, retries a push without a timely 200 with the same
// envelope id, can misbehave (bad or missing signatures, stale
// timestamps, other app ids), and records every request and answer.
type WebhookPlatform struct {
	opts   WebhookOptions
	key    ed25519.PrivateKey
	client *http.Client
	own    bool

	mu       sync.Mutex
	n        uint64
	attempts []WebhookAttempt
}

// WebhookAttempt is one request the platform sent and what came back.
type WebhookAttempt struct {
	ID     string // envelope id ("" for op 13)
	Op     int
	Try    int    // 1 for the first delivery, 2.. for retries
	Status int    // HTTP status, 0 when no answer came
	Body   []byte // the answer's body
	Err    error  // transport error or timeout
}

// PushFault makes one push misbehave.
type PushFault struct {
	BadSignature bool          // sign with another key
	NoSignature  bool          // send no signature headers
	StaleBy      time.Duration // timestamp this far in the past
	AppID        string        // send this X-Bot-Appid instead of the bot's
	NoAppID      bool          // send no X-Bot-Appid
	ID           string        // use this envelope id
	// Deliveries sends the push this many times in all (at least 1)
	// whatever the answers: the platform repeating a push whose 200 came
	// too late for it. Retries of unacknowledged pushes come on top.
	Deliveries int
}

// PushResult is what a push got.
type PushResult struct {
	ID       string           // the envelope id
	Body     []byte           // the request body sent
	Acked    bool             // some delivery got a 200 with {"op":12,...}
	Attempts []WebhookAttempt // every delivery, retries included
}

// NewWebhookPlatform returns a platform for the bot at opts.URL.
func NewWebhookPlatform(opts WebhookOptions) (*WebhookPlatform, error) {
	if opts.URL == "" {
		return nil, errors.New("gatewaytest: webhook platform needs the callback URL")
	}
	key, err := webhook.KeyFromSecret(opts.Secret)
	if err != nil {
		return nil, err
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 5 * time.Second
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &WebhookPlatform{opts: opts, key: key, client: opts.Client}
	if p.client == nil {
		p.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		p.own = true
	}
	return p, nil
}

// Close releases the platform's own HTTP connections.
func (p *WebhookPlatform) Close() {
	if p.own {
		p.client.CloseIdleConnections()
	}
}

// Attempts returns every request sent so far, in order.
func (p *WebhookPlatform) Attempts() []WebhookAttempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]WebhookAttempt(nil), p.attempts...)
}

// ErrValidation is returned by Validate when the bot's answer is wrong.
var ErrValidation = errors.New("gatewaytest: webhook validation failed")

// Validate sends an op 13 validation (signed, as botgo expects; unsigned
// with signed false) and checks the answer: HTTP 200, the same
// plain_token, and a signature of event_ts+plain_token by the bot's key.
func (p *WebhookPlatform) Validate(ctx context.Context, signed bool) error {
	var tok [10]byte
	_, _ = rand.Read(tok[:])
	plain := hex.EncodeToString(tok[:])
	ts := strconv.FormatInt(p.opts.Now().Unix(), 10)
	body, _ := json.Marshal(map[string]any{"op": webhook.OpValidation, "d": map[string]string{"plain_token": plain, "event_ts": ts}})
	fault := PushFault{}
	if !signed {
		fault.NoSignature = true
	}
	a := p.send(ctx, "", webhook.OpValidation, 1, body, fault)
	if a.Err != nil {
		return a.Err
	}
	if a.Status != http.StatusOK {
		return fmt.Errorf("%w: HTTP %d: %s", ErrValidation, a.Status, bytes.TrimSpace(a.Body))
	}
	var ans struct {
		PlainToken string `json:"plain_token"`
		Signature  string `json:"signature"`
	}
	if err := json.Unmarshal(a.Body, &ans); err != nil {
		return fmt.Errorf("%w: answer is not JSON: %v", ErrValidation, err)
	}
	if ans.PlainToken != plain {
		return fmt.Errorf("%w: plain_token %q, sent %q", ErrValidation, ans.PlainToken, plain)
	}
	if !webhook.Verify(p.key.Public().(ed25519.PublicKey), ans.Signature, ts, []byte(plain)) {
		return fmt.Errorf("%w: the signature does not verify", ErrValidation)
	}
	return nil
}

// PushMessage pushes eventType with a realistic body (the bodies of
// Session.EmitMessage), signed, with a fresh envelope id "<t>:<hex>".
func (p *WebhookPlatform) PushMessage(ctx context.Context, eventType string, fault PushFault) (PushResult, error) {
	p.mu.Lock()
	p.n++
	n := p.n
	p.mu.Unlock()
	body, err := messageBody(eventType, p.opts.AppID, wire.User{ID: "bot", Username: "bot", Bot: true}, n, p.opts.Now())
	if err != nil {
		return PushResult{}, err
	}
	d, err := json.Marshal(body)
	if err != nil {
		return PushResult{}, err
	}
	return p.Push(ctx, eventType, d, fault), nil
}

// Push sends an op 0 push of type t with d as its data, signed unless the
// fault says otherwise, and retries it (same envelope id, newly signed)
// while no delivery got a 200, up to Retries times.
func (p *WebhookPlatform) Push(ctx context.Context, t string, d json.RawMessage, fault PushFault) PushResult {
	id := fault.ID
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = t + ":" + hex.EncodeToString(b[:])
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `{"id":%q,"op":0,"d":`, id)
	buf.Write(d)
	fmt.Fprintf(&buf, `,"t":%q}`, t)
	res := PushResult{ID: id, Body: buf.Bytes()}
	deliveries := max(fault.Deliveries, 1)
	try := 0
	for i := 0; i < deliveries; i++ {
		try++
		a := p.send(ctx, id, webhook.OpDispatch, try, res.Body, fault)
		res.Attempts = append(res.Attempts, a)
		res.Acked = res.Acked || acked(a)
	}
	for r := 0; !res.Acked && r < p.opts.Retries && ctx.Err() == nil; r++ {
		try++
		a := p.send(ctx, id, webhook.OpDispatch, try, res.Body, fault)
		res.Attempts = append(res.Attempts, a)
		res.Acked = acked(a)
	}
	return res
}

func acked(a WebhookAttempt) bool {
	if a.Err != nil || a.Status != http.StatusOK {
		return false
	}
	var ack struct {
		Op int `json:"op"`
	}
	return json.Unmarshal(a.Body, &ack) == nil && ack.Op == webhook.OpAck
}

// send makes one delivery and records it.
func (p *WebhookPlatform) send(ctx context.Context, id string, op, try int, body []byte, fault PushFault) WebhookAttempt {
	a := WebhookAttempt{ID: id, Op: op, Try: try}
	defer func() {
		p.mu.Lock()
		p.attempts = append(p.attempts, a)
		p.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, p.opts.AckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.URL, bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "QQBot-Callback")
	switch {
	case fault.NoAppID:
	case fault.AppID != "":
		req.Header.Set(webhook.HeaderAppID, fault.AppID)
	default:
		req.Header.Set(webhook.HeaderAppID, p.opts.AppID)
	}
	if !fault.NoSignature {
		ts := strconv.FormatInt(p.opts.Now().Add(-fault.StaleBy).Unix(), 10)
		key := p.key
		if fault.BadSignature {
			_, key, _ = ed25519.GenerateKey(rand.Reader)
		}
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, webhook.Sign(key, ts, body))
		req.Header.Set("X-Signature-Method", "Ed25519")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		a.Err = err
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	a.Body, a.Err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return a
}
