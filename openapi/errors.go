package openapi

import (
	"errors"
	"fmt"
	"net"

	"github.com/qqgate/qqgate/wire"
)

// Class is the kind of a send failure, as the platform's error codes group
// them. It decides whether a send is retried, and is the label under which
// failures are counted ([Stats.Failures]). It is the same type as
// wire.Class: one vocabulary for discovery and sending. Every class except
// ClassOther, ClassInvalid and ClassCanceled has a sentinel error that
// errors.Is matches.
type Class = wire.Class

// The classes of send outcomes, the same values as wire's.
const (
	// ClassToken: the access token is missing, bad or expired (codes
	// 11241-11245, or HTTP 401). The token is fetched again once and the
	// request retried.
	ClassToken = wire.ClassToken
	// ClassRateLimited: slow down (HTTP 429, code 20028). Retried after a
	// wait.
	ClassRateLimited = wire.ClassRateLimited
	// ClassTransient: a server error, a network error or a timeout (HTTP
	// 5xx, codes 304082/304083 for media, 306003/306005/306006 for
	// recalls). Retried with backoff.
	ClassTransient = wire.ClassTransient
	// ClassQuota: a send budget is used up (22009 "msg limit exceed",
	// 40034100, 40034102, 40034105, 304045-304050, 40093002, 1100100,
	// 1100308), or the local reply count per inbound message. Not retried.
	ClassQuota = wire.ClassQuota
	// ClassDuplicate: the (msg_id or event_id, msg_seq) pair was already
	// used (40054005). A send whose msg_seq qqgate numbered, that the caller
	// chose, or that is a retry reports this as success with
	// SendResult.Duplicate: the message was already delivered.
	ClassDuplicate = wire.ClassDuplicate
	// ClassReplyWindow: the inbound message is too old to answer, or its id
	// is not valid for a reply (304026, 304027, 304028, 304103, 40034005,
	// 40034128), or the local window check. Not retried.
	ClassReplyWindow = wire.ClassReplyWindow
	// ClassContent: the platform refused the content (50006 empty, 304003
	// and 40054010 unregistered URL, 304025 and 1100101 blocked,
	// 50037-50057 markdown, 40054007 and 40054018 too long, 40034090
	// markdown not allowed). Not retried.
	ClassContent = wire.ClassContent
	// ClassPermission: the app lacks a permission (11251-11265,
	// 11273-11275, 304004 ark, 304036 markdown template, 304037 keyboard,
	// 40034102 active messages, HTTP 403). Not retried.
	ClassPermission = wire.ClassPermission
	// ClassTarget: the recipient cannot be reached (40054002 muted,
	// 40054003 and 40034101 not in the group, 40054004 not a friend,
	// 40054013 refused). Not retried.
	ClassTarget = wire.ClassTarget
	// ClassPendingAudit: accepted, but held for audit (HTTP 202, codes
	// 304023/304024). The typed send methods report it as success with
	// SendResult.PendingAudit; only [Client.Do] returns it as an error.
	ClassPendingAudit = wire.ClassPendingAudit
	// ClassInvalid: the request was refused locally before any round trip
	// (a malformed message, a bad id, an unroutable event).
	ClassInvalid = wire.ClassInvalid
	// ClassCanceled: the caller's context ended.
	ClassCanceled = wire.ClassCanceled
	// ClassOther: anything else (an unknown code, HTTP 404, …). Not
	// retried.
	ClassOther = wire.ClassOther
)

// Sentinel errors, matched with errors.Is against the errors of the send
// methods: an [*APIError] matches the sentinel of its class, and the local
// checks wrap the sentinel of the rule they enforce. The class sentinels
// are the very values of package wire (ErrQuota is wire.ErrQuota, …), so
// errors.Is(err, wire.ErrRateLimited) and errors.Is(err,
// openapi.ErrRateLimited) agree, for a send error as for a discovery error
// of package client.
var (
	// ErrToken (wire.ErrToken) matches token refusals (ClassToken) that
	// persisted after one refetch of the token.
	ErrToken = wire.ErrToken
	// ErrRateLimited (wire.ErrRateLimited) matches rate limiting
	// (ClassRateLimited) that persisted through every retry.
	ErrRateLimited = wire.ErrRateLimited
	// ErrTransient (wire.ErrTransient) matches server, network and timeout
	// failures (ClassTransient) that persisted through every retry.
	ErrTransient = wire.ErrTransient
	// ErrQuota (wire.ErrQuota) matches a used-up send budget (ClassQuota),
	// from the platform or from the local reply count.
	ErrQuota = wire.ErrQuota
	// ErrDuplicate (wire.ErrDuplicate) matches 40054005 when it cannot be
	// taken as "already delivered": the first attempt of a send with a
	// fresh random msg_seq.
	ErrDuplicate = wire.ErrDuplicate
	// ErrReplyWindow (wire.ErrReplyWindow) matches an expired or invalid
	// reply target (ClassReplyWindow), from the platform or from the local
	// window check.
	ErrReplyWindow = wire.ErrReplyWindow
	// ErrContent (wire.ErrContent) matches content refusals (ClassContent).
	ErrContent = wire.ErrContent
	// ErrPermission (wire.ErrPermission) matches missing permissions
	// (ClassPermission).
	ErrPermission = wire.ErrPermission
	// ErrTarget (wire.ErrTarget) matches unreachable recipients
	// (ClassTarget).
	ErrTarget = wire.ErrTarget
	// ErrPendingAudit (wire.ErrPendingAudit) matches a message held for
	// audit (ClassPendingAudit). Only [Client.Do] returns it; the send
	// methods return a SendResult with PendingAudit set and a nil error.
	ErrPendingAudit = wire.ErrPendingAudit
	// ErrInvalidMessage is wrapped by the errors of a message or request
	// refused locally (embed on a c2c or group message, markdown with both
	// content and a template, an empty id, …).
	ErrInvalidMessage = errors.New("openapi: invalid message")
	// ErrNoRoute is returned by [RouteOf] and [Client.Reply] for an event
	// that cannot be answered, or that lacks the id a reply needs.
	ErrNoRoute = errors.New("openapi: event has no reply route")
)

// Platform error codes that the client treats specially (the same values
// as package wire's).
const (
	CodeTokenExpired  = wire.CodeTokenExpired  // "token not exist or expire"
	CodeDuplicateSeq  = wire.CodeDuplicateSeq  // "消息被去重，请检查请求msgseq": (msg_id, msg_seq) already used
	CodeAuditPending  = wire.CodeAuditPending  // "push message is waiting for audit now"
	CodeAuditPending2 = wire.CodeAuditPending2 // the same, for another message kind
	CodeMsgExpired    = wire.CodeMsgExpired    // the reply window of msg_id has passed
	CodeMsgLimit      = wire.CodeMsgLimit      // "msg limit exceed"
	CodeActiveDenied  = wire.CodeActiveDenied  // "主动消息失败, 无权限": active message not permitted
	CodeEmptyMessage  = wire.CodeEmptyMessage  // the message has no content
	CodeChannelLimit  = wire.CodeChannelLimit  // channel write rate limit
)

// APIError is an error answer of the OpenAPI: a non-2xx status, or a 200
// whose body carries a non-zero code. It is the same type as
// wire.APIError (an alias), the error of gateway discovery and of the
// token endpoint too, so errors.As with either name finds it. Its Status
// is the HTTP status, Request names the request ("POST
// https://host/v2/…", without the query string), and AuditID and
// RetryAfter come from a pending-audit answer and a Retry-After header.
// It never carries the access token.
type APIError = wire.APIError

// ClassOf classifies an answer by its effective code, falling back to the
// HTTP status for a code it does not know (or 0). It is a pure function,
// wire.ClassOf.
func ClassOf(status, code int) Class { return wire.ClassOf(status, code) }

// Classify returns the class of any error of this package: an [*APIError]'s
// class, the class of a wrapped sentinel (ClassInvalid for
// ErrInvalidMessage and ErrNoRoute), ClassCanceled for a context error,
// ClassTransient for a network error, ClassOther otherwise, and "" for
// nil.
func Classify(err error) Class {
	c := wire.Classify(err)
	switch c {
	case ClassTransient, ClassCanceled, ClassOther:
		var ae *APIError
		if !errors.As(err, &ae) && (errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrNoRoute)) {
			return ClassInvalid
		}
	}
	return c
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
