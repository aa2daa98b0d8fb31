package sessionstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch implements [Store.Watch]. It watches the directory, not the file,
// because a rename-replace swaps the inode (see fsnotify's README), and
// filters by file name. Events are debounced by FileStoreConfig.WatchDebounce;
// after they settle the file is read and reported only if it differs from
// what was last seen and from what this store wrote itself.
func (s *FileStore) Watch(ctx context.Context, accountID string, fn func(Change)) error {
	if s.t.isClosed() {
		return ErrClosed
	}
	if err := s.ensureDir(); err != nil {
		return fmt.Errorf("watch session: %w", err)
	}
	path := s.Path(accountID)
	name := filepath.Base(path)
	events, unsubscribe, err := s.subscribe(name)
	if err != nil {
		return fmt.Errorf("watch session: %w", err)
	}
	defer unsubscribe()
	seen, _ := s.snapshot(path) // baseline: only changes from here on
	if s.watchReady != nil {
		s.watchReady()
	}

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
		case _, ok := <-events:
			if !ok {
				return errors.New("watch session: watcher closed")
			}
			if settle == nil {
				settle = time.NewTimer(s.debounce)
			} else {
				settle.Reset(s.debounce)
			}
			settleC = settle.C
		case <-settleC:
			settleC = nil
			cur, readErr := s.snapshot(path)
			if readErr != nil {
				fn(Change{AccountID: accountID, Err: readErr})
				continue
			}
			if bytes.Equal(cur, seen) && (cur == nil) == (seen == nil) {
				continue
			}
			seen = cur
			if s.isOwn(name, cur) {
				continue
			}
			fn(s.change(accountID, path, cur))
		}
	}
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
	subs map[string]map[chan struct{}]struct{} // by file name; guarded by FileStore.hubMu
	n    int                                   // subscribers; guarded by FileStore.hubMu
	done chan struct{}                         // closed when the goroutine exits
}

// subscribe registers interest in changes of the file name. The channel
// gets a value (coalesced) after each change. unsubscribe must be called
// once.
func (s *FileStore) subscribe(name string) (<-chan struct{}, func(), error) {
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
		s.hub = &dirWatch{w: w, subs: map[string]map[chan struct{}]struct{}{}, done: make(chan struct{})}
		go s.fanOut(s.hub)
	}
	h := s.hub
	ch := make(chan struct{}, 1)
	if h.subs[name] == nil {
		h.subs[name] = map[chan struct{}]struct{}{}
	}
	h.subs[name][ch] = struct{}{}
	h.n++
	return ch, func() {
		s.hubMu.Lock()
		delete(h.subs[name], ch)
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
			for ch := range h.subs[name] {
				select {
				case ch <- struct{}{}:
				default: // already pending
				}
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
