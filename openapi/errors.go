package openapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Class is the kind of a send failure, as the platform's error codes group
// them. It decides whether a send is retried, and is the label under which
// failures are counted ([Stats.Failures]). Every class except ClassOther
// and ClassInvalid has a sentinel error that errors.Is matches.
type Class string

// The classes of send outcomes.
const (
	// ClassToken: the access token is missing, bad or expired (codes
	// 11241-11245, or HTTP 401). The token is fetched again once and the
	// request retried.
	ClassToken Class = "token"
	// ClassRateLimited: slow down (HTTP 429, code 20028). Retried after a
	// wait.
	ClassRateLimited Class = "rate_limited"
	// ClassTransient: a server error, a network error or a timeout (HTTP
	// 5xx, codes 304082/304083 for media, 306003/306005/306006 for
	// recalls). Retried with backoff.
	ClassTransient Class = "transient"
	// ClassQuota: a send budget is used up (22009 "msg limit exceed",
	// 40034100, 40034102, 40034105, 304045-304050, 40093002, 1100100,
	// 1100308), or the local reply count per inbound message. Not retried.
	ClassQuota Class = "quota"
	// ClassDuplicate: the (msg_id or event_id, msg_seq) pair was already
	// used (40054005). A send whose msg_seq qqgate numbered, that the caller
	// chose, or that is a retry reports this as success with
	// SendResult.Duplicate: the message was already delivered.
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
	// ClassPendingAudit: accepted, but held for audit (HTTP 202, codes
	// 304023/304024). The typed send methods report it as success with
	// SendResult.PendingAudit; only [Client.Do] returns it as an error.
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

// Sentinel errors, matched with errors.Is against the errors of the send
// methods: an [*APIError] matches the sentinel of its class, and the local
// checks wrap the sentinel of the rule they enforce.
var (
	// ErrToken matches token refusals (ClassToken) that persisted after
	// one refetch of the token.
	ErrToken = errors.New("openapi: access token refused")
	// ErrRateLimited matches rate limiting (ClassRateLimited) that
	// persisted through every retry.
	ErrRateLimited = errors.New("openapi: rate limited")
	// ErrTransient matches server, network and timeout failures
	// (ClassTransient) that persisted through every retry.
	ErrTransient = errors.New("openapi: temporary failure")
	// ErrQuota matches a used-up send budget (ClassQuota), from the
	// platform or from the local reply count.
	ErrQuota = errors.New("openapi: send quota used up")
	// ErrDuplicate matches 40054005 when it cannot be taken as "already
	// delivered": the first attempt of a send with a fresh random msg_seq.
	ErrDuplicate = errors.New("openapi: duplicate msg_seq")
	// ErrReplyWindow matches an expired or invalid reply target
	// (ClassReplyWindow), from the platform or from the local window check.
	ErrReplyWindow = errors.New("openapi: reply window passed")
	// ErrContent matches content refusals (ClassContent).
	ErrContent = errors.New("openapi: content refused")
	// ErrPermission matches missing permissions (ClassPermission).
	ErrPermission = errors.New("openapi: permission denied")
	// ErrTarget matches unreachable recipients (ClassTarget).
	ErrTarget = errors.New("openapi: recipient unreachable")
	// ErrPendingAudit matches a message held for audit (ClassPendingAudit).
	// Only [Client.Do] returns it; the send methods return a SendResult
	// with PendingAudit set and a nil error.
	ErrPendingAudit = errors.New("openapi: message pending audit")
	// ErrInvalidMessage is wrapped by the errors of a message or request
	// refused locally (embed on a c2c or group message, markdown with both
	// content and a template, an empty id, …).
	ErrInvalidMessage = errors.New("openapi: invalid message")
	// ErrNoRoute is returned by [RouteOf] and [Client.Reply] for an event
	// that cannot be answered, or that lacks the id a reply needs.
	ErrNoRoute = errors.New("openapi: event has no reply route")
)

// Platform error codes that the client treats specially.
const (
	CodeTokenExpired  = 11244    // "token not exist or expire"
	CodeDuplicateSeq  = 40054005 // "消息被去重，请检查请求msgseq": (msg_id, msg_seq) already used
	CodeAuditPending  = 304023   // "push message is waiting for audit now"
	CodeAuditPending2 = 304024   // the same, for another message kind
	CodeMsgExpired    = 304027   // the reply window of msg_id has passed
	CodeMsgLimit      = 22009    // "msg limit exceed"
	CodeActiveDenied  = 40034102 // "主动消息失败, 无权限": active message not permitted
	CodeEmptyMessage  = 50006    // the message has no content
	CodeChannelLimit  = 20028    // channel write rate limit
)

// APIError is an error answer of the OpenAPI: a non-2xx status, or a 200
// whose body carries a non-zero code. The body is
// {"message","code","err_code","trace_id"}; the trace id also comes in the
// X-Tps-trace-ID header. It never carries the access token.
type APIError struct {
	// HTTPStatus is the answer's status.
	HTTPStatus int
	// Code is the body's code, ErrCode its err_code. Use [APIError.EffectiveCode].
	Code    int
	ErrCode int
	// Message is the body's message, or the status text when there was none.
	Message string
	// TraceID is the body's trace_id, else the X-Tps-trace-ID header.
	TraceID string
	// Method and Path name the request (Path without the base URL).
	Method string
	Path   string

	// AuditID is the audit id of a pending-audit answer.
	AuditID string
	// RetryAfter is the wait the server asked for (Retry-After), if any.
	RetryAfter time.Duration
}

// EffectiveCode is Code, or ErrCode when Code is 0.
func (e *APIError) EffectiveCode() int {
	if e.Code != 0 {
		return e.Code
	}
	return e.ErrCode
}

// Error prints the request, status, code, message and trace id.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("openapi: ")
	if e.Method != "" || e.Path != "" {
		fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	}
	fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	if c := e.EffectiveCode(); c != 0 {
		fmt.Fprintf(&b, ", code %d", c)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " (trace id %s)", e.TraceID)
	}
	return b.String()
}

// Class is the error's class: by its code when the code is known, else by
// its HTTP status.
func (e *APIError) Class() Class { return ClassOf(e.HTTPStatus, e.EffectiveCode()) }

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
	case ClassInvalid:
		return ErrInvalidMessage
	}
	return nil
}

// ClassOf classifies an answer by its effective code, falling back to the
// HTTP status for a code it does not know (or 0). It is a pure function.
func ClassOf(status, code int) Class {
	if c := classOfCode(code); c != "" {
		return c
	}
	switch {
	case status == http.StatusUnauthorized:
		return ClassToken
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusForbidden:
		return ClassPermission
	case status >= 500:
		return ClassTransient
	case status == http.StatusCreated || status == http.StatusAccepted:
		return ClassPendingAudit
	}
	return ClassOther
}

func classOfCode(code int) Class {
	switch {
	case code == 0:
		return ""
	case code >= 11241 && code <= 11245:
		return ClassToken
	case code == CodeDuplicateSeq:
		return ClassDuplicate
	case code == CodeAuditPending || code == CodeAuditPending2:
		return ClassPendingAudit
	case code == CodeChannelLimit:
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

// Classify returns the class of any error of this package: an [*APIError]'s
// class, the class of a wrapped sentinel, ClassCanceled for a context
// error, ClassTransient for a network error, ClassOther otherwise, and ""
// for nil.
func Classify(err error) Class {
	if err == nil {
		return ""
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class()
	}
	for _, c := range []Class{ClassToken, ClassRateLimited, ClassQuota, ClassDuplicate,
		ClassReplyWindow, ClassContent, ClassPermission, ClassTarget, ClassPendingAudit,
		ClassInvalid, ClassTransient} {
		if errors.Is(err, sentinelOf(c)) {
			return c
		}
	}
	if errors.Is(err, ErrNoRoute) {
		return ClassInvalid
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

// transportError is a failed round trip: no answer was read.
type transportError struct {
	method, path string
	err          error
	sent         bool // the request may have reached the server
}

func (e *transportError) Error() string {
	return fmt.Sprintf("openapi: %s %s: %v", e.method, e.path, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

// Is matches ErrTransient: a network error is temporary.
func (e *transportError) Is(target error) bool { return target == ErrTransient }

// notSent reports whether err certainly happened before the request
// reached the server (a failed dial).
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
