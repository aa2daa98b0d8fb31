// Package ops is the operations surface of the qqgate runner: an HTTP
// server with /healthz, /status and /metrics over the accounts a runner
// supervises.
//
// The runner supplies a Source, a function returning one AccountState per
// configured account; the server calls it on every request and scrape, so
// what it serves is always current and the package holds no state of its
// own. Latency is the histogram helper the runner's handler wrapper fills.
//
//   - /healthz answers 200 while every configured account is running
//     (connected, or reconnecting within its budget) and none has stopped
//     with a fatal error, 503 otherwise (also when no account is
//     configured), with a JSON Health body.
//   - /status answers a JSON array of AccountStatus, one per account.
//   - /metrics answers the Prometheus text format; see NewServer for the
//     metrics.
//
// Nothing served carries a secret or a token: AccountState has no field for
// them.
package ops
