package webhook

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
)

// ErrDuplicateApp is returned by Server.Add for an app id already served.
var ErrDuplicateApp = errors.New("webhook: app id already served")

// Server serves several bots on one URL, routed by X-Bot-Appid: an
// unknown app id gets 404; a request without one gets 400 unless exactly
// one bot is served. Add and Remove may be called while it serves.
type Server struct {
	mu       sync.RWMutex
	bots     map[string]*Bot
	reserved map[string]int // app ids of bots starting: 503, not 404

	unknown, noAppID atomic.Uint64
}

// NewServer returns a Server with no bot.
func NewServer() *Server { return &Server{bots: map[string]*Bot{}, reserved: map[string]int{}} }

// Reserve marks appID as a bot about to be added (its inbox opening):
// until it is, its pushes get 503 (the platform retries them) rather than
// 404. Call the returned release once the bot is added or has failed.
func (s *Server) Reserve(appID string) (release func()) {
	s.mu.Lock()
	s.reserved[appID]++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.reserved[appID]--; s.reserved[appID] <= 0 {
				delete(s.reserved, appID)
			}
			s.mu.Unlock()
		})
	}
}

// Add serves b.
func (s *Server) Add(b *Bot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.bots[b.AppID()]; dup {
		return ErrDuplicateApp
	}
	s.bots[b.AppID()] = b
	return nil
}

// Remove stops serving the bot b (a no-op when another bot has its app id).
func (s *Server) Remove(b *Bot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bots[b.AppID()] == b {
		delete(s.bots, b.AppID())
	}
}

// Len is the number of bots served.
func (s *Server) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.bots)
}

// Unrouted counts requests for no served bot: an unknown app id (404), and
// no app id on a listener with several bots (400).
func (s *Server) Unrouted() (unknownApp, noAppID uint64) {
	return s.unknown.Load(), s.noAppID.Load()
}

// ServeHTTP routes the request to its bot.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderAppID)
	s.mu.RLock()
	var b *Bot
	if id != "" {
		b = s.bots[id]
	} else if len(s.bots) == 1 {
		for _, only := range s.bots {
			b = only
		}
	}
	n := len(s.bots) + len(s.reserved)
	starting := b == nil && id != "" && s.reserved[id] > 0
	s.mu.RUnlock()
	switch {
	case b != nil:
		b.serve(w, r)
	case starting:
		writeReject(w, http.StatusServiceUnavailable, RejectStopped)
	case id == "" && n > 1:
		s.noAppID.Add(1)
		writeReject(w, http.StatusBadRequest, RejectNoAppID)
	default:
		s.unknown.Add(1)
		writeReject(w, http.StatusNotFound, RejectUnknownApp)
	}
}
