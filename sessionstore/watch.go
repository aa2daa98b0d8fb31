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
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch session: %w", err)
	}
	defer w.Close()
	if err := w.Add(s.dir); err != nil {
		return fmt.Errorf("watch session: %w", err)
	}
	path := s.Path(accountID)
	name := filepath.Base(path)
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
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch session: watcher closed")
			}
			if filepath.Base(ev.Name) != name {
				continue
			}
			if settle == nil {
				settle = time.NewTimer(s.debounce)
			} else {
				settle.Reset(s.debounce)
			}
			settleC = settle.C
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch session: watcher closed")
			}
			s.log.Warn().Err(err).Str("dir", s.dir).Msg("session watch")
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
