package reply

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/ops"
	"github.com/qqgate/qqgate/openapi"
)

// Classes under which replies are given up besides openapi's failure
// classes.
const (
	ClassNoRoute   = "no_route"   // the event cannot be answered (READY, RESUMED, …)
	ClassBadOutput = "bad_output" // output that is not a reply
)

// Sender sends one account's messages through its OpenAPI client and
// counts each send. It is safe for concurrent use.
type Sender struct {
	api     *openapi.Client
	account string
	log     zerolog.Logger
	counts  *ops.SendCounter
}

// NewSender returns a sender over api for the account, counting into
// counts (nil: not counted).
func NewSender(api *openapi.Client, account string, counts *ops.SendCounter, log zerolog.Logger) *Sender {
	if counts == nil {
		counts = &ops.SendCounter{}
	}
	// The caller's logger, the account named on each line: a logger of
	// its own (zerolog's With) would keep a context buffer per account.
	return &Sender{api: api, account: account, counts: counts, log: log}
}

// API returns the OpenAPI client.
func (s *Sender) API() *openapi.Client { return s.api }

// Send sends m to t (openapi.Client.SendTo), counted.
func (s *Sender) Send(ctx context.Context, t openapi.Target, m *openapi.Message) (*openapi.SendResult, error) {
	start := time.Now()
	res, err := s.api.SendTo(ctx, t, m)
	outcome := outcomeOf(err)
	if err == nil {
		switch {
		case res.Duplicate:
			outcome = ops.OutcomeDuplicate
		case res.PendingAudit:
			outcome = ops.OutcomePendingAudit
		}
	}
	s.counts.Observe(string(t.Kind), outcome, time.Since(start))
	return res, err
}

// upload uploads up for the user or group of t, counted.
func (s *Sender) upload(ctx context.Context, t openapi.Target, up openapi.MediaUpload) (*openapi.MediaInfo, error) {
	start := time.Now()
	var info *openapi.MediaInfo
	var err error
	switch t.Kind {
	case openapi.KindC2C:
		info, err = s.api.UploadC2CMedia(ctx, t.ID, up)
	case openapi.KindGroup:
		info, err = s.api.UploadGroupMedia(ctx, t.ID, up)
	default:
		return nil, fmt.Errorf("%w: media by url is for QQ users and groups; a %s message takes an image url instead", openapi.ErrInvalidMessage, t.Kind)
	}
	s.counts.Observe(string(t.Kind)+"_files", outcomeOf(err), time.Since(start))
	return info, err
}

func outcomeOf(err error) string {
	if err == nil {
		return ops.OutcomeOK
	}
	return string(openapi.Classify(err))
}

// Error is a reply that failed in a way a later attempt may mend (a
// token refused, rate limits, a server or network failure, for a QQ user
// or group, where a re-send is dropped by msg_seq if the first got
// through): Replies returns it so that the handler attempt fails and is
// retried.
type Error struct {
	Class openapi.Class
	Err   error
}

// Error describes the failure.
func (e *Error) Error() string { return fmt.Sprintf("reply not delivered (%s): %v", e.Class, e.Err) }

// Unwrap returns the send's error.
func (e *Error) Unwrap() error { return e.Err }

// Reply implements handler.Replier: it turns out into replies (see the
// package doc) and sends them with Replies.
func (s *Sender) Reply(ctx context.Context, ev event.Event, out handler.Output) error {
	var outs []Out
	var bad []error
	switch {
	case out.Truncated:
		bad = []error{fmt.Errorf("%w: the output is longer than %d bytes", ErrBadOutput, handler.MaxOutput)}
	case out.From == handler.TypeHTTP:
		outs, bad = HTTP(out.ContentType, out.Body)
	case out.Mode == handler.ReplyJSON:
		outs, bad = JSONLines(out.Body)
	default:
		var err error
		if outs, err = Text(out.Body); err != nil {
			bad = []error{err}
		}
	}
	return s.Replies(ctx, ev, outs, bad)
}

// Replies sends outs, in order, as replies to ev, in a reply scope of
// their own: called again for the same event (a retry, a redelivery after
// a crash), it numbers them the same, and the platform drops what it had
// already delivered (answered 40054005, counted as delivered).
//
// bad are output errors: each is logged and counted (bad_output), and
// nothing is sent for it. An event without a reply route gets nothing:
// logged and counted (no_route). A reply the platform refuses for good
// (quota, reply window, content, permission, target, a malformed message)
// is logged with its code and trace id and counted by class, and the next
// one is sent. Replies returns an *Error, without sending the rest, when
// a QQ user or group reply failed in a way a later attempt may mend (token,
// rate limit, transient), and the context's error when ctx ends. Channel
// and DM replies are never left for a later attempt: the platform does not
// drop a repeat of them, so running the handler again could show the user
// a reply twice.
func (s *Sender) Replies(ctx context.Context, ev event.Event, outs []Out, bad []error) error {
	log := s.log.With().Str("account", s.account).Str("type", ev.Type).Uint64("seq", ev.Seq).Str("id", ev.ID).Logger()
	for _, err := range bad {
		log.Error().Err(err).Msg("handler output is not a reply; nothing sent for it")
	}
	s.counts.GiveUp(ClassBadOutput, len(bad))
	if len(outs) == 0 {
		return nil
	}
	t, err := openapi.RouteOf(openapi.Inbound{Type: ev.Type, ID: ev.ID, Data: ev.Data})
	if err != nil {
		log.Warn().Err(err).Int("replies", len(outs)).Msg("the handler replied to an event that cannot be answered; nothing sent")
		s.counts.GiveUp(ClassNoRoute, len(outs))
		return nil
	}
	ctx = openapi.WithReplyScope(ctx)
	for i := range outs {
		err := s.one(ctx, t, &outs[i])
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("reply %d of %d to %s #%d: %w", i+1, len(outs), ev.Type, ev.Seq, err)
		}
		class := openapi.Classify(err)
		if laterMayMend(t.Kind, class) {
			return &Error{Class: class, Err: fmt.Errorf("reply %d of %d: %w", i+1, len(outs), err)}
		}
		GiveUpLog(log.Error(), class, err).Int("reply", i+1).Int("replies", len(outs)).Str("target", string(t.Kind)+":"+t.ID).
			Msg("reply given up")
		s.counts.GiveUp(string(class), 1)
	}
	return nil
}

// one sends one reply, uploading its media first.
func (s *Sender) one(ctx context.Context, t openapi.Target, o *Out) error {
	m := o.Msg
	if o.Upload != nil {
		info, err := s.upload(ctx, t, *o.Upload)
		if err != nil {
			return err
		}
		m.Media = &openapi.MessageMedia{FileInfo: info.FileInfo}
	}
	res, err := s.Send(ctx, t, &m)
	switch {
	case err != nil:
	case res.Duplicate:
		s.log.Info().Str("account", s.account).Str("target", string(t.Kind)+":"+t.ID).Int("msg_seq", res.MsgSeq).Str("trace_id", res.TraceID).
			Msg("reply already delivered (by an earlier run of the handler); the platform dropped the repeat")
	case res.PendingAudit:
		s.log.Info().Str("account", s.account).Str("audit_id", res.AuditID).Str("trace_id", res.TraceID).Msg("reply held for audit by the platform")
	}
	return err
}

// laterMayMend reports whether a failed reply should fail the handler
// attempt, to be sent again by the next one.
func laterMayMend(k openapi.Kind, c openapi.Class) bool {
	if k != openapi.KindC2C && k != openapi.KindGroup {
		return false
	}
	switch c {
	case openapi.ClassToken, openapi.ClassRateLimited, openapi.ClassTransient:
		return true
	}
	return false
}

// GiveUpLog adds the class, and an *openapi.APIError's HTTP status, code
// and trace id, to a log event about err.
func GiveUpLog(ev *zerolog.Event, class openapi.Class, err error) *zerolog.Event {
	ev = ev.Str("class", string(class)).Err(err)
	var ae *openapi.APIError
	if errors.As(err, &ae) {
		ev = ev.Int("status", ae.Status).Int("code", ae.EffectiveCode()).Str("trace_id", ae.TraceID)
	}
	return ev
}
