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
	CodeTooManyRequests = wire.CodeTooManyRequests // "Too many requests"
	CodeAppIDInvalid    = wire.CodeAppIDInvalid    // "appid invalid": no JSON content type, or a bad body
	CodeInvalidSecret   = wire.CodeInvalidSecret   // "invalid appid or secret"
	CodeTokenInvalid    = wire.CodeTokenExpired    // "token not exist or expire", HTTP 401 on /gateway
)

// TokenRenewWindow is the last part of a token's life in which the token
// endpoint issues a new token instead of returning the current one (for a
// TokenTTL under two minutes, the last half of its life).
const TokenRenewWindow = time.Minute

// token is one issued access token.
type token struct {
	value   string
	appID   string
	expires time.Time
	revoked bool
}

// httpFailure is a scripted answer of an HTTP endpoint: an error body, or
// raw bytes when contentType is set.
type httpFailure struct {
	status      int
	code        int
	message     string
	contentType string
	body        string
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

// writeAPIError answers an error as the platform does: the body
// {"message","code","err_code","trace_id"}, the trace id also in the
// X-Tps-trace-ID header.
func (s *Server) writeAPIError(w http.ResponseWriter, status, code int, msg string) {
	trace := s.newTraceID()
	w.Header().Set(wire.TraceIDHeader, trace)
	writeJSON(w, status, wire.APIError{Message: msg, Code: code, ErrCode: code, TraceID: trace})
}

// writeFailure writes a scripted failure.
func (s *Server) writeFailure(w http.ResponseWriter, f httpFailure) {
	if f.contentType == "" {
		s.writeAPIError(w, f.status, f.code, f.message)
		return
	}
	w.Header().Set(wire.TraceIDHeader, s.newTraceID())
	w.Header().Set("Content-Type", f.contentType)
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

// newTraceID returns a fresh trace id and remembers it as the last one.
func (s *Server) newTraceID() string {
	trace := randomHex(16)
	s.mu.Lock()
	s.lastTrace = trace
	s.mu.Unlock()
	return trace
}

// LastTraceID returns the trace id of the last error answer of the HTTP
// endpoints, "" before any.
func (s *Server) LastTraceID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastTrace
}

// now is the server's clock: Options.Now, or time.Now.
func (s *Server) now() time.Time { return s.opts.Now() }

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.writeAPIError(w, http.StatusMethodNotAllowed, 405, "method not allowed")
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
		s.writeFailure(w, *fail)
		return
	}

	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var req wire.TokenRequest
	if err != nil || mt != "application/json" || json.Unmarshal(body, &req) != nil {
		s.writeAPIError(w, http.StatusOK, CodeAppIDInvalid, "appid invalid")
		return
	}
	secret, ok := s.apps[req.AppID]
	if !ok || secret != req.ClientSecret {
		s.writeAPIError(w, http.StatusOK, CodeInvalidSecret, "invalid appid or secret")
		return
	}
	now := s.now()
	s.mu.Lock()
	t := s.issueTokenLocked(req.AppID, now)
	s.mu.Unlock()
	in := expiresIn(t, now)
	if s.opts.TokenExpiresInFull {
		in = wire.Seconds(s.opts.TokenTTL / time.Second)
	}
	writeJSON(w, http.StatusOK, wire.TokenResponse{AccessToken: t.value, ExpiresIn: in})
}

// expiresIn is the token's remaining life in whole seconds, rounded up,
// at least 1.
func expiresIn(t *token, now time.Time) wire.Seconds {
	secs := int64(math.Ceil(t.expires.Sub(now).Seconds()))
	return wire.Seconds(max(secs, 1))
}

// issueTokenLocked returns the app's current token, or a new one when there
// is none, it was revoked or expired, or it is in its last TokenRenewWindow.
// A token replaced that way stays valid until it expires.
func (s *Server) issueTokenLocked(appID string, now time.Time) *token {
	window := min(TokenRenewWindow, s.opts.TokenTTL/2)
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
	if t == nil || t.revoked || !s.now().Before(t.expires) {
		return "", false
	}
	return t.appID, true
}

func (s *Server) serveGateway(bot bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			s.writeAPIError(w, http.StatusMethodNotAllowed, 405, "method not allowed")
			return
		}
		s.mu.Lock()
		s.gwFetches++
		s.notifyLocked()
		if len(s.gwFails) > 0 {
			f := s.gwFails[0]
			s.gwFails = s.gwFails[1:]
			s.mu.Unlock()
			s.writeFailure(w, f)
			return
		}
		value, ok := strings.CutPrefix(r.Header.Get("Authorization"), wire.TokenPrefix)
		if _, valid := s.tokenAppLocked(value); !ok || !valid {
			s.mu.Unlock()
			s.writeAPIError(w, http.StatusUnauthorized, CodeTokenInvalid, "token not exist or expire")
			return
		}
		defer s.mu.Unlock()
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
	return s.issueTokenLocked(appID, s.now()).value
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

// Failure is a scripted answer of an HTTP endpoint, given instead of the
// real one: by default the platform's error body
// {"message":Message,"code":Code,"err_code":Code,"trace_id":…}; with
// ContentType set, Body as it is (an HTML error page, say).
type Failure struct {
	// Status is the HTTP status; 0 means 200, the status the token
	// endpoint answers its errors with.
	Status int
	// Code and Message fill the error body.
	Code    int
	Message string
	// ContentType, when set, sends Body with that content type instead of
	// the error body.
	ContentType string
	Body        string
}

func (f Failure) httpFailure() httpFailure {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	return httpFailure{status: status, code: f.Code, message: f.Message, contentType: f.ContentType, body: f.Body}
}

// FailNextTokens makes the next n token requests answer f, before any
// other check (for example Failure{Code: CodeTooManyRequests, Message:
// "Too many requests"}).
func (s *Server) FailNextTokens(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.tokenFails = append(s.tokenFails, f.httpFailure())
	}
}

// FailNextGateways makes the next n requests to /gateway or /gateway/bot
// answer f, before the token check.
func (s *Server) FailNextGateways(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.gwFails = append(s.gwFails, f.httpFailure())
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
