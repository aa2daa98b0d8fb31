package reply

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/qqgate/qqgate/openapi"
)

// SendOut sends o to t, uploading its media first: a message that answers
// no handler run (`qqgate send`, the local send API). A c2c or group
// message that names a msg_id or event_id but no msg_seq gets a fresh
// random one (openapi.FreshMsgSeq), far above the 1, 2, 3… of handler
// replies, so that it never collides with them nor with earlier sends; an
// active one gets a fresh one from the client. A msg_seq the caller chose
// makes a 40054005 answer mean "already delivered".
func (s *Sender) SendOut(ctx context.Context, t openapi.Target, o Out) (*openapi.SendResult, error) {
	m := o.Msg
	if (t.Kind == openapi.KindC2C || t.Kind == openapi.KindGroup) && m.MsgSeq == 0 && (t.MsgID != "" || t.EventID != "") {
		m.MsgSeq = openapi.FreshMsgSeq()
	}
	if o.Upload != nil {
		info, err := s.upload(ctx, t, *o.Upload)
		if err != nil {
			return nil, err
		}
		m.Media = &openapi.MessageMedia{FileInfo: info.FileInfo}
	}
	return s.Send(ctx, t, &m)
}

// Result is the JSON form of a send the platform accepted, as `qqgate
// send` prints it and the local send API answers it.
type Result struct {
	// ID is the new message's id (empty when already delivered or held
	// for audit).
	ID string `json:"id,omitempty"`
	// Timestamp is the platform's time of the message, RFC 3339.
	Timestamp string `json:"timestamp,omitempty"`
	// MsgSeq is the msg_seq sent (c2c and group).
	MsgSeq int `json:"msg_seq,omitempty"`
	// AlreadyDelivered: the platform answered 40054005 to a msg_seq the
	// caller chose; the message had been delivered before.
	AlreadyDelivered bool `json:"already_delivered,omitempty"`
	// PendingAudit: accepted but held for audit, with AuditID.
	PendingAudit bool   `json:"pending_audit,omitempty"`
	AuditID      string `json:"audit_id,omitempty"`
	// TraceID is the platform's trace id of the answer.
	TraceID string `json:"trace_id,omitempty"`
	// Answer is the platform's answer body, as it came.
	Answer json.RawMessage `json:"answer,omitempty"`
}

// ResultOf is the JSON form of res.
func ResultOf(res *openapi.SendResult) Result {
	r := Result{
		ID: res.ID, MsgSeq: res.MsgSeq, AlreadyDelivered: res.Duplicate,
		PendingAudit: res.PendingAudit, AuditID: res.AuditID, TraceID: res.TraceID,
	}
	if !res.Timestamp.IsZero() {
		r.Timestamp = res.Timestamp.Format(time.RFC3339)
	}
	if json.Valid(res.Raw) {
		r.Answer = res.Raw
	}
	return r
}

// Failure is the JSON form of a failed send: the failure class and, when
// the platform answered, its HTTP status, code, err_code, message and trace
// id.
type Failure struct {
	Error      string `json:"error"`
	Class      string `json:"class"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Code       int    `json:"code,omitempty"`
	ErrCode    int    `json:"err_code,omitempty"`
	Message    string `json:"message,omitempty"`
	TraceID    string `json:"trace_id,omitempty"`
	// MsgSeq is the msg_seq the message was sent with, when qqgate chose
	// it: sending again with it cannot deliver the message twice.
	MsgSeq int `json:"msg_seq,omitempty"`
}

// FailureOf is the JSON form of err.
func FailureOf(err error) Failure {
	f := Failure{Error: err.Error(), Class: string(openapi.Classify(err))}
	var ae *openapi.APIError
	if errors.As(err, &ae) {
		f.HTTPStatus, f.Code, f.ErrCode, f.Message, f.TraceID = ae.Status, ae.Code, ae.ErrCode, ae.Message, ae.TraceID
	}
	return f
}
