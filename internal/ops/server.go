package ops

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"
)

// ShutdownTimeout bounds the graceful shutdown of Serve: requests in flight
// when its context ends get this long to finish before their connections
// are closed.
const ShutdownTimeout = 5 * time.Second

// Server serves /healthz, /status and /metrics over a Source. Create it
// with NewServer; it is safe for concurrent use.
type Server struct {
	src     Source
	log     zerolog.Logger
	reg     *prometheus.Registry
	mux     *http.ServeMux
	handler http.Handler
	cluster func() ClusterHealth // nil outside a cluster
}

// NewServer returns a server reading src on every request. log receives
// the server's own errors (never a secret: the served data holds none).
//
// /metrics serves, from a registry private to the server, the Go runtime
// and process collectors and these metrics, each labelled by account:
//
//	qqgate_connection_state{state}      gauge: 1 for the current state (AccountState.State), 0 for the other client states
//	qqgate_account_info{app_id}         gauge: always 1
//	qqgate_account_running              gauge 0/1
//	qqgate_account_fatal                gauge 0/1
//	qqgate_events_total                 counter: events handed to the client's queue
//	qqgate_events_received_total{type}  counter (types bounded as EventCounts does)
//	qqgate_events_handled_total{type}   counter (types bounded as EventCounts does)
//	qqgate_handler_failures_total       counter: failed after retries
//	qqgate_handler_errors_total         counter: handler calls that returned an error
//	qqgate_handler_panics_total         counter
//	qqgate_handler_latency_seconds      histogram (LatencyBuckets)
//	qqgate_connects_total, qqgate_reconnects_total, qqgate_resumes_total,
//	qqgate_identifies_total, qqgate_failed_resumes_total,
//	qqgate_duplicates_dropped_total, qqgate_replayed_events_total,
//	qqgate_bad_frames_total, qqgate_oversized_frames_total
//	                                    counters from client.Status
//	qqgate_heartbeat_rtt_seconds        gauge
//	qqgate_last_close_code              gauge (0 before any close)
//	qqgate_last_seq_received            gauge
//	qqgate_last_seq_committed           gauge
//	qqgate_queue_length                 gauge
//	qqgate_store_writes_total           counter
//	qqgate_store_errors_total           counter
//	qqgate_intent_level                 gauge: index of the level in use, 0 the full level
//	qqgate_sends_total{endpoint,outcome} counter: OpenAPI sends (SendKey)
//	qqgate_send_latency_seconds         histogram (LatencyBuckets)
//	qqgate_replies_given_up_total{class} counter: handler replies not delivered
func NewServer(src Source, log zerolog.Logger) *Server {
	s := &Server{src: src, log: log, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /status", s.serveStatus)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.mux, s.handler = mux, mux
	return s
}

// Handle adds a route of the caller's (the runner's local send API) beside
// /healthz, /status and /metrics, with http.ServeMux patterns. Call it
// before serving.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the server's routes: GET /healthz, /status and
// /metrics, and those added with Handle.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry returns the server's private Prometheus registry, to which a
// caller may add collectors of its own.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Serve listens on addr (host:port; port 0 picks one) and serves until ctx
// ends, then shuts down gracefully within ShutdownTimeout and returns nil.
// It returns the listen or serve error otherwise. No goroutine it starts
// outlives it.
func (s *Server) Serve(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened (to learn the
// port of ":0", say). It closes ln.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("ops server listening")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		// Serve failed on its own (ErrServerClosed cannot happen: only
		// this function shuts srv down).
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn().Err(err).Msg("ops server: shutdown timed out; closing connections")
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) accounts() []AccountState {
	if s.src == nil {
		return nil
	}
	return s.src()
}

// SetCluster makes /healthz report the runner's standing in its cluster
// (and answer 503 while it is not OK). Call it before serving.
func (s *Server) SetCluster(f func() ClusterHealth) { s.cluster = f }

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := HealthOf(s.accounts())
	if s.cluster != nil {
		ch := s.cluster()
		h.Cluster = &ch
		h.OK = h.OK && ch.OK
	}
	code := http.StatusOK
	if !h.OK {
		code = http.StatusServiceUnavailable
	}
	s.writeJSON(w, code, h)
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	accounts := s.accounts()
	out := make([]AccountStatus, 0, len(accounts))
	for _, a := range accounts {
		out = append(out, StatusOf(a))
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.log.Error().Err(err).Msg("ops server: encode response")
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// serveMetrics writes the registry's metrics (the Go runtime, the process,
// collectors added with Registry) and then the per-account families, in
// the Prometheus text format, gzipped when the scraper accepts it. A
// collector's error or a label that is not valid UTF-8 leaves out what it
// concerns, logged, and the rest is served.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	mfs, gerr := s.reg.Gather()
	if gerr != nil {
		s.log.Warn().Err(gerr).Msg("metrics: a collector failed; serving the rest")
	}
	accounts, badIDs := metricAccounts(s.accounts())
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	h := w.Header()
	h.Set("Content-Type", string(format))
	h.Set("Cache-Control", "no-store")
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level: no error
		defer gz.Close()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 32<<10)
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			s.log.Warn().Err(err).Msg("metrics: write")
			return
		}
	}
	skipped := writeAccountMetrics(bw, accounts)
	if err := bw.Flush(); err != nil {
		s.log.Debug().Err(err).Msg("metrics: write")
		return
	}
	if badIDs > 0 || skipped > 0 {
		s.log.Warn().Int("accounts", badIDs).Int("samples", skipped).
			Msg("metrics: account ids or label values that are not valid UTF-8 left out")
	}
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip
// (named, with no q or a q above 0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(q), 64)
		return err == nil && v > 0
	}
	return false
}
