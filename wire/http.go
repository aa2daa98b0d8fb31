package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TokenRequest is the body POSTed to the access-token endpoint.
type TokenRequest struct {
	AppID        string `json:"appId"`
	ClientSecret string `json:"clientSecret"`
}

// TokenResponse is the token endpoint's answer. A non-zero Code is an
// error described by Message; otherwise AccessToken and ExpiresIn are set.
type TokenResponse struct {
	AccessToken string  `json:"access_token,omitempty"`
	ExpiresIn   Seconds `json:"expires_in,omitempty"`
	Code        int     `json:"code,omitempty"`
	Message     string  `json:"message,omitempty"`
}

// Seconds is a count of seconds that decodes from a JSON number or a JSON
// string holding one (the token endpoint sends "7200"). It encodes as a
// string, the form the real endpoint uses.
type Seconds int64

// UnmarshalJSON accepts 7200, "7200" and null.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		b = []byte(str)
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("wire: expires_in %q is not a number of seconds", b)
	}
	*s = Seconds(n)
	return nil
}

// MarshalJSON writes the value as a JSON string.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(s), 10) + `"`), nil
}

// Gateway is the answer of GET /gateway and GET /gateway/bot (the latter
// adds Shards and SessionStartLimit).
type Gateway struct {
	URL               string             `json:"url"`
	Shards            int                `json:"shards,omitempty"`
	SessionStartLimit *SessionStartLimit `json:"session_start_limit,omitempty"`
}

// SessionStartLimit is the identify budget of /gateway/bot.
type SessionStartLimit struct {
	Total          int   `json:"total"`
	Remaining      int   `json:"remaining"`
	ResetAfter     int64 `json:"reset_after"` // milliseconds
	MaxConcurrency int   `json:"max_concurrency"`
}

// TraceIDHeader is the response header in which the platform returns the
// trace id of a request. Operators quote it when they ask the platform
// about a failed call.
const TraceIDHeader = "X-Tps-trace-ID"

// ErrRateLimited is matched (errors.Is) by an [APIError] that asks the
// caller to slow down: HTTP 429, code 100001, or a message saying "Too many
// requests".
var ErrRateLimited = errors.New("rate limited")

// Codes of the token endpoint and the OpenAPI that decide what a caller does.
const (
	// CodeTooManyRequests: slow down (the token endpoint's "Too many
	// requests").
	CodeTooManyRequests = 100001
	// CodeAppIDInvalid: the app id is invalid, or the bot was banned or
	// deleted; also the token endpoint's answer to a body that is not JSON.
	CodeAppIDInvalid = 100007
	// CodeInvalidSecret: the app id or the client secret is wrong.
	CodeInvalidSecret = 100016
	// CodeBotNotExist: the bot does not exist.
	CodeBotNotExist = 10004
	// CodeTokenMissing .. CodeTokenFixedDisabled: the OpenAPI refused the
	// access token (missing, check failed, invalid, expired or unknown,
	// fixed token disabled). Fetch a new token and retry once.
	CodeTokenMissing       = 11241
	CodeTokenCheckFailed   = 11242
	CodeTokenInvalid       = 11243
	CodeTokenExpired       = 11244
	CodeTokenFixedDisabled = 11245
)

// APIError is an error answer of the platform's HTTP endpoints (the
// OpenAPI and the token endpoint). The body is
// {"message","code","err_code","trace_id"}; the HTTP status, the request
// and the trace id of the [TraceIDHeader] header are added by the caller
// (see [DecodeAPIError]). Error prints the trace id, so an operator can
// quote it to the platform.
//
// Some answers fill only code, some only err_code: [APIError.EffectiveCode]
// is the one to compare.
type APIError struct {
	// Status is the HTTP status. Not part of the body.
	Status int `json:"-"`
	// Request names the request, "POST https://host/path", with any query
	// string left out. Not part of the body.
	Request string `json:"-"`

	Message string `json:"message"`
	Code    int    `json:"code"`
	ErrCode int    `json:"err_code,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
}

// DecodeAPIError returns the error an answer carries, or nil when it
// carries none (a 2xx status and no error code in the body). body may be
// anything: a JSON error body fills the fields, anything else leaves them
// zero. traceHeader is the value of the [TraceIDHeader] header; it is used
// when the body has no trace_id.
func DecodeAPIError(status int, traceHeader string, body []byte) *APIError {
	var e APIError
	if err := json.Unmarshal(body, &e); err != nil {
		e = APIError{}
	}
	if status >= 200 && status < 300 && e.EffectiveCode() == 0 {
		return nil
	}
	e.Status = status
	if e.TraceID == "" {
		e.TraceID = strings.TrimSpace(traceHeader)
	}
	return &e
}

// EffectiveCode is Code, or ErrCode when Code is 0.
func (e *APIError) EffectiveCode() int {
	if e.Code != 0 {
		return e.Code
	}
	return e.ErrCode
}

// Error gives the request, the HTTP status, the code, the message and the
// trace id, e.g. `GET https://api.sgroup.qq.com/gateway/bot: HTTP 401,
// code 11244: token not exist or expire (trace id 5f1c…)`. Control
// characters of the message and trace id are replaced and long values cut,
// so a hostile server cannot forge log lines or terminal output.
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Request != "" {
		b.WriteString(clean(e.Request, 512))
		b.WriteString(": ")
	}
	b.WriteString("HTTP ")
	b.WriteString(strconv.Itoa(e.Status))
	if c := e.EffectiveCode(); c != 0 {
		b.WriteString(", code ")
		b.WriteString(strconv.Itoa(c))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(clean(e.Message, 256))
	}
	if e.TraceID != "" {
		b.WriteString(" (trace id ")
		b.WriteString(clean(e.TraceID, 128))
		b.WriteString(")")
	}
	return b.String()
}

// Is reports ErrRateLimited for HTTP 429, code 100001 or a "Too many
// requests" message.
func (e *APIError) Is(target error) bool {
	return target == ErrRateLimited && (e.Status == http429 || e.EffectiveCode() == CodeTooManyRequests ||
		strings.Contains(strings.ToLower(e.Message), "too many requests"))
}

// TokenRejected reports whether an OpenAPI answer refused the access
// token: HTTP 401, or a code from 11241 to 11245. The caller should drop
// its cached token and fetch a new one.
func (e *APIError) TokenRejected() bool {
	c := e.EffectiveCode()
	return e.Status == http401 || (c >= CodeTokenMissing && c <= CodeTokenFixedDisabled)
}

// HTTP statuses used above, without importing net/http.
const (
	http401 = 401
	http429 = 429
)

// clean replaces control and format characters (bidi overrides included)
// and invalid UTF-8 with U+FFFD, and
// cuts s to max runes, marking a cut with "…".
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
