package gatewaytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/wire"
)

// Defaults of [Options].
const (
	DefaultAppID             = "1020304" // the app accepted when Options.Apps is nil
	DefaultSecret            = "secret"  // its client secret
	DefaultHeartbeatInterval = 45 * time.Second
	DefaultTokenTTL          = 7200 * time.Second
	// MaxMessageBytes is the read limit of every accepted WebSocket
	// connection; a larger client message closes it with 1009.
	MaxMessageBytes = 1 << 20
)

// DefaultSessionStartLimit is /gateway/bot's session_start_limit when
// Options.SessionStartLimit is zero.
var DefaultSessionStartLimit = wire.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: 86400000, MaxConcurrency: 1}

// Errors returned by the server's methods.
var (
	// ErrClosed is returned by methods called after [Server.Close].
	ErrClosed = errors.New("gatewaytest: server closed")
	// ErrUnknownEvent is returned by [Session.EmitMessage] for an event
	// type it has no body for.
	ErrUnknownEvent = errors.New("gatewaytest: no realistic body for this event type")
	// ErrNoSuchSeq is returned by [Session.EmitDuplicate] for a seq that is
	// not in the session's log.
	ErrNoSuchSeq = errors.New("gatewaytest: no event with that seq")
)

// Options configures a [Server]. The zero value is a working server with
// one app, [DefaultAppID] / [DefaultSecret].
type Options struct {
	// Addr is the listen address; "" means 127.0.0.1:0 (a free port).
	Addr string
	// Apps maps appID to the clientSecret the token endpoint accepts; nil
	// means {DefaultAppID: DefaultSecret}.
	Apps map[string]string
	// HeartbeatInterval is sent in HELLO; zero means 45 s.
	HeartbeatInterval time.Duration
	// TokenTTL is the lifetime of an access token (expires_in); zero means
	// 7200 s.
	TokenTTL time.Duration
	// TokenExpiresInFull makes the token endpoint state the full TokenTTL
	// as expires_in even for a token it hands out again. By default it
	// states the token's remaining life. The platform's docs do not say
	// which the real endpoint does; a client must cope with both.
	TokenExpiresInFull bool
	// Now is the clock of the token endpoint (issue, expiry, the renewal
	// window) and of event timestamps; nil means time.Now. A test moves
	// it to reach a token's last minute or its expiry without sleeping.
	// It must be safe for concurrent use.
	Now func() time.Time
	// AllowedIntents is the mask of intents an IDENTIFY may ask for; 0
	// allows all.
	AllowedIntents uint32
	// IntentRejection is how an IDENTIFY asking for intents outside
	// AllowedIntents is rejected; the zero value is
	// RejectInvalidSession4903.
	IntentRejection RejectMode
	// ResumeRejection is how a RESUME of an unknown, expired or foreign
	// session is rejected; the zero value is ResumeRejectInvalidSession.
	// The accepting modes (ResumeDropBeforeResumed, ResumeAcceptThenClose,
	// ResumeDropMidReplay) act as the zero value here.
	ResumeRejection ResumeReject
	// Shards is /gateway/bot's shards; zero means 1.
	Shards int
	// SessionStartLimit is /gateway/bot's session_start_limit; the zero
	// value means DefaultSessionStartLimit.
	SessionStartLimit wire.SessionStartLimit
	// HeartbeatTimeout, when positive, closes a connection with 4009
	// "Session timed out" when no heartbeat arrived for that long (counted
	// from the upgrade, then from the last heartbeat). Zero turns it off.
	HeartbeatTimeout time.Duration
	// RejectEarlyHeartbeat closes a connection with 4003 "not
	// authenticated" when a heartbeat (op 1) arrives after IDENTIFY or
	// RESUME and before the server answered it with READY or RESUMED: the
	// official docs say to heartbeat once authenticated, and a real gateway
	// may refuse it. The server answers at once unless [Server.HoldAuth]
	// holds the answer back, so use the two together.
	RejectEarlyHeartbeat bool
	// Logger receives Debug lines for frames and Info lines for sessions.
	// The zero value is silent.
	Logger zerolog.Logger
}

// Server is a running fake gateway. Create it with [NewServer] or
// [NewTestServer]; all its methods are safe for concurrent use.
type Server struct {
	opts Options
	apps map[string]string
	log  zerolog.Logger

	ln      net.Listener
	httpSrv *http.Server
	baseURL string
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine of the server

	mu      sync.Mutex // guards everything below, and all Session and conn state
	closed  bool
	changed chan struct{}

	tokens       map[string]*token // by value
	current      map[string]*token // by appID: the latest issued
	tokenFetches int
	gwFetches    int
	tokenFails   []httpFailure
	gwFails      []httpFailure
	lastTrace    string
	startLimit   wire.SessionStartLimit

	withholdACKs   bool
	holdAuth       bool
	identifyScript []rejection
	resumeScript   []resumeAction
	helloScript    []rejection

	conns      map[int]*conn // live connections
	totalConns int

	sessions    map[string]*Session
	order       []*Session // by creation
	readyCursor int        // next index of order for WaitSession

	received     []Received
	unique       uint64
	clientCloses []ClientClose // guarded by mu

	api apiState // the send API (openapi.go)
}

// NewServer starts a server listening on Options.Addr (127.0.0.1:0 by
// default). It panics if it cannot listen, as httptest.NewServer does. The
// caller must call [Server.Close].
func NewServer(opts Options) *Server {
	if opts.Apps == nil {
		opts.Apps = map[string]string{DefaultAppID: DefaultSecret}
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Shards <= 0 {
		opts.Shards = 1
	}
	if opts.SessionStartLimit == (wire.SessionStartLimit{}) {
		opts.SessionStartLimit = DefaultSessionStartLimit
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(fmt.Sprintf("gatewaytest: listen on %s: %v", addr, err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:       opts,
		apps:       maps.Clone(opts.Apps),
		log:        opts.Logger.With().Str("component", "gatewaytest").Logger(),
		ln:         ln,
		baseURL:    "http://" + ln.Addr().String(),
		ctx:        ctx,
		cancel:     cancel,
		changed:    make(chan struct{}),
		tokens:     make(map[string]*token),
		current:    make(map[string]*token),
		startLimit: opts.SessionStartLimit,
		conns:      make(map[int]*conn),
		sessions:   make(map[string]*Session),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/app/getAppAccessToken", s.serveToken)
	mux.HandleFunc("/gateway", s.serveGateway(false))
	mux.HandleFunc("/gateway/bot", s.serveGateway(true))
	mux.HandleFunc("/websocket", s.serveWebSocket)
	mux.HandleFunc("/websocket/", s.serveWebSocket)
	s.serveOpenAPI(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		s.writeAPIError(w, http.StatusNotFound, 404, "not found")
	})
	s.httpSrv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.enter() {
				s.writeAPIError(w, http.StatusServiceUnavailable, 503, "server closed")
				return
			}
			defer s.wg.Done()
			mux.ServeHTTP(w, r)
		}),
		ErrorLog:          log.New(io.Discard, "", 0),
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.httpSrv.Serve(ln)
	}()
	return s
}

// TB is what [NewTestServer] needs of a test: *testing.T, *testing.B and
// *testing.F have these methods. An interface, not testing.TB, so that a
// program using the fake outside tests (qqgate demo) does not link the
// testing package.
type TB interface {
	Helper()
	Cleanup(func())
}

// NewTestServer is [NewServer] with tb.Cleanup(s.Close).
func NewTestServer(tb TB, opts Options) *Server {
	tb.Helper()
	s := NewServer(opts)
	tb.Cleanup(s.Close)
	return s
}

// enter registers a request goroutine unless the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close closes the listener and every connection (without a close frame)
// and waits for all of the server's goroutines. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, c := range s.conns {
		if c.hbTimer != nil {
			c.hbTimer.Stop()
		}
	}
	s.notifyLocked()
	s.mu.Unlock()

	s.cancel() // every connection's context: readers and writers return
	_ = s.httpSrv.Close()
	s.wg.Wait()
}

// URL is the API base, http://127.0.0.1:PORT (serves /gateway and
// /gateway/bot, and the token endpoint).
func (s *Server) URL() string { return s.baseURL }

// TokenURL is URL()+"/app/getAppAccessToken".
func (s *Server) TokenURL() string { return s.baseURL + "/app/getAppAccessToken" }

// WebSocketURL is ws://127.0.0.1:PORT/websocket, the URL /gateway returns.
func (s *Server) WebSocketURL() string { return "ws" + s.baseURL[len("http"):] + "/websocket" }

// Changed returns a channel that is closed at the next change of the
// server's state (a frame received, a connection opened or ended, a session
// created, attached or detached, a token issued, Close).
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Wait blocks until cond returns true, re-evaluating it after every change
// of the server's state. cond is called without any lock held, so it may
// call the server's methods. Wait returns ctx.Err() when ctx ends first, and
// ErrClosed when the server is closed and cond is still false.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes every waiter. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextUniqueLocked returns a server-wide counter value, starting at 1.
func (s *Server) nextUniqueLocked() uint64 {
	s.unique++
	return s.unique
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newSessionID returns a random UUID-shaped id.
func newSessionID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
