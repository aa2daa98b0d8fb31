// Package sendapi is the runner's local send API: a program that is not
// an event handler (a cron job, a web app) sends as a bot through the
// runner, which holds the secret and the token:
//
//	POST /v1/accounts/{account}/messages
//	Authorization: Bearer <token>
//	{"target":{"type":"c2c|group|channel|dm","id":"…"},
//	 "reply_to":"MSG_ID", "event_id":"…", "msg_seq":N,
//	 "message":{"content":"…", …}}
//
// reply_to (a msg_id), event_id and msg_seq are optional; message is one
// message object as handlers write them (see package reply). Answers, all
// JSON:
//
//   - 200: the platform's answer (reply.Result);
//   - 400: a bad body, with the reason; 413: a body over MaxBody;
//   - 401: a missing or wrong token;
//   - 404: the API is off (no token configured), or no running account of
//     that id;
//   - 502: the platform refused the message or could not be reached
//     (reply.Failure: its HTTP status, code, err_code, message, trace id);
//     504: no answer within SendTimeout.
//
// A c2c or group message that names reply_to or event_id without msg_seq
// gets a fresh random msg_seq, which every answer reports: sending again
// with it cannot deliver the message twice.
package sendapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/internal/reply"
	"github.com/qqgate/qqgate/openapi"
)

// Pattern is the route of the API, for http.ServeMux.
const Pattern = "POST /v1/accounts/{account}/messages"

// MaxBody bounds a request body.
const MaxBody = 1 << 20

// SendTimeout bounds one send, retries included, below the ops server's
// write timeout.
const SendTimeout = 25 * time.Second

// Config configures the API.
type Config struct {
	// Token returns the bearer token callers must present; "" means the
	// API is off (every request answers 404). It is called per request,
	// so the token may change (a config reload).
	Token func() string
	// Sender returns the sender of a running account, nil when there is
	// none of that id.
	Sender func(account string) *reply.Sender
	// Log receives one line per send (never the token).
	Log zerolog.Logger
}

// Handler returns the API's handler; mount it at Pattern.
func Handler(cfg Config) http.Handler { return &api{cfg: cfg} }

type api struct{ cfg Config }

// request is the body.
type request struct {
	Target *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
	ReplyTo string          `json:"reply_to"`
	EventID string          `json:"event_id"`
	MsgSeq  *int            `json:"msg_seq"`
	Message json.RawMessage `json:"message"`
}

type errorBody struct {
	Error string `json:"error"`
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := ""
	if a.cfg.Token != nil {
		token = a.cfg.Token()
	}
	if token == "" {
		writeJSON(w, http.StatusNotFound, errorBody{"the send API is off: set send_api.token_file in the config, or QQGATE_SEND_TOKEN"})
		return
	}
	if !authorized(r.Header.Get("Authorization"), token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="qqgate"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{"missing or wrong bearer token"})
		return
	}
	account := r.PathValue("account")
	var s *reply.Sender
	if a.cfg.Sender != nil {
		s = a.cfg.Sender(account)
	}
	if s == nil {
		writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no running account %q", account)})
		return
	}
	t, out, err := parse(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		status := http.StatusBadRequest
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			status = http.StatusRequestEntityTooLarge
		}
		writeJSON(w, status, errorBody{err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), SendTimeout)
	defer cancel()
	start := time.Now()
	res, err := s.SendOut(ctx, t, out)
	log := a.cfg.Log.With().Str("account", account).Str("target", string(t.Kind)+":"+t.ID).
		Int("msg_seq", out.Msg.MsgSeq).Dur("took", time.Since(start)).Logger()
	if err != nil {
		class := openapi.Classify(err)
		reply.GiveUpLog(log.Warn(), class, err).Msg("send API: message not sent")
		f := reply.FailureOf(err)
		f.MsgSeq = out.Msg.MsgSeq
		status := http.StatusBadGateway
		switch {
		case errors.Is(err, openapi.ErrInvalidMessage):
			status = http.StatusBadRequest
		case errors.Is(err, context.DeadlineExceeded):
			status = http.StatusGatewayTimeout
		}
		writeJSON(w, status, f)
		return
	}
	log.Info().Str("id", res.ID).Bool("already_delivered", res.Duplicate).Str("trace_id", res.TraceID).Msg("send API: message sent")
	writeJSON(w, http.StatusOK, reply.ResultOf(res))
}

// authorized compares the header's bearer token with token in constant
// time (of the digests, so the length does not leak either).
func authorized(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// parse reads and checks the body.
func parse(r io.Reader) (openapi.Target, reply.Out, error) {
	var t openapi.Target
	var out reply.Out
	b, err := io.ReadAll(r)
	if err != nil {
		return t, out, fmt.Errorf("read body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var req request
	if err := dec.Decode(&req); err != nil {
		return t, out, fmt.Errorf("body is not a request object: %v", err)
	}
	if dec.More() {
		return t, out, errors.New("body holds more than one JSON value")
	}
	if req.Target == nil {
		return t, out, errors.New(`target is required: {"type":"c2c|group|channel|dm","id":"…"}`)
	}
	switch k := openapi.Kind(req.Target.Type); k {
	case openapi.KindC2C, openapi.KindGroup, openapi.KindChannel, openapi.KindDM:
		t.Kind = k
	default:
		return t, out, fmt.Errorf("target.type %q: use c2c, group, channel or dm", req.Target.Type)
	}
	if t.ID = req.Target.ID; t.ID == "" {
		return t, out, errors.New("target.id is required")
	}
	if req.ReplyTo != "" && req.EventID != "" {
		return t, out, errors.New("reply_to and event_id do not mix: give one")
	}
	t.MsgID, t.EventID = req.ReplyTo, req.EventID
	if len(req.Message) == 0 || string(req.Message) == "null" {
		return t, out, errors.New("message is required")
	}
	if out, err = reply.Decode(req.Message); err != nil {
		return t, out, fmt.Errorf("message: %s", strings.TrimPrefix(err.Error(), reply.ErrBadOutput.Error()+": "))
	}
	v2 := t.Kind == openapi.KindC2C || t.Kind == openapi.KindGroup
	if req.MsgSeq != nil {
		if !v2 {
			return t, out, fmt.Errorf("msg_seq is for c2c and group messages; %s messages have none", t.Kind)
		}
		if *req.MsgSeq < 1 || *req.MsgSeq > openapi.FreshSeqMax {
			return t, out, fmt.Errorf("msg_seq %d is not in 1..%d", *req.MsgSeq, openapi.FreshSeqMax)
		}
		out.Msg.MsgSeq = *req.MsgSeq
	} else if v2 && (t.MsgID != "" || t.EventID != "") {
		out.Msg.MsgSeq = openapi.FreshMsgSeq()
	}
	return t, out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
