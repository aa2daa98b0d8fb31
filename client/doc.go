// Package client keeps one QQ bot account connected to the QQ Bot gateway
// and hands its events to a Handler, and never loses its place.
//
// Use New with a Config (app id, client secret, a Handler, usually a
// sessionstore.FileStore), then Run. Run fetches an access token, discovers
// the gateway, dials, waits for HELLO, sends IDENTIFY or RESUME, heartbeats
// and dispatches, and reconnects per the policy of every close code until
// its context ends, Close is called, or a fatal error occurs.
//
// # Delivery
//
// Every dispatch event (READY and RESUMED included) reaches the Handler in
// seq order, one call at a time, on a dispatcher goroutine fed by a bounded
// queue (it runs while events wait: an idle client keeps none): a slow handler never delays heartbeats; a full queue pauses reading
// from the gateway, nothing is dropped. The seq written to the session
// record is the committed one: every event up to it has been handled. After
// a crash, RESUME from it replays what was received but not handled, so
// delivery is at-least-once. Within a process, replays and duplicate
// deliveries (same envelope id) are dropped and counted.
//
// # Intents
//
// Without Config.Intents or Config.IntentLevels, IDENTIFY asks for what the
// current openclaw QQ plugin sends: public guild messages, direct messages,
// groups and C2C, and interactions (1174409216). Interactions (1<<26) bring
// INTERACTION_CREATE: without them a bot never sees its buttons being
// clicked. When the gateway rejects the intents before READY, the client
// steps down one level of intents.DefaultLevels (without interactions,
// then without direct messages, then channel only) and stores the level in
// the session record.
//
// # Access tokens and HTTP
//
// The token endpoint returns the same token until the last minute of its
// life, so the client renews about 30 seconds before expiry, and drops the
// token on close 4004, HTTP 401 or an OpenAPI code from 11241 to 11245.
// Only a refused app id or secret ends Run; other token answers are
// retried with backoff, and "Too many requests" waits a minute. Error
// answers of the platform are *wire.APIError values that print their trace
// id and match the class sentinels of package wire (wire.ErrRateLimited,
// wire.ErrToken, wire.ErrTransient, …), as the send errors of package
// openapi do. The token request, gateway discovery and the WebSocket upgrade follow
// no redirect to another origin, and URLs in errors have their query
// strings redacted.
//
// # Resume
//
// With a record younger than 5 minutes the client RESUMEs at start-up;
// otherwise, or when the gateway refuses, it IDENTIFYs at the stored intent
// level. Close keeps the session resumable (close code 4000, record written
// at once); Logout ends it (1000, record deleted).
//
// # Concurrency
//
// All methods of Client are safe for concurrent use. Run may be called once.
// No goroutine started by Run outlives it.
package client
