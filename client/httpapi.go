package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// ErrRedirectRefused is wrapped by the error of a token request, a gateway
// discovery or a WebSocket upgrade that the server redirected to another
// origin (scheme, host or port), or to plain http or ws off loopback. The
// token request carries the client secret and the others the access token
// (or lead to the IDENTIFY that does), so they go nowhere but where they
// were configured. The error names both URLs, query strings left out.
var ErrRedirectRefused = errors.New("client: redirect refused")

// maxAPIBody bounds the answer of the token and gateway endpoints.
const maxAPIBody = 1 << 20

// maxRedirects is Go's own default limit, kept when CheckRedirect is set.
const maxRedirects = 10

// guardRedirects returns a copy of hc that refuses redirects to another
// origin, and to plain http or ws off loopback, before applying hc's own
// CheckRedirect (or Go's default limit of 10 redirects). hc itself is left
// alone: the caller may share it.
func guardRedirects(hc *http.Client) *http.Client {
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkRedirect(req, via); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return &c
}

// checkRedirect refuses a redirect from via[0]'s origin to another, and any
// redirect to plain http or ws off loopback.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	from, to := via[0].URL, req.URL
	if !sameOrigin(from, to) {
		return fmt.Errorf("%w: %s redirects to %s, another origin (scheme, host or port)",
			ErrRedirectRefused, redactURL(from), redactURL(to))
	}
	if s := strings.ToLower(to.Scheme); (s == "http" || s == "ws") && !isLoopback(to.Hostname()) {
		return fmt.Errorf("%w: %s redirects to %s, plain %s:// off loopback",
			ErrRedirectRefused, redactURL(from), redactURL(to), s)
	}
	return nil
}

// sameOrigin compares scheme, host and port, taking ws as http and wss as
// https (a WebSocket upgrade is an http request) and filling in the
// default ports.
func sameOrigin(a, b *url.URL) bool {
	sa, sb := httpScheme(a.Scheme), httpScheme(b.Scheme)
	return sa == sb && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a, sa) == port(b, sb)
}

func httpScheme(s string) string {
	switch s = strings.ToLower(s); s {
	case "ws":
		return "http"
	case "wss":
		return "https"
	}
	return s
}

func port(u *url.URL, scheme string) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// redactURL gives u for logs and errors: the query string and the fragment
// replaced, a password masked.
func redactURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "redacted", false
	}
	c.Fragment, c.RawFragment = "", ""
	return c.Redacted()
}

// redactRawURL is redactURL for a string. Text that does not parse as a URL
// is cut at its first '?' or '#'.
func redactRawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i] + "?redacted"
		}
		return raw
	}
	return redactURL(u)
}

// requestName is "METHOD url" for errors, the URL redacted.
func requestName(req *http.Request) string {
	return req.Method + " " + redactURL(req.URL)
}

// redactErr hides query strings, fragments and passwords of the URLs that
// err's message holds (net/http and the WebSocket dialer quote the full
// URL). errors.Is and errors.As still see err's chain.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactRawURL(ue.URL)
	}
	msg := err.Error()
	if clean := redactURLsIn(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// redactedError is an error whose message was redacted.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactURLsIn redacts every http, https, ws and wss URL in s. A URL ends
// at a space, a quote or the end of s.
func redactURLsIn(s string) string {
	var b strings.Builder
	rest := s
	for {
		i := indexURL(rest)
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		end := strings.IndexAny(rest, " \t\r\n\"'`<>")
		if end < 0 {
			end = len(rest)
		}
		raw := rest[:end]
		if strings.ContainsAny(raw, "?#@") {
			raw = redactRawURL(raw)
		}
		b.WriteString(raw)
		rest = rest[end:]
	}
}

// indexURL is the index of the first URL scheme in s, or -1.
func indexURL(s string) int {
	first := -1
	for _, scheme := range []string{"http://", "https://", "ws://", "wss://"} {
		if i := strings.Index(s, scheme); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// apiCall sends req and returns the answer's body (at most 1 MiB) and,
// when the answer is an error (a status outside 2xx, or a body with an
// error code), a *wire.APIError naming the request, with the trace id of
// the body or of the X-Tps-trace-ID header. Errors of the request itself
// come back redacted.
//
// When hc has no Timeout of its own (a caller's client may have none), the
// call is bounded by limit, so a silent endpoint cannot hang the client.
func apiCall(hc *http.Client, req *http.Request, limit time.Duration) ([]byte, *wire.APIError, error) {
	if hc.Timeout <= 0 && limit > 0 {
		ctx, cancel := context.WithTimeout(req.Context(), limit)
		defer cancel()
		req = req.WithContext(ctx)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, redactErr(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	if err != nil {
		return nil, nil, redactErr(fmt.Errorf("%s: read answer: %w", requestName(req), err))
	}
	ae := wire.DecodeAPIError(resp.StatusCode, resp.Header.Get(wire.TraceIDHeader), body)
	if ae == nil {
		return body, nil, nil
	}
	ae.Request = requestName(req)
	if ae.Message == "" && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		ae.Message = http.StatusText(resp.StatusCode)
	}
	return body, ae, nil
}
