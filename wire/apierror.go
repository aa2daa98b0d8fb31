package wire

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
)

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
	CodeTokenExpired       = 11244 // "token not exist or expire"
	CodeTokenFixedDisabled = 11245

	// CodeDuplicateSeq: "消息被去重，请检查请求msgseq", the (msg_id,
	// msg_seq) pair was already used.
	CodeDuplicateSeq = 40054005
	// CodeAuditPending: "push message is waiting for audit now".
	CodeAuditPending = 304023
	// CodeAuditPending2: the same, for another message kind.
	CodeAuditPending2 = 304024
	// CodeMsgExpired: the reply window of msg_id has passed.
	CodeMsgExpired = 304027
	// CodeMsgLimit: "msg limit exceed", a send budget is used up.
	CodeMsgLimit = 22009
	// CodeActiveDenied: "主动消息失败, 无权限", an active message is not
	// permitted (withdrawn, or its budget gone).
	CodeActiveDenied = 40034102
	// CodeEmptyMessage: the message has no content.
	CodeEmptyMessage = 50006
	// CodeChannelLimit: the channel write rate limit.
	CodeChannelLimit = 20028
)

// Class is the kind of a failed call to the platform, as its error codes
// group them. It decides whether a call is retried, and is the label
// under which failures are counted. Every class except ClassOther,
// ClassInvalid and ClassCanceled has a sentinel error that an [*APIError]
// of the class matches with errors.Is.
type Class string

// The classes of failed calls.
const (
	// ClassToken: the access token is missing, bad or expired (codes
	// 11241-11245, or HTTP 401). Fetch the token again once and retry.
	ClassToken Class = "token"
	// ClassRateLimited: slow down (HTTP 429, code 20028 on a channel,
	// 100001 on the token endpoint, or a "Too many requests" message).
	// Retry after a wait.
	ClassRateLimited Class = "rate_limited"
	// ClassTransient: a server error, a network error or a timeout (HTTP
	// 5xx, codes 304082/304083 for media, 306003/306005/306006 for
	// recalls). Retry with backoff.
	ClassTransient Class = "transient"
	// ClassQuota: a send budget is used up (22009 "msg limit exceed",
	// 40034100, 40034102, 40034105, 304045-304050, 40093002, 1100100,
	// 1100308), or the local reply count per inbound message. Not retried.
	ClassQuota Class = "quota"
	// ClassDuplicate: the (msg_id or event_id, msg_seq) pair was already
	// used (40054005): a message with this msg_seq was already delivered.
	ClassDuplicate Class = "duplicate"
	// ClassReplyWindow: the inbound message is too old to answer, or its id
	// is not valid for a reply (304026, 304027, 304028, 304103, 40034005,
	// 40034128), or the local window check. Not retried.
	ClassReplyWindow Class = "reply_window"
	// ClassContent: the platform refused the content (50006 empty, 304003
	// and 40054010 unregistered URL, 304025 and 1100101 blocked,
	// 50037-50057 markdown, 40054007 and 40054018 too long, 40034090
	// markdown not allowed). Not retried.
	ClassContent Class = "content"
	// ClassPermission: the app lacks a permission (11251-11265,
	// 11273-11275, 304004 ark, 304036 markdown template, 304037 keyboard,
	// 40034102 active messages, HTTP 403). Not retried.
	ClassPermission Class = "permission"
	// ClassTarget: the recipient cannot be reached (40054002 muted,
	// 40054003 and 40034101 not in the group, 40054004 not a friend,
	// 40054013 refused). Not retried.
	ClassTarget Class = "target"
	// ClassPendingAudit: accepted, but held for audit (HTTP 201 or 202,
	// codes 304023/304024).
	ClassPendingAudit Class = "pending_audit"
	// ClassInvalid: the request was refused locally before any round trip
	// (a malformed message, a bad id, an unroutable event).
	ClassInvalid Class = "invalid"
	// ClassCanceled: the caller's context ended.
	ClassCanceled Class = "canceled"
	// ClassOther: anything else (an unknown code, HTTP 404, …). Not
	// retried.
	ClassOther Class = "other"
)

// Sentinel errors of the classes, matched with errors.Is: an [*APIError]
// matches the sentinel of its class ([APIError.Class]), whether it answers
// discovery, the token endpoint or a send, and local checks may wrap the
// sentinel of the rule they enforce.
var (
	// ErrToken matches token refusals (ClassToken).
	ErrToken = errors.New("access token refused")
	// ErrRateLimited matches answers that ask the caller to slow down
	// (ClassRateLimited).
	ErrRateLimited = errors.New("rate limited")
	// ErrTransient matches server, network and timeout failures
	// (ClassTransient).
	ErrTransient = errors.New("temporary failure")
	// ErrQuota matches a used-up send budget (ClassQuota), and 40034102
	// (active message not permitted), which the platform also uses when
	// the budget of active messages is gone.
	ErrQuota = errors.New("send quota used up")
	// ErrDuplicate matches 40054005, an already used (msg_id or
	// event_id, msg_seq) pair (ClassDuplicate).
	ErrDuplicate = errors.New("duplicate msg_seq")
	// ErrReplyWindow matches an expired or invalid reply target
	// (ClassReplyWindow).
	ErrReplyWindow = errors.New("reply window passed")
	// ErrContent matches content refusals (ClassContent).
	ErrContent = errors.New("content refused")
	// ErrPermission matches missing permissions (ClassPermission).
	ErrPermission = errors.New("permission denied")
	// ErrTarget matches unreachable recipients (ClassTarget).
	ErrTarget = errors.New("recipient unreachable")
	// ErrPendingAudit matches a message held for audit (ClassPendingAudit).
	ErrPendingAudit = errors.New("message pending audit")
)

// APIError is an error answer of the platform's HTTP endpoints (the
// OpenAPI, for discovery and for sending, and the token endpoint): a
// status outside 2xx, or a body with a non-zero code. The body is
// {"message","code","err_code","trace_id"}; the HTTP status, the request,
// the trace id of the [TraceIDHeader] header, the audit id and the
// Retry-After wait are added by the caller (see [DecodeAPIError]). It never
// carries the access token or the secret. Error prints the trace id, so an
// operator can quote it to the platform.
//
// Some answers fill only code, some only err_code: [APIError.EffectiveCode]
// is the one to compare. errors.Is matches the sentinel of the error's
// [APIError.Class] (ErrRateLimited, ErrToken, ErrQuota, …).
type APIError struct {
	// Status is the HTTP status. Not part of the body.
	Status int `json:"-"`
	// Request names the request, "POST https://host/path", with any query
	// string left out. Not part of the body.
	Request string `json:"-"`

	// Message is the body's message, or the status text when there was
	// none.
	Message string `json:"message"`
	// Code is the body's code, ErrCode its err_code.
	Code    int `json:"code"`
	ErrCode int `json:"err_code,omitempty"`
	// TraceID is the body's trace_id, else the [TraceIDHeader] header.
	TraceID string `json:"trace_id,omitempty"`

	// AuditID is the audit id of a pending-audit answer. Not part of the
	// body's top level.
	AuditID string `json:"-"`
	// RetryAfter is the wait the server asked for (Retry-After), if any.
	// Not part of the body.
	RetryAfter time.Duration `json:"-"`
}

// apiErrorBody is the platform's error body as it is read: codes may come
// as numbers or as strings holding one, and a pending-audit answer carries
// its audit id under data.message_audit.
type apiErrorBody struct {
	Message string     `json:"message"`
	Code    lenientInt `json:"code"`
	ErrCode lenientInt `json:"err_code"`
	TraceID string     `json:"trace_id"`
	Data    struct {
		MessageAudit struct {
			AuditID string `json:"audit_id"`
		} `json:"message_audit"`
	} `json:"data"`
}

// lenientInt decodes a JSON number or a string holding one; anything else
// is 0, never an error.
type lenientInt int

// UnmarshalJSON never fails: a code that cannot be read counts as 0.
func (n *lenientInt) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(string(b)), `"`), 10, 64)
	if err != nil {
		v = 0
	}
	*n = lenientInt(v)
	return nil
}

// DecodeAPIError returns the error an answer carries, or nil when it
// carries none (a 2xx status and no error code in the body). body may be
// anything: a JSON error body fills the fields (codes as numbers or as
// strings, and the audit id of a pending-audit answer), anything else
// leaves them zero. traceHeader is the value of the [TraceIDHeader]
// header; it is used when the body has no trace_id.
func DecodeAPIError(status int, traceHeader string, body []byte) *APIError {
	e := ParseAPIAnswer(status, traceHeader, body)
	if status >= 200 && status < 300 && e.EffectiveCode() == 0 {
		return nil
	}
	return e
}

// ParseAPIAnswer reads an answer's status, error fields and trace id as
// DecodeAPIError does, whether or not they make an error: a sender also
// needs the trace id and audit id of a successful or pending answer.
func ParseAPIAnswer(status int, traceHeader string, body []byte) *APIError {
	var b apiErrorBody
	if err := json.Unmarshal(body, &b); err != nil {
		b = apiErrorBody{}
	}
	e := &APIError{Status: status, Message: b.Message, Code: int(b.Code), ErrCode: int(b.ErrCode),
		TraceID: b.TraceID, AuditID: b.Data.MessageAudit.AuditID}
	if e.TraceID == "" {
		e.TraceID = strings.TrimSpace(traceHeader)
	}
	return e
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

// Class is the error's class: by its effective code when the code is
// known, else ClassRateLimited for a "Too many requests" message, else by
// its HTTP status (see [ClassOf]).
func (e *APIError) Class() Class {
	if c := classOfCode(e.EffectiveCode()); c != "" {
		return c
	}
	if strings.Contains(strings.ToLower(e.Message), "too many requests") {
		return ClassRateLimited
	}
	return classOfStatus(e.Status)
}

// Temporary reports whether a retry may succeed: rate limits and transient
// failures.
func (e *APIError) Temporary() bool {
	c := e.Class()
	return c == ClassRateLimited || c == ClassTransient
}

// Is matches the sentinel of the error's class. 40034102 (active message
// not permitted) matches both ErrPermission and ErrQuota: the platform
// uses it when active sends are withdrawn and when their budget is gone.
func (e *APIError) Is(target error) bool {
	if target == ErrQuota && e.EffectiveCode() == CodeActiveDenied {
		return true
	}
	s := sentinelOf(e.Class())
	return s != nil && s == target
}

// TokenRejected reports whether an OpenAPI answer refused the access
// token: HTTP 401, or a code from 11241 to 11245. The caller should drop
// its cached token and fetch a new one.
func (e *APIError) TokenRejected() bool {
	c := e.EffectiveCode()
	return e.Status == http401 || (c >= CodeTokenMissing && c <= CodeTokenFixedDisabled)
}

// HTTP statuses used here, without importing net/http.
const (
	http201 = 201
	http202 = 202
	http401 = 401
	http403 = 403
	http429 = 429
)

// sentinelOf is the sentinel error of a class, nil for a class without
// one (ClassOther, ClassInvalid, ClassCanceled, "").
func sentinelOf(c Class) error {
	switch c {
	case ClassToken:
		return ErrToken
	case ClassRateLimited:
		return ErrRateLimited
	case ClassTransient:
		return ErrTransient
	case ClassQuota:
		return ErrQuota
	case ClassDuplicate:
		return ErrDuplicate
	case ClassReplyWindow:
		return ErrReplyWindow
	case ClassContent:
		return ErrContent
	case ClassPermission:
		return ErrPermission
	case ClassTarget:
		return ErrTarget
	case ClassPendingAudit:
		return ErrPendingAudit
	}
	return nil
}

// ClassOf classifies an answer by its effective code, falling back to the
// HTTP status for a code it does not know (or 0). It is a pure function.
func ClassOf(status, code int) Class {
	if c := classOfCode(code); c != "" {
		return c
	}
	return classOfStatus(status)
}

func classOfStatus(status int) Class {
	switch {
	case status == http401:
		return ClassToken
	case status == http429:
		return ClassRateLimited
	case status == http403:
		return ClassPermission
	case status >= 500:
		return ClassTransient
	case status == http201 || status == http202:
		return ClassPendingAudit
	}
	return ClassOther
}

func classOfCode(code int) Class {
	switch {
	case code == 0:
		return ""
	case code >= CodeTokenMissing && code <= CodeTokenFixedDisabled:
		return ClassToken
	case code == CodeDuplicateSeq:
		return ClassDuplicate
	case code == CodeAuditPending || code == CodeAuditPending2:
		return ClassPendingAudit
	case code == CodeChannelLimit, code == CodeTooManyRequests:
		return ClassRateLimited
	case code == 304082 || code == 304083, // media upload/convert failed
		code == 306003 || code == 306005 || code == 306006: // recall, retryable
		return ClassTransient
	case code == CodeMsgLimit, code == 40034100, code == 40034105, code == 40093002,
		code >= 304045 && code <= 304050, code == 1100100, code == 1100308:
		return ClassQuota
	case code == CodeActiveDenied,
		code >= 11251 && code <= 11265, code >= 11273 && code <= 11275,
		code == 304004, code == 304036, code == 304037:
		return ClassPermission
	case code == 304026, code == CodeMsgExpired, code == 304028, code == 304103,
		code == 40034005, code == 40034128:
		return ClassReplyWindow
	case code == CodeEmptyMessage, code == 304003, code == 40054010, code == 304025,
		code == 1100101, code >= 50037 && code <= 50057,
		code == 40054007, code == 40054018, code == 40034090:
		return ClassContent
	case code == 40054002, code == 40054003, code == 40034101, code == 40054004, code == 40054013:
		return ClassTarget
	}
	return ""
}

// Classify returns the class of an error: an [*APIError]'s class (found
// with errors.As), the class of a wrapped sentinel, ClassCanceled for a
// context error, ClassTransient for a network error, ClassOther otherwise,
// and "" for nil.
func Classify(err error) Class {
	if err == nil {
		return ""
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class()
	}
	for _, c := range []Class{ClassToken, ClassRateLimited, ClassQuota, ClassDuplicate,
		ClassReplyWindow, ClassContent, ClassPermission, ClassTarget, ClassPendingAudit} {
		if errors.Is(err, sentinelOf(c)) {
			return c
		}
	}
	if errors.Is(err, ErrTransient) {
		return ClassTransient
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ClassCanceled
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return ClassTransient
	}
	return ClassOther
}
