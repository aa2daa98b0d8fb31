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
	w, err := s.watch(accountID, func() {
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
// reports the same changes, debounced the same way, by calling fn on a
// timer's goroutine, one call at a time. A runner watching a thousand
// accounts then keeps no thousand goroutines (and their stacks) blocked
// on a file that rarely changes. It returns once watching (or fails with
// [ErrClosed] after Close); stop ends the watch and returns after any
// call of fn in progress, and fn is not called after stop returns. stop
// must not be called from fn. After Close, fn is no longer called.
func (s *FileStore) WatchFunc(accountID string, fn func(Change)) (stop func(), err error) {
	var w *watcher     // set once watching; guarded by mu
	var mu sync.Mutex  // guards w, timer and stopped
	var run sync.Mutex // one check (and fn) at a time
	var timer *time.Timer
	var stopped bool
	check := func() {
		run.Lock()
		defer run.Unlock()
		mu.Lock()
		cur, done := w, stopped
		mu.Unlock()
		if done || cur == nil || s.t.isClosed() {
			return
		}
		if ch, ok := cur.check(); ok {
			fn(ch)
		}
	}
	ww, err := s.watch(accountID, func() {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case stopped:
		case timer == nil:
			timer = time.AfterFunc(s.debounce, check)
		default:
			timer.Reset(s.debounce)
		}
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	w = ww
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			stopped = true
			if timer != nil {
				timer.Stop()
			}
			mu.Unlock()
			ww.unsubscribe()
			run.Lock() // wait for a call in progress
			run.Unlock()
		})
	}, nil
}

// watcher is one watch of an account's record file: what it last saw,
// and its subscription to the directory's events.
type watcher struct {
	s           *FileStore
	accountID   string
	path        string
	name        string
	seen        []byte // the file's content last seen; owned by the caller of check
	unsubscribe func()
}

// watch subscribes poke to the events of the account's file and reads the
// baseline: only changes from here on are reported. poke runs on the
// directory watcher's goroutine and must not block.
func (s *FileStore) watch(accountID string, poke func()) (*watcher, error) {
	if s.t.isClosed() {
		return nil, ErrClosed
	}
	if err := s.ensureDir(); err != nil {
		return nil, fmt.Errorf("watch session: %w", err)
	}
	w := &watcher{s: s, accountID: accountID, path: s.Path(accountID)}
	w.name = filepath.Base(w.path)
	unsubscribe, err := s.subscribe(w.name, poke)
	if err != nil {
		return nil, fmt.Errorf("watch session: %w", err)
	}
	w.unsubscribe = unsubscribe
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
// by every Watch call (an inotify instance and its buffers cost tens of
// KiB; a runner may watch hundreds of accounts). It lives while at least
// one Watch runs; its goroutine is waited for by the last to leave.
type dirWatch struct {
	w    *fsnotify.Watcher
	subs map[string]map[*func()]struct{} // pokes by file name; guarded by FileStore.hubMu
	n    int                             // subscribers; guarded by FileStore.hubMu
	done chan struct{}                   // closed when the goroutine exits
}

// subscribe registers poke for the changes of the file name: it is
// called (on the directory watcher's goroutine, so it must not block)
// after each change. unsubscribe must be called once.
func (s *FileStore) subscribe(name string, poke func()) (func(), error) {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	if s.hub == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, err
		}
		if err := w.Add(s.dir); err != nil {
			w.Close()
			return nil, err
		}
		s.hub = &dirWatch{w: w, subs: map[string]map[*func()]struct{}{}, done: make(chan struct{})}
		go s.fanOut(s.hub)
	}
	h := s.hub
	key := &poke
	if h.subs[name] == nil {
		h.subs[name] = map[*func()]struct{}{}
	}
	h.subs[name][key] = struct{}{}
	h.n++
	return func() {
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

// fanOut forwards directory events to the subscribers of each file name.
// Exit: the watcher is closed (by the last unsubscribe).
func (s *FileStore) fanOut(h *dirWatch) {
	defer close(h.done)
	for {
		select {
		case ev, ok := <-h.w.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			s.hubMu.Lock()
			for poke := range h.subs[name] {
				(*poke)()
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
