package handler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/qqgate/qqgate/event"
)

// BodySnippet is how much of a refused response's body the http handler's
// error carries.
const BodySnippet = 512

// drainLimit is how much of a response body is read to reuse the
// connection.
const drainLimit = 64 << 10

// httpHandler POSTs each event to a URL.
type httpHandler struct {
	url     string
	safeURL string // for errors and logs
	headers http.Header
	timeout time.Duration
	hc      *http.Client
	reply   string // Spec.Reply when on, else ""
	replier Replier
}

// defaultHTTPClient does not follow redirects: a 3xx is a failure.
var defaultHTTPClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func newHTTP(spec Spec, opts Options) *httpHandler {
	h := &httpHandler{
		url:     spec.URL,
		safeURL: redactURL(spec.URL),
		headers: make(http.Header, len(spec.Headers)),
		timeout: spec.Timeout,
		hc:      opts.HTTPClient,
	}
	for k, v := range spec.Headers {
		h.headers.Set(k, v)
	}
	if h.timeout == 0 {
		h.timeout = DefaultHTTPTimeout
	}
	if spec.replies() {
		h.reply, h.replier = spec.Reply, opts.Replier
	}
	if h.hc == nil {
		h.hc = defaultHTTPClient
	}
	return h
}

// attempt POSTs line once; a 2xx answer is success.
func (h *httpHandler) attempt(ctx context.Context, ev event.Event, line []byte) error {
	actx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, h.url, bytes.NewReader(line))
	if err != nil {
		return fmt.Errorf("http POST %s: %v", h.safeURL, err)
	}
	for k, v := range h.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "qqgate")
	}
	req.Header.Set("X-QQGate-Account", MetaValue(ev.AccountID))
	req.Header.Set("X-QQGate-Type", MetaValue(ev.Type))
	req.Header.Set("X-QQGate-Seq", strconv.FormatUint(ev.Seq, 10))
	req.Header.Set("X-QQGate-Id", MetaValue(ev.ID))

	resp, err := h.hc.Do(req)
	if err != nil {
		// A *url.Error repeats the URL with its query: name ours instead.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("http POST %s: aborted, shutting down: %w", h.safeURL, ctx.Err())
		case actx.Err() != nil:
			return fmt.Errorf("http POST %s: timed out after %v", h.safeURL, h.timeout)
		}
		return fmt.Errorf("http POST %s: %v", h.safeURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if h.reply == "" {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxOutput+1))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("http POST %s: reading the reply: aborted, shutting down: %w", h.safeURL, ctx.Err())
			}
			return fmt.Errorf("http POST %s: reading the reply: %v", h.safeURL, err)
		}
		out := Output{Mode: h.reply, From: TypeHTTP, Body: body, ContentType: resp.Header.Get("Content-Type"), Status: resp.StatusCode}
		if len(body) > MaxOutput {
			out.Body, out.Truncated = body[:MaxOutput], true
		}
		if resp.StatusCode == http.StatusNoContent {
			out.Body = nil
		}
		return h.replier.Reply(ctx, ev, out)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, BodySnippet+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	msg := fmt.Sprintf("http POST %s: status %s", h.safeURL, resp.Status)
	if s := snippet(body); s != "" {
		msg += fmt.Sprintf("; body: %q", s)
	}
	return errors.New(msg)
}

// snippet is at most BodySnippet bytes of b, invalid UTF-8 (a rune cut in
// two included) replaced, with an ellipsis when cut.
func snippet(b []byte) string {
	cut := len(b) > BodySnippet
	if cut {
		b = b[:BodySnippet]
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if cut {
		s += "…"
	}
	return s
}
