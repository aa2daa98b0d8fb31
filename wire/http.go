package wire

import (
	"bytes"
	"encoding/json"
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
