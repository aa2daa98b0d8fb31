// Package openapi sends through the QQ Bot OpenAPI: replies and active
// messages to QQ users (c2c), QQ groups, guild channels and guild direct
// messages, media uploads, recalls and interaction ACKs.
//
// A [Client] is built from a [Config] with the app id and a [TokenSource]
// (share the gateway connection's, so the account has one token cycle):
//
//	api, err := openapi.New(openapi.Config{AppID: appID, Tokens: tokens})
//	res, err := api.Reply(ctx, in, openapi.Text("hello"))
//
// The methods are named after botgo's (PostC2CMessage, PostGroupMessage,
// PostChannelMessage, PostDMMessage, CreateDMS, UploadC2CMedia,
// UploadGroupMedia, Retract…Message, AckInteraction) but typed; [Client.Do]
// sends anything else with the same headers, token handling and retries.
//
// # Replies
//
// [Client.Reply] answers an inbound event where [RouteOf] says: the event
// type picks the endpoint, and d.id (or the envelope id, for FRIEND_ADD,
// C2C_MSG_RECEIVE, GROUP_ADD_ROBOT and GROUP_MSG_RECEIVE) becomes msg_id or
// event_id, which makes the message a passive reply.
//
// The platform drops a second message with the same (msg_id or event_id,
// msg_seq) with error 40054005. qqgate numbers the replies to one inbound
// message 1, 2, 3… in the order they are made, a pure function of the
// inbound id and the reply's index within a reply scope ([WithReplyScope],
// one per handler run). A retry keeps its msg_seq, and a handler run again
// after a crash sends the same numbers: the platform drops what was
// already delivered, and the client reports those sends as success with
// [SendResult.Duplicate]. The user sees each reply once. A send that
// answers no inbound message gets a random msg_seq above any reply number
// ([FreshMsgSeq]).
//
// The platform's passive rules (c2c: 5 replies within 60 minutes of the
// message; group: 5 within 5 minutes; channel and DM: 5 minutes) are
// checked before the request ([Limits]): a reply past them fails at once
// with ErrReplyWindow or ErrQuota.
//
// # Errors and retries
//
// A refusal is an [*APIError] with the HTTP status, the body's code and
// err_code, its message and the trace id; errors.Is matches it against the
// sentinel of its [Class]. APIError, Class and the class sentinels are
// those of package wire, the same type and values that gateway discovery
// and the token endpoint of package client return, so one errors.Is or
// errors.As serves both:
//
//   - ErrToken (11241-11245, HTTP 401): the token is invalidated and
//     fetched again once, and the request retried;
//   - ErrRateLimited (HTTP 429, 20028) and ErrTransient (HTTP 5xx,
//     network errors, timeouts): retried with jittered backoff, up to
//     Config.MaxRetries, sending the same body (the same msg_seq);
//   - ErrQuota, ErrReplyWindow, ErrContent, ErrPermission, ErrTarget:
//     not retried;
//   - 40054005 (ErrDuplicate): success with Duplicate, as above;
//   - HTTP 202 or codes 304023/304024: the message is held for audit;
//     success with [SendResult.PendingAudit] and the audit id.
//
// Channel and DM messages carry no msg_seq, and active messages no msg_id
// or event_id, so the platform cannot drop a repeat: after a failure that
// leaves delivery unknown (5xx, timeout) they are not retried unless
// Config.RetryAmbiguous is set.
//
// # Testing
//
// The fake platform in package gatewaytest serves this API on loopback,
// as strictly as the real one: it checks the token and headers, drops
// repeated msg_seq with 40054005, enforces the reply windows and counts,
// and records what each user would see.
package openapi
