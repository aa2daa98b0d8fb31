// Package gatewaytest runs a fake QQ Bot gateway for tests, in the manner of
// net/http/httptest: a real HTTP and WebSocket server on 127.0.0.1 that
// speaks the QQ Bot gateway protocol, as the official docs and the public
// SDKs describe it, and the OpenAPI's send side, and can be scripted to
// misbehave.
//
// Use [NewTestServer] in a test (it closes itself through t.Cleanup) or
// [NewServer] elsewhere (the caller must call [Server.Close]). Point the
// program under test at [Server.TokenURL] for the access token,
// [Server.URL] as the OpenAPI base (GET /gateway, GET /gateway/bot) and
// [Server.WebSocketURL] for the gateway itself.
//
// # HTTP
//
//   - POST /app/getAppAccessToken with a JSON body {"appId","clientSecret"}
//     answers {"access_token":"…","expires_in":"7200"} (expires_in is a
//     string, as the real endpoint sends it). As the real endpoint, it
//     returns the same token while it is valid, except in its last minute
//     (or last half of its life, for a TTL under two minutes), when a new
//     one is issued and the old one keeps working until it expires.
//     expires_in is the remaining life of the token returned, or always the
//     full TTL with [Options.TokenExpiresInFull]. [Options.Now] sets the
//     clock, so a test reaches that last minute without sleeping. Errors
//     are HTTP 200 with a body {"code":…,"message":…}: 100007 "appid
//     invalid" without Content-Type application/json or with a body that
//     is not JSON, 100016 "invalid appid or secret" for an unknown app or a
//     wrong secret.
//   - GET /gateway answers {"url":"ws://127.0.0.1:PORT/websocket"};
//     GET /gateway/bot adds shards and session_start_limit. Both need
//     "Authorization: QQBot <token>" with a valid token, otherwise HTTP 401
//     with code 11244 "token not exist or expire".
//   - Every error body has the platform's shape,
//     {"message","code","err_code","trace_id"}, and the trace id is also in
//     the X-Tps-trace-ID header ([Server.LastTraceID] gives the last one).
//
// # Send API
//
// The server also plays the platform's send side, as strictly as the real
// one, at [Server.URL]:
//
//   - POST /v2/users/{openid}/messages, /v2/groups/{group_openid}/messages
//     (c2c and group: msg_type, content, markdown, keyboard, ark, media,
//     msg_id or event_id, msg_seq), POST /channels/{channel_id}/messages and
//     /dms/{guild_id}/messages (content, embed, ark, image, markdown,
//     keyboard, msg_id or event_id);
//   - POST /v2/users/{openid}/files and /v2/groups/{group_openid}/files
//     (file_type, url or base64 file_data, srv_send_msg), answering
//     {"file_uuid","file_info","ttl"}; a file_info serves the scene it was
//     uploaded for only;
//   - DELETE …/messages/{message_id} on the four targets (recall; c2c and
//     group within 2 minutes), PUT /interactions/{id} {"code":0..5}, and
//     POST /users/@me/dms {recipient_id, source_guild_id}.
//
// Every request needs "Authorization: QQBot <token>" with a valid token of
// the token endpoint (else HTTP 401 {"message":"token not exist or
// expire","code":11244,"err_code":11244,"trace_id":…}), X-Union-Appid
// naming the token's app and, with a body, Content-Type application/json
// (else HTTP 400, code 400). Every answer carries an X-Tps-trace-ID header,
// and every error body has the platform's shape {"message","code",
// "err_code","trace_id"}.
//
// The msg_id or event_id of a reply must be the id of an event the
// platform sent (on a session, or made by [Server.NewInbound]) whose reply
// goes to that very target, else 304026. A c2c or group message with
// neither is an active send, refused with 40034102 unless
// [Server.AllowActiveSends]. A second c2c or group message with the same
// (msg_id or event_id, msg_seq) is refused with HTTP 400, code 40054005
// (msg_seq defaults to 1). Replies past the window (304027) or the count
// (22009) of [ReplyLimits] are refused; windows count from when the fake
// first knew the id, by the send clock ([Server.SetSendClock]).
//
// [Server.Sent] records every message request and its answer,
// [Server.Delivered] what each target actually sees (each message once,
// recalled ones left out), and [Server.FailNextSends] scripts failures: a
// 500, a 429, a 401 11244, a hang until the request ends, an answer lost
// after delivery, or a message held for audit (HTTP 202, 304023).
//
// # WebSocket
//
// Every accepted connection gets an id (1, 2, …) and immediately receives
// HELLO. IDENTIFY (op 2) and RESUME (op 6) are accepted at any time after the
// upgrade, even before the client has read HELLO. Frames are checked in this
// order:
//
//   - a frame that is not JSON with an integer "op": close 4002 "decode error";
//     an op other than 1, 2 or 6: close 4001 "invalid opcode";
//   - op 1: answered with {"op":11} unless [Server.WithholdACKs] is on;
//     with [Options.RejectEarlyHeartbeat], an op 1 that arrives after
//     IDENTIFY or RESUME and before the server answered it closes 4003
//     "not authenticated";
//   - op 2: the token must be "QQBot <valid token>" (else close 4004
//     "authentication failed"); a connection that already carries a session
//     is closed 4005 "already authenticated"; session_start_limit.remaining
//     is decremented (never below 0, and never enforced); then a scripted
//     rejection ([Server.RejectIdentifies]) is applied if one is queued;
//     then the intents are checked against [Options.AllowedIntents] and
//     rejected per [Options.IntentRejection] (default: op 9 false, then
//     close 4903 "create session error"); a bad shard closes 4010 "invalid
//     shard". Success: READY with s=1 and a new session id, the identify's
//     shard echoed.
//   - op 6: the token may be "QQBot <token>" or the bare token (as botgo
//     sends it), and must be valid (else 4004); a queued scripted outcome
//     ([Server.RejectResumes]) is applied; an unknown session, an expired one
//     or one of another app is rejected per [Options.ResumeRejection]
//     (default: op 9 false, then close 4006 "invalid session"); a seq
//     greater than the session's last seq closes 4007 "invalid seq".
//     Success: every dispatch of the session with s > seq is sent again, in
//     order and byte for byte, then {"op":0,"s":N,"t":"RESUMED","d":""},
//     where N is the session's next seq. RESUMED frames are never replayed.
//
// [Server.HoldAuth] holds the answers to IDENTIFY and RESUME back until
// released: a gateway slow to send READY or RESUMED.
//
// Each session has a monotonic seq and a replay log of all its dispatches,
// READY included. [Session.Emit] appends to the log and sends the frame if a
// connection currently carries the session; otherwise the event waits for a
// RESUME. When a RESUME takes over a session that still has a live
// connection, that connection is closed 4009 "Session timed out".
//
// # Scripted faults
//
// The methods of [Session] (Drop, Reconnect, InvalidSession, CloseWith,
// Expire, EmitDuplicate) and of [Server] (WithholdACKs, RejectResumes,
// RejectIdentifies, CloseNextAfterHello, FailNextTokens, FailNextGateways,
// RevokeTokens, …) script the server's behaviour. Close codes are
// [wire.CloseCode]s; a [Close] is a code with its reason, a [Failure] an
// HTTP error answer. Every fault that ends a connection detaches
// the session from it at once: events emitted after the call returns are
// only logged, and reach the client through a later RESUME. Frames queued
// before the fault are written first.
//
// Close code 1006 ([wire.CloseAbnormal]), and any code that may not be sent
// in a close frame, means "drop the TCP connection without a close frame".
//
// # Waiting
//
// Nothing needs time.Sleep: [Server.WaitSession] returns sessions as they
// reach READY, [Session.WaitResumed] returns as a session is resumed (after
// a Drop, say, when WaitSession has no new session to return),
// [Server.Wait] blocks until a condition over the server's state holds, and
// [Server.Changed] gives a channel closed at the next change.
//
// # Concurrency
//
// All methods of [Server] and [Session] are safe for concurrent use. Each
// connection has one reading goroutine and one writing goroutine; all server
// state is guarded by one mutex, and frames are queued for writing under it,
// so the order of frames on a connection is the order of the decisions that
// produced them. [Server.Close] closes every connection and returns only
// after all goroutines of the server have exited.
package gatewaytest
