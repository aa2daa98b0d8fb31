// Package webhook serves the platform's webhook transport: the platform
// POSTs each event to an HTTPS URL of the bot instead of sending it over
// the WebSocket gateway.
//
// A [Bot] is an http.Handler for one bot; a [Server] serves several on one
// URL, routed by the X-Bot-Appid header. Each request is checked as the
// platform signs it: the Ed25519 key comes from the app secret
// ([KeyFromSecret]), a push's X-Signature-Ed25519 must verify over
// X-Signature-Timestamp followed by the raw body ([Verify]), and the
// callback URL validation (op 13) is answered with [SignValidation].
//
// A verified push is written to the bot's [Inbox] on disk and fsynced
// before it is acknowledged ({"op":12,"d":0}); pushes arriving together
// share one fsync. [Bot.Run] then hands the pushes to an [event.Handler]
// (an [event.Mux], say), one at a time, in order, and commits each once its
// handler returned. A crash after the acknowledgement loses nothing: the
// next [NewBot] finds the push in the inbox and Run handles it first. A
// push the platform retries (same envelope id) is acknowledged and not
// handled again, also after a restart.
//
// Events carry the inbox's own increasing sequence number (pushes have no
// seq), the envelope id, the type, and d exactly as pushed; they can be
// answered like gateway events (openapi.Client.ReplyEvent).
//
// The inbox lives in the session directory, beside the session records:
// [InboxDir]. Its file format is described above [EncodeRecord].
//
// gatewaytest.WebhookPlatform plays the platform's side for tests.
package webhook
