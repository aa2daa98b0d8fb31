// Package handler holds the event handlers of the qqgate runner: JSON lines
// on stdout, a command run per event (exec), and a POST per event (http).
// Each implements event.Handler.
//
// # Delivery
//
// The client commits an event's seq once HandleEvent returns, so a handler
// made by New returns only when the event was delivered, or when its
// bounded retries are exhausted (it then returns an error naming the cause,
// which the client logs and counts), or when the context passed to
// HandleEvent ends (the client is shutting down hard; the error wraps
// ctx.Err()). An event is never dropped silently.
//
// The event's account id, type and envelope id also go into an exec
// command's environment and an http request's headers, as MetaValue gives
// them: as they are, or Go-quoted when they hold a character those cannot
// carry (a NUL, a line break), so that no gateway-chosen value makes an
// event undeliverable.
//
// Failed attempts are retried after an exponential backoff (Options.Backoff)
// up to Spec.Retries times. An attempt that panics is a failed attempt (its
// error is a *PanicError, matching ErrPanic): it is retried, logged with its
// stack, and the event never counts as delivered. Handlers are safe for concurrent use; the exec
// handler bounds the commands it runs at once with Spec.Concurrency.
package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/resume"
)

// Handler types, the values of Spec.Type.
const (
	TypeStdout = "stdout"
	TypeExec   = "exec"
	TypeHTTP   = "http"
)

// Defaults of Spec and Options: each field documents which of these its zero
// value means.
const (
	DefaultExecTimeout    = 10 * time.Second
	DefaultHTTPTimeout    = 5 * time.Second
	DefaultConcurrency    = 1
	DefaultRetries        = 3
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultBackoffJitter  = 0.5
)

// Line returns the JSON form of ev, without a trailing newline:
//
//	{"account":…,"seq":…,"type":…,"id":…,"data":{…}}
//
// data is the raw d, compacted (so the line holds no line break), or null
// when it is empty; the line is byte for byte what encoding/json's Marshal
// writes for these five fields, HTML-safe escapes included. It is one line
// of the stdout handler, the stdin of an exec command and the body of an
// http POST. Line fails only when ev.Data is not valid JSON.
func Line(ev event.Event) ([]byte, error) {
	b, err := appendLine(make([]byte, 0, lineSize(ev)), ev)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Spec describes one handler: the YAML `handler:` block of the runner's
// configuration.
type Spec struct {
	// Type is TypeStdout, TypeExec or TypeHTTP. Zero means TypeStdout.
	Type string `yaml:"type" json:"type,omitempty"`
	// Command is the argv of an exec handler (required for exec, refused
	// for the others). Command[0] is looked up in PATH unless it contains
	// a slash.
	Command []string `yaml:"command" json:"command,omitempty"`
	// URL is the target of an http handler (required for http, refused for
	// the others): https anywhere, plain http only on a loopback host.
	URL string `yaml:"url" json:"url,omitempty"`
	// Timeout bounds one attempt. Zero means DefaultExecTimeout for exec
	// and DefaultHTTPTimeout for http; the stdout handler has none.
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
	// Concurrency bounds the commands an exec handler runs at once. Zero
	// means DefaultConcurrency. Refused for the other types.
	Concurrency int `yaml:"concurrency" json:"concurrency,omitempty"`
	// Retries is how many attempts follow a failed first one. Zero means
	// DefaultRetries; negative means none.
	Retries int `yaml:"retries" json:"retries,omitempty"`
	// Headers are extra request headers of an http handler. They never
	// appear in logs or errors. The headers qqgate sets itself
	// (Content-Type, Content-Length, Host, X-QQGate-*) are refused.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// Reply switches replies on: ReplyText or ReplyJSON make the
	// handler's output (an exec command's stdout, an http response's
	// body) messages sent back where the event came from, through
	// Options.Replier. Zero (or ReplyOff) means no replies: the output is
	// diagnostics. Refused for stdout.
	Reply string `yaml:"reply" json:"reply,omitempty"`
}

// Values of Spec.Reply.
const (
	ReplyOff  = "off"
	ReplyText = "text"
	ReplyJSON = "json"
)

// replies reports whether s has replies on.
func (s Spec) replies() bool { return s.Reply == ReplyText || s.Reply == ReplyJSON }

// kind is s.Type with the default applied.
func (s Spec) kind() string {
	if s.Type == "" {
		return TypeStdout
	}
	return s.Type
}

// retries is s.Retries with the default applied.
func (s Spec) retries() int {
	switch {
	case s.Retries == 0:
		return DefaultRetries
	case s.Retries < 0:
		return 0
	}
	return s.Retries
}

// String describes the handler for logs and errors, without headers or the
// URL's query and password.
func (s Spec) String() string {
	switch s.kind() {
	case TypeExec:
		if len(s.Command) > 0 {
			return fmt.Sprintf("exec %q", s.Command[0])
		}
		return "exec"
	case TypeHTTP:
		return "http " + redactURL(s.URL)
	}
	return s.kind()
}

// Validate checks s without I/O: a known type, the fields that type needs
// and no field of another type, no negative timeout or concurrency, an
// absolute http(s) URL (plain http only on loopback), and well-formed
// headers. The error names the offending field.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("handler: "+format, args...))
	}
	k := s.kind()
	switch k {
	case TypeStdout, TypeExec, TypeHTTP:
	default:
		bad("unknown type %q (use stdout, exec or http)", s.Type)
	}
	if s.Timeout < 0 {
		bad("timeout %v is negative", s.Timeout)
	}
	if s.Concurrency < 0 {
		bad("concurrency %d is negative", s.Concurrency)
	}
	if k == TypeExec {
		if len(s.Command) == 0 || s.Command[0] == "" {
			bad("type exec needs a command")
		}
	} else {
		if len(s.Command) > 0 {
			bad("command is only for type exec, not %s", k)
		}
		if s.Concurrency != 0 {
			bad("concurrency is only for type exec, not %s", k)
		}
	}
	switch s.Reply {
	case "", ReplyOff:
	case ReplyText, ReplyJSON:
		if k == TypeStdout {
			bad("reply is for exec and http handlers, not stdout")
		}
	default:
		bad("unknown reply %q (use text, json or off)", s.Reply)
	}
	if k == TypeHTTP {
		if err := checkURL(s.URL); err != nil {
			errs = append(errs, err)
		}
		for name, value := range s.Headers {
			if err := checkHeader(name, value); err != nil {
				errs = append(errs, err)
			}
		}
	} else {
		if s.URL != "" {
			bad("url is only for type http, not %s", k)
		}
		if len(s.Headers) > 0 {
			bad("headers are only for type http, not %s", k)
		}
	}
	return errors.Join(errs...)
}

// checkURL accepts https anywhere and http on loopback.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("handler: type http needs a url")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("handler: url %q is not an absolute URL", redactURL(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("handler: url %q: plain http is accepted only on loopback; use https", redactURL(raw))
	}
	return fmt.Errorf("handler: url %q: scheme must be http or https", redactURL(raw))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops the password, query and fragment of raw so that it can
// be logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.Redacted()
}

// checkHeader refuses malformed headers and those qqgate sets itself. The
// value is never part of the error.
func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("handler: empty header name")
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return fmt.Errorf("handler: header name %q is not a valid token", name)
		}
	}
	c := http.CanonicalHeaderKey(name)
	switch {
	case c == "Content-Type", c == "Content-Length", c == "Host", c == "Transfer-Encoding",
		strings.HasPrefix(c, "X-Qqgate-"):
		return fmt.Errorf("handler: header %s is set by qqgate", c)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("handler: header %s: value holds a line break or NUL", c)
	}
	return nil
}

// Backoff tunes the wait between attempts: exponential, factor 2. It is
// the one backoff configuration of qqgate, the client's reconnects'
// included. Zero fields mean DefaultBackoffInitial, DefaultBackoffMax and
// DefaultBackoffJitter; a negative Jitter means none.
type Backoff = resume.Backoff

// defaultBackoff is the handlers' retry backoff.
var defaultBackoff = Backoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax, Jitter: DefaultBackoffJitter}

// Options are what a handler gets from the runner rather than from its
// Spec.
type Options struct {
	// Stdout receives the stdout handler's lines. Pass one *Stdout (see
	// NewStdout) to every account writing to the same stream so that their
	// lines never interleave, and the lines of accounts that meet the
	// stream busy go out together in one write. Another io.Writer is wrapped in a *Stdout of
	// its own. Zero means a process-wide *Stdout writing to os.Stdout,
	// shared by every handler made with a zero Stdout.
	Stdout io.Writer
	// Logger receives a warning per failed attempt that will be retried
	// (the final error is returned, for the client to log). Zero means
	// silent. Headers and URL queries never appear in logs.
	Logger zerolog.Logger
	// HTTPClient sends the http handler's requests; each attempt is bounded
	// by Spec.Timeout through its context. Zero means a client that does
	// not follow redirects.
	HTTPClient *http.Client
	// Sleep waits d between attempts and returns ctx's error if ctx ends
	// first. Zero means a real timer. Tests inject an instant one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Backoff tunes the waits between attempts.
	Backoff Backoff
	// HideEnv, when set, names the environment variables the exec handler
	// does not pass on to its commands (the ones holding secrets). It is
	// called for every command, so the list may grow while handlers run.
	// Zero passes the whole environment.
	HideEnv func() []string
	// OnResult, when set, is called once per event with its final outcome:
	// the attempts made, the error HandleEvent returns (nil on success) and
	// the time from the call to the outcome, retry waits included. It must
	// be safe for concurrent use.
	OnResult func(ev event.Event, attempts int, err error, took time.Duration)
	// Replier sends the replies of a handler whose Spec.Reply is on; New
	// refuses such a Spec without one. It is called once per successful
	// attempt, within the attempt: its error fails the attempt, which is
	// then retried (the command run again, the request made again).
	Replier Replier
}

// MaxOutput bounds the output a handler with replies on may answer with:
// an exec command's stdout, an http response's body. A longer output is
// handed on with Output.Truncated set, never cut silently.
const MaxOutput = 1 << 20

// Output is what one successful attempt of a handler with replies on
// answered.
type Output struct {
	// Mode is Spec.Reply: ReplyText or ReplyJSON.
	Mode string
	// From is the handler type: TypeExec or TypeHTTP.
	From string
	// Body is the command's stdout or the response's body, at most
	// MaxOutput bytes.
	Body []byte
	// Truncated: the output was longer than MaxOutput; Body holds its
	// start.
	Truncated bool
	// ContentType and Status are the http response's.
	ContentType string
	Status      int
}

// Replier sends the replies of one attempt's output to the event. A nil
// error means they were delivered, or given up on for good (logged and
// counted); an error fails the attempt.
type Replier interface {
	Reply(ctx context.Context, ev event.Event, out Output) error
}

// attempter makes one delivery attempt of an event, given its line (see
// Line), or nil when the attempter encodes the line itself.
type attempter interface {
	attempt(ctx context.Context, ev event.Event, line []byte) error
}

// New validates spec and returns its handler. For exec it also resolves
// Command[0] in PATH and fails when it is not found. New starts nothing:
// the returned handler holds no goroutine or process between calls.
func New(spec Spec, opts Options) (event.Handler, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.replies() && opts.Replier == nil {
		return nil, fmt.Errorf("handler: reply %s needs a replier (an OpenAPI client for the account)", spec.Reply)
	}
	h := &retrier{
		name:     spec.String(),
		retries:  spec.retries(),
		log:      opts.Logger,
		sleep:    opts.Sleep,
		backoff:  opts.Backoff,
		onResult: opts.OnResult,
	}
	if h.sleep == nil {
		h.sleep = sleep
	}
	switch spec.kind() {
	case TypeStdout:
		// It encodes each line straight into the buffer of its next
		// write, so the line is not encoded here first.
		h.do, h.encodes = stdoutOf(opts.Stdout), true
	case TypeExec:
		e, err := newExec(spec, opts)
		if err != nil {
			return nil, err
		}
		h.do = e
	case TypeHTTP:
		h.do = newHTTP(spec, opts)
	}
	return h, nil
}

// sleep waits d on a real timer, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retrier runs attempts until one succeeds, the retries are exhausted or
// ctx ends.
type retrier struct {
	name     string
	retries  int
	do       attempter
	encodes  bool // do encodes the line itself: attempts get a nil line
	log      zerolog.Logger
	sleep    func(context.Context, time.Duration) error
	backoff  Backoff
	onResult func(event.Event, int, error, time.Duration)
}

// ErrPanic is matched (errors.Is) by the error of an attempt that
// panicked, a *PanicError.
var ErrPanic = errors.New("handler: attempt panicked")

// PanicError is a panic of one delivery attempt, recovered. The attempt
// counts as failed: it is retried like any other failure, and the event
// never counts as delivered.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

// Error names the panic value; the stack is logged, not repeated here.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Is makes errors.Is(err, ErrPanic) hold.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// HandleEvent delivers ev, retrying failed attempts; see the package doc.
func (h *retrier) HandleEvent(ctx context.Context, ev event.Event) (err error) {
	start := time.Now()
	attempts := 0
	defer func() {
		// Attempts recover their own panics; anything else panicking here
		// is reported as a failure, never as a delivery, and goes on up.
		p := recover()
		if p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
		if h.onResult != nil {
			h.onResult(ev, attempts, err, time.Since(start))
		}
		if p != nil {
			panic(p)
		}
	}()
	var b []byte
	if !h.encodes {
		if b, err = Line(ev); err != nil {
			return err
		}
	}
	var bo *backoff.ExponentialBackOff
	for {
		attempts++
		last := h.try(ctx, ev, b)
		if last == nil {
			return nil
		}
		if errors.Is(last, ErrInvalidData) {
			// Only an attempter that encodes the line fails so, before
			// it delivered anything: no attempt was made, and a retry
			// would fail alike.
			attempts = 0
			return last
		}
		if ctx.Err() != nil {
			return h.aborted(ctx, ev, attempts, last)
		}
		if attempts > h.retries {
			return fmt.Errorf("handler %s: event %s #%d failed after %d attempts: %w", h.name, ev.Type, ev.Seq, attempts, last)
		}
		if bo == nil {
			bo = h.backoff.New(defaultBackoff)
		}
		wait := bo.NextBackOff()
		h.log.Warn().Str("account", ev.AccountID).Str("handler", h.name).Str("type", ev.Type).
			Uint64("seq", ev.Seq).Int("attempt", attempts).Dur("retry_in", wait).Err(last).
			Msg("handler attempt failed; retrying")
		if err := h.sleep(ctx, wait); err != nil {
			return h.aborted(ctx, ev, attempts, last)
		}
	}
}

// try makes one attempt; a panic is its error, a *PanicError.
func (h *retrier) try(ctx context.Context, ev event.Event, line []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			pe := &PanicError{Value: p, Stack: debug.Stack()}
			h.log.Error().Str("account", ev.AccountID).Str("handler", h.name).Str("type", ev.Type).
				Uint64("seq", ev.Seq).Str("panic", fmt.Sprint(p)).Str("stack", string(pe.Stack)).
				Msg("handler attempt panicked; counted as a failed attempt")
			err = pe
		}
	}()
	return h.do.attempt(ctx, ev, line)
}

// aborted is the error of a HandleEvent whose ctx ended.
func (h *retrier) aborted(ctx context.Context, ev event.Event, attempts int, last error) error {
	cause := ctx.Err()
	if cause == nil { // Sleep returned early on its own.
		cause = context.Canceled
	}
	return fmt.Errorf("handler %s: event %s #%d not handled, shutting down after %d attempts: %w (last attempt: %w)",
		h.name, ev.Type, ev.Seq, attempts, cause, last)
}
