package gatewaytest

import (
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// Error codes of the token endpoint and the OpenAPI.
const (
	CodeTooManyRequests = 100001 // "Too many requests"
	CodeAppIDInvalid    = 100007 // "appid invalid": no JSON content type, or a bad body
	CodeInvalidSecret   = 100016 // "invalid appid or secret"
	CodeTokenInvalid    = 11244  // "token expired or invalid", HTTP 401 on /gateway
)

// token is one issued access token.
type token struct {
	value   string
	appID   string
	expires time.Time
	revoked bool
}

// httpFailure is a scripted answer of an HTTP endpoint.
type httpFailure struct {
	status  int
	code    int
	message string
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":500,"message":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, wire.APIError{Code: 405, Message: "method not allowed"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return
	}
	s.mu.Lock()
	s.tokenFetches++
	s.notifyLocked()
	var fail *httpFailure
	if len(s.tokenFails) > 0 {
		f := s.tokenFails[0]
		s.tokenFails = s.tokenFails[1:]
		fail = &f
	}
	s.mu.Unlock()
	if fail != nil {
		writeJSON(w, fail.status, wire.APIError{Code: fail.code, Message: fail.message})
		return
	}

	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var req wire.TokenRequest
	if err != nil || mt != "application/json" || json.Unmarshal(body, &req) != nil {
		writeJSON(w, http.StatusOK, wire.APIError{Code: CodeAppIDInvalid, Message: "appid invalid"})
		return
	}
	secret, ok := s.apps[req.AppID]
	if !ok || secret != req.ClientSecret {
		writeJSON(w, http.StatusOK, wire.APIError{Code: CodeInvalidSecret, Message: "invalid appid or secret"})
		return
	}
	now := time.Now()
	s.mu.Lock()
	t := s.issueTokenLocked(req.AppID, now)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, wire.TokenResponse{AccessToken: t.value, ExpiresIn: expiresIn(t, now)})
}

// expiresIn is the token's remaining life in whole seconds, rounded up,
// at least 1.
func expiresIn(t *token, now time.Time) wire.Seconds {
	secs := int64(math.Ceil(t.expires.Sub(now).Seconds()))
	return wire.Seconds(max(secs, 1))
}

// issueTokenLocked returns the app's current token, or a new one when there
// is none or it is in its refresh window.
func (s *Server) issueTokenLocked(appID string, now time.Time) *token {
	window := min(time.Minute, s.opts.TokenTTL/2)
	if t := s.current[appID]; t != nil && !t.revoked && t.expires.Sub(now) > window {
		return t
	}
	t := &token{value: randomHex(24), appID: appID, expires: now.Add(s.opts.TokenTTL)}
	s.tokens[t.value] = t
	s.current[appID] = t
	s.notifyLocked()
	return t
}

// tokenAppLocked returns the app of a valid (issued, unrevoked, unexpired)
// token.
func (s *Server) tokenAppLocked(value string) (string, bool) {
	t := s.tokens[value]
	if t == nil || t.revoked || !time.Now().Before(t.expires) {
		return "", false
	}
	return t.appID, true
}

func (s *Server) serveGateway(bot bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeJSON(w, http.StatusMethodNotAllowed, wire.APIError{Code: 405, Message: "method not allowed"})
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.gwFetches++
		s.notifyLocked()
		if len(s.gwFails) > 0 {
			f := s.gwFails[0]
			s.gwFails = s.gwFails[1:]
			writeJSON(w, f.status, wire.APIError{Code: f.code, Message: f.message})
			return
		}
		value, ok := strings.CutPrefix(r.Header.Get("Authorization"), wire.TokenPrefix)
		if _, valid := s.tokenAppLocked(value); !ok || !valid {
			writeJSON(w, http.StatusUnauthorized, wire.APIError{Code: CodeTokenInvalid, Message: "token expired or invalid"})
			return
		}
		gw := wire.Gateway{URL: s.WebSocketURL()}
		if bot {
			limit := s.startLimit
			gw.Shards = s.opts.Shards
			gw.SessionStartLimit = &limit
		}
		writeJSON(w, http.StatusOK, gw)
	}
}

// Token returns a valid access token for appID as the token endpoint would
// (the same one while it is valid), without counting a fetch. It returns ""
// for an app that is not in Options.Apps.
func (s *Server) Token(appID string) string {
	if _, ok := s.apps[appID]; !ok {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueTokenLocked(appID, time.Now()).value
}

// RevokeTokens invalidates every token issued so far: the HTTP endpoints
// answer 401 and IDENTIFY/RESUME close 4004 until a new token is fetched.
// Live sessions are not affected.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
	clear(s.current)
	s.notifyLocked()
}

// TokenFetches counts the requests to the token endpoint, failed ones
// included.
func (s *Server) TokenFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenFetches
}

// GatewayFetches counts the GET requests to /gateway and /gateway/bot,
// failed ones included.
func (s *Server) GatewayFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gwFetches
}

// FailNextTokens makes the next n token requests answer HTTP 200 with
// {"code":code,"message":msg}, before any other check (for example
// FailNextTokens(1, CodeTooManyRequests, "Too many requests")).
func (s *Server) FailNextTokens(n int, code int, msg string) {
	s.FailNextTokensStatus(n, http.StatusOK, code, msg)
}

// FailNextTokensStatus is FailNextTokens with a chosen HTTP status.
func (s *Server) FailNextTokensStatus(n int, status, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.tokenFails = append(s.tokenFails, httpFailure{status, code, msg})
	}
}

// FailNextGateways makes the next n requests to /gateway or /gateway/bot
// answer status with {"code":code,"message":msg}, before the token check.
func (s *Server) FailNextGateways(n int, status, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.gwFails = append(s.gwFails, httpFailure{status, code, msg})
	}
}

// SessionStartLimit returns /gateway/bot's current session_start_limit.
func (s *Server) SessionStartLimit() wire.SessionStartLimit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLimit
}

// SetSessionStartLimit replaces /gateway/bot's session_start_limit.
func (s *Server) SetSessionStartLimit(l wire.SessionStartLimit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLimit = l
	s.notifyLocked()
}
