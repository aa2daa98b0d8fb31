package client

import (
	"errors"
	"fmt"

	"github.com/qqgate/qqgate/wire"
)

var (
	// ErrClosed is returned by Run after Close, and by a second Run.
	ErrClosed = errors.New("client: closed")
	// ErrRunning is returned by Run while another Run of the client is
	// under way.
	ErrRunning = errors.New("client: already running")
	// ErrRateLimited matches (errors.Is) token and gateway answers that ask
	// the client to slow down ("Too many requests", code 100001, HTTP 429).
	// It is wire.ErrRateLimited (and openapi.ErrRateLimited), which a
	// *wire.APIError with such an answer matches, from discovery, the
	// token endpoint or a send.
	ErrRateLimited = wire.ErrRateLimited
	// ErrBadCredentials matches (errors.Is) a token endpoint refusal of
	// the app id or secret (HTTP 401, codes 100007, 100016, 10004): the
	// only token answer that ends Run.
	ErrBadCredentials = errors.New("client: app id or secret refused")
	// ErrGaveUp is wrapped by the error Run returns when
	// Backoff.MaxAttempts connection attempts failed in a row. That error
	// is a *ConnectError, and wraps the last attempt's cause too, so
	// errors.As finds it (a *TokenError, a *GatewayError, ...).
	ErrGaveUp = errors.New("client: gave up reconnecting")
)

// CloseError is the fatal end of a connection: a close code after which
// the client must not reconnect (banned, offline, bad shard, invalid
// intents at the last level, repeated authentication failures). Run
// returns it; the session record is left as it was.
type CloseError struct {
	Code   wire.CloseCode
	Reason string // the server's close reason
	Why    string // what qqgate concluded, e.g. "no intent level left"
}

func (e *CloseError) Error() string {
	msg := fmt.Sprintf("gateway closed the connection with %s", e.Code)
	if e.Reason != "" {
		msg += fmt.Sprintf(" (%q)", e.Reason)
	}
	if e.Why != "" {
		msg += ": " + e.Why
	}
	return msg
}

// CloseCode returns the close code of a *CloseError in err's chain, or -1.
func CloseCode(err error) wire.CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// ConnectError wraps a failed connection attempt that Run gave up on.
type ConnectError struct {
	Attempt int
	Err     error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect attempt %d: %v", e.Attempt, e.Err)
}

// Unwrap returns the attempt's error.
func (e *ConnectError) Unwrap() error { return e.Err }
