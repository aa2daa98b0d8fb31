//go:build unix

package handler_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/handler"
)

// replier records the outputs handed to it and answers with errs in turn.
type replier struct {
	mu   sync.Mutex
	outs []handler.Output
	errs []error
}

func (r *replier) Reply(_ context.Context, _ event.Event, out handler.Output) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outs = append(r.outs, out)
	if len(r.errs) > 0 {
		err := r.errs[0]
		r.errs = r.errs[1:]
		return err
	}
	return nil
}

func (r *replier) got() []handler.Output {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]handler.Output(nil), r.outs...)
}

func TestReplySpecValidation(t *testing.T) {
	for _, tc := range []struct {
		spec handler.Spec
		want string
	}{
		{handler.Spec{Type: "stdout", Reply: "text"}, "reply is for exec and http handlers"},
		{handler.Spec{Type: "exec", Command: []string{"true"}, Reply: "yaml"}, `unknown reply "yaml"`},
	} {
		assert.ErrorContains(t, tc.spec.Validate(), tc.want)
	}
	for _, r := range []string{"", "off", "text", "json"} {
		assert.NoError(t, handler.Spec{Type: "exec", Command: []string{"true"}, Reply: r}.Validate(), r)
	}
	_, err := handler.New(handler.Spec{Type: "exec", Command: []string{"true"}, Reply: "text"}, handler.Options{})
	assert.ErrorContains(t, err, "needs a replier")
}

// With replies on, the command's whole stdout goes to the replier, after
// the command succeeded; a failed run replies nothing.
func TestExecReplyOutput(t *testing.T) {
	path, _ := script(t, `
read line
case "$QQGATE_SEQ" in
1) printf 'hello\nworld\n' ;;
2) echo "partial"; exit 3 ;;
esac`)
	var rec recorder
	var rp replier
	opts := rec.options()
	opts.Replier = &rp
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path}, Reply: "json", Retries: -1}, opts)
	require.NoError(t, err)

	require.NoError(t, h.HandleEvent(t.Context(), testEvent(1)))
	require.Error(t, h.HandleEvent(t.Context(), testEvent(2)))
	got := rp.got()
	require.Len(t, got, 1, "no reply from a failed run")
	assert.Equal(t, handler.Output{Mode: "json", From: "exec", Body: []byte("hello\nworld\n")}, got[0])
}

// A reply that fails fails the attempt: the command runs again and its
// output is replied again.
func TestExecReplyFailureRetriesAttempt(t *testing.T) {
	path, _ := script(t, `cat > /dev/null; echo hi`)
	var rec recorder
	rp := replier{errs: []error{errors.New("platform down")}}
	opts := rec.options()
	opts.Replier = &rp
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path}, Reply: "text"}, opts)
	require.NoError(t, err)
	require.NoError(t, h.HandleEvent(t.Context(), testEvent(4)))
	assert.Len(t, rp.got(), 2)
	assert.Equal(t, 2, rec.last(t).attempts)
}

// An output over MaxOutput is handed on marked truncated, never cut
// silently.
func TestExecReplyOutputBounded(t *testing.T) {
	path, _ := script(t, `cat > /dev/null; head -c 1048600 /dev/zero | tr '\0' 'a'`)
	var rp replier
	opts := (&recorder{}).options()
	opts.Replier = &rp
	h, err := handler.New(handler.Spec{Type: "exec", Command: []string{path}, Reply: "text"}, opts)
	require.NoError(t, err)
	require.NoError(t, h.HandleEvent(t.Context(), testEvent(1)))
	got := rp.got()
	require.Len(t, got, 1)
	assert.True(t, got[0].Truncated)
	assert.Len(t, got[0].Body, handler.MaxOutput)
}

// An http handler with replies on hands on the response body and its
// Content-Type; a 204 has no body to reply with.
func TestHTTPReplyOutput(t *testing.T) {
	var mu sync.Mutex
	status, ctype, body := http.StatusOK, "text/plain; charset=utf-8", "echo: hi"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	var rp replier
	opts := (&recorder{}).options()
	opts.Replier = &rp
	h, err := handler.New(handler.Spec{Type: "http", URL: srv.URL, Reply: "json"}, opts)
	require.NoError(t, err)

	require.NoError(t, h.HandleEvent(t.Context(), testEvent(1)))
	mu.Lock()
	status, ctype, body = http.StatusNoContent, "application/json", ""
	mu.Unlock()
	require.NoError(t, h.HandleEvent(t.Context(), testEvent(2)))
	mu.Lock()
	status, body = http.StatusInternalServerError, strings.Repeat("x", 10)
	mu.Unlock()
	require.Error(t, h.HandleEvent(t.Context(), testEvent(3)))

	got := rp.got()
	require.Len(t, got, 2, "a failed request replies nothing")
	assert.Equal(t, handler.Output{Mode: "json", From: "http", Body: []byte("echo: hi"), ContentType: "text/plain; charset=utf-8", Status: 200}, got[0])
	assert.Equal(t, handler.Output{Mode: "json", From: "http", ContentType: "application/json", Status: 204}, got[1])
}
