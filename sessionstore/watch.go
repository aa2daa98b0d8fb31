package sessionstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch implements [Store.Watch]. It watches the directory, not the file,
// because a rename-replace swaps the inode (see fsnotify's README), and
// filters by file name. Events are debounced by FileStoreConfig.WatchDebounce;
// after they settle the file is read and reported only if it differs from
// what was last seen and from what this store wrote itself.
func (s *FileStore) Watch(ctx context.Context, accountID string, fn func(Change)) error {
	events := make(chan struct{}, 1)
	w, err := s.watch(accountID, func(*dirWatch) {
		select {
		case events <- struct{}{}:
		default: // already pending
		}
	})
	if err != nil {
		return err
	}
	defer w.unsubscribe()

	var settle *time.Timer
	var settleC <-chan time.Time
	defer func() {
		if settle != nil {
			settle.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.t.done:
			return ErrClosed
		case <-events:
			if settle == nil {
				settle = time.NewTimer(s.debounce)
			} else {
				settle.Reset(s.debounce)
			}
			settleC = settle.C
		case <-settleC:
			settleC = nil
			if ch, ok := w.check(); ok {
				fn(ch)
			}
		}
	}
}

// WatchFunc is [FileStore.Watch] without a goroutine of its own: it
// reports the same changes, debounced the same way, by calling fn on the
// goroutine of the store's one directory watcher, which serves every
// watch (so fn must be quick: a log line, a signal). A runner watching a
// thousand accounts then keeps no thousand goroutines (and their stacks)
// blocked on files that rarely change. It returns once watching, or fails
// ([ErrClosed] after Close). stop ends the watch; it returns after any
// call of fn in progress, and fn is not called after it returns. stop must
// not be called from fn. After Close, fn is no longer called.
func (s *FileStore) WatchFunc(accountID string, fn func(Change)) (stop func(), err error) {
	fw := &funcWatch{fn: fn}
	debounce := s.debounce
	fw.mu.Lock() // no check before fw.w is set
	w, err := s.watch(accountID, func(h *dirWatch) {
		h.due[fw] = time.Now().Add(debounce)
	})
	fw.w = w
	fw.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			fw.mu.Lock() // waits for a check in progress
			fw.stopped = true
			fw.mu.Unlock()
			s.hubMu.Lock()
			delete(w.hub.due, fw)
			s.hubMu.Unlock()
			w.unsubscribe()
		})
	}, nil
}

// funcWatch is one WatchFunc: checked on the directory watcher's goroutine
// once the events of its file settle.
type funcWatch struct {
	fn      func(Change)
	mu      sync.Mutex // held while checking (and calling fn)
	w       *watcher   // set before the first check; guarded by mu
	stopped bool       // guarded by mu
}

func (fw *funcWatch) check() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.stopped || fw.w.s.t.isClosed() {
		return
	}
	if ch, ok := fw.w.check(); ok {
		fw.fn(ch)
	}
}

// watcher is one watch of an account's record file: what it last saw,
// and its subscription to the directory's events.
type watcher struct {
	s           *FileStore
	accountID   string
	path        string
	name        string
	seen        []byte // the file's content last seen; owned by the caller of check
	hub         *dirWatch
	unsubscribe func()
}

// watch subscribes poke to the events of the account's file and reads the
// baseline: only changes from here on are reported. poke runs on the
// directory watcher's goroutine, with FileStore.hubMu held, and must not
// block.
func (s *FileStore) watch(accountID string, poke func(*dirWatch)) (*watcher, error) {
	if s.t.isClosed() {
		return nil, ErrClosed
	}
	if err := s.ensureDir(); err != nil {
		return nil, fmt.Errorf("watch session: %w", err)
	}
	w := &watcher{s: s, accountID: accountID, path: s.Path(accountID)}
	w.name = filepath.Base(w.path)
	hub, unsubscribe, err := s.subscribe(w.name, poke)
	if err != nil {
		return nil, fmt.Errorf("watch session: %w", err)
	}
	w.hub, w.unsubscribe = hub, unsubscribe
	w.seen, _ = s.snapshot(w.path)
	if s.watchReady != nil {
		s.watchReady()
	}
	return w, nil
}

// check reads the file once the events settled and returns the change to
// report, if any: not when the content is what was last seen or what this
// store wrote itself.
func (w *watcher) check() (Change, bool) {
	cur, err := w.s.snapshot(w.path)
	if err != nil {
		return Change{AccountID: w.accountID, Err: err}, true
	}
	if bytes.Equal(cur, w.seen) && (cur == nil) == (w.seen == nil) {
		return Change{}, false
	}
	w.seen = cur
	if w.s.isOwn(w.name, cur) {
		return Change{}, false
	}
	return w.s.change(w.accountID, w.path, cur), true
}

// snapshot reads the file; nil, nil when it does not exist.
func (s *FileStore) snapshot(path string) ([]byte, error) {
	data, _, err := s.readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if data == nil && err == nil {
		data = []byte{}
	}
	return data, err
}

// change turns the new content of a watched file into a Change.
func (s *FileStore) change(accountID, path string, cur []byte) Change {
	c := Change{AccountID: accountID}
	if cur == nil {
		c.Removed = true
		return c
	}
	r, err := ParseRecord(cur)
	switch {
	case err != nil:
		c.Err = &CorruptError{Path: path, Err: err}
	case r.AccountID != accountID:
		c.Removed = true // another account's record now holds the name
	default:
		c.Record = r
	}
	return c
}

// dirWatch is the one fsnotify watcher of a FileStore's directory, shared
// by every Watch and WatchFunc (an inotify instance and its buffers cost tens of
// KiB; a runner may watch hundreds of accounts). It lives while at least
// one Watch runs; its goroutine is waited for by the last to leave.
type dirWatch struct {
	w    *fsnotify.Watcher
	subs map[string]map[*func(*dirWatch)]struct{} // pokes by file name; guarded by FileStore.hubMu
	n    int                                      // subscribers; guarded by FileStore.hubMu
	done chan struct{}                            // closed when the goroutine exits
	// due are the WatchFuncs whose file changed, with when their events
	// settle (each new event pushes it back); guarded by FileStore.hubMu.
	due map[*funcWatch]time.Time
}

// subscribe registers poke for the changes of the file name: it is
// called on the directory watcher's goroutine, with hubMu held, so it must
// not block, after each change. It returns the directory watcher; the
// unsubscribe function must be called once.
func (s *FileStore) subscribe(name string, poke func(*dirWatch)) (*dirWatch, func(), error) {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	if s.hub == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, nil, err
		}
		if err := w.Add(s.dir); err != nil {
			w.Close()
			return nil, nil, err
		}
		s.hub = &dirWatch{w: w, subs: map[string]map[*func(*dirWatch)]struct{}{},
			done: make(chan struct{}), due: map[*funcWatch]time.Time{}}
		go s.fanOut(s.hub)
	}
	h := s.hub
	key := &poke
	if h.subs[name] == nil {
		h.subs[name] = map[*func(*dirWatch)]struct{}{}
	}
	h.subs[name][key] = struct{}{}
	h.n++
	return h, func() {
		s.hubMu.Lock()
		delete(h.subs[name], key)
		if len(h.subs[name]) == 0 {
			delete(h.subs, name)
		}
		h.n--
		last := h.n == 0
		if last && s.hub == h {
			s.hub = nil
		}
		s.hubMu.Unlock()
		if last {
			h.w.Close()
			<-h.done
		}
	}, nil
}

// fanOut forwards directory events to the subscribers of each file name,
// and checks the WatchFuncs whose events settled. Exit: the watcher is
// closed (by the last unsubscribe).
func (s *FileStore) fanOut(h *dirWatch) {
	defer close(h.done)
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	armed := false
	for {
		select {
		case ev, ok := <-h.w.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			s.hubMu.Lock()
			for poke := range h.subs[name] {
				(*poke)(h)
			}
			// Every due time is an event's time plus the debounce, so the
			// earliest only changes when none was pending.
			if !armed && len(h.due) > 0 {
				settle.Reset(s.debounce)
				armed = true
			}
			s.hubMu.Unlock()
		case <-settle.C:
			armed = false
			for _, fw := range s.settled(h) {
				fw.check()
			}
			s.hubMu.Lock()
			if next, ok := nextDue(h); ok {
				settle.Reset(next)
				armed = true
			}
			s.hubMu.Unlock()
		case err, ok := <-h.w.Errors:
			if !ok {
				return
			}
			s.log.Warn().Err(err).Str("dir", s.dir).Msg("session watch")
		}
	}
}

// settled takes the WatchFuncs whose events settled off the due list.
func (s *FileStore) settled(h *dirWatch) []*funcWatch {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	now := time.Now()
	var out []*funcWatch
	for fw, at := range h.due {
		if !at.After(now) {
			out = append(out, fw)
			delete(h.due, fw)
		}
	}
	return out
}

// nextDue is how long until the earliest due check; hubMu is held.
func nextDue(h *dirWatch) (time.Duration, bool) {
	var next time.Time
	for _, at := range h.due {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		return 0, false
	}
	return max(time.Until(next), 0), true
}
