package sessionstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

const (
	dirPerm  = 0o700
	filePerm = 0o600

	corruptInfix = ".json.corrupt-"
	tempInfix    = ".json.tmp-"
	lockSuffix   = ".lock"

	defaultWatchDebounce = 100 * time.Millisecond
	ownHistory           = 4
)

// DefaultDir is the plugin's session directory:
// $HOME/.openclaw/qqbot/sessions, or /tmp/.openclaw/qqbot/sessions when
// HOME is unset. See [DirForHome].
func DefaultDir() string { return DirForHome(os.Getenv("HOME")) }

// DirForHome is the session directory for the home directory home; an
// empty home means /tmp, as in the plugin.
func DirForHome(home string) string {
	if home == "" {
		home = "/tmp"
	}
	return filepath.Join(home, ".openclaw", "qqbot", "sessions")
}

// FileStoreConfig configures [NewFileStore]. The zero value is usable.
type FileStoreConfig struct {
	// Dir is the session directory, created (0700) on the first write.
	// Zero means [DefaultDir].
	Dir string
	// Clock is the time source for savedAt, expiry and throttling. Zero
	// means [SystemClock].
	Clock Clock
	// Logger receives write failures of trailing saves and permission
	// warnings. Zero means no logging.
	Logger zerolog.Logger
	// WatchDebounce is how long Watch waits for file events to settle
	// before looking at the file. It runs on real time, not Clock. Zero
	// means 100ms.
	WatchDebounce time.Duration
}

// FileStore is the [Store] over a directory of record files shared with
// the openclaw plugin (see the package doc for the file rules). Create it
// with [NewFileStore] and Close it to write pending saves. It is safe for
// concurrent use; several FileStores and processes may share a directory.
type FileStore struct {
	dir      string
	clock    Clock
	log      zerolog.Logger
	debounce time.Duration
	t        *throttle

	dirMu     sync.Mutex
	dirWarned bool // the directory's loose mode was reported; guarded by dirMu

	ownMu sync.Mutex
	own   map[string]*ownState // by file name; guarded by ownMu

	inProcLocks sync.Map // Lock where flock(2) is missing (not unix)

	hubMu sync.Mutex
	hub   *dirWatch // the shared directory watcher, while any Watch runs; guarded by hubMu

	statsMu sync.Mutex
	stats   map[string]WriteStats // by account id; guarded by statsMu

	watchReady func() // test hook: called once Watch is watching

	io     chan struct{} // slots of file operations in progress (see fileIO)
	ioBusy atomic.Int32  // file operations in progress
	ioPeak atomic.Int32  // the most ever in progress at once (tests)
}

// ownState is what this store last did to one file, so Watch can tell
// our own writes from other processes'.
type ownState struct {
	recent  [ownHistory][]byte // contents we wrote, newest at next-1
	next    int
	removed bool // the last thing we did was remove the file
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store over cfg.Dir. It does not touch the disk:
// a directory that cannot be created shows up as write errors, so a bot
// keeps running without resume rather than not starting. Call
// [FileStore.Prepare] to check the directory up front instead.
func NewFileStore(cfg FileStoreConfig) (*FileStore, error) {
	if cfg.WatchDebounce < 0 {
		return nil, fmt.Errorf("sessionstore: negative WatchDebounce %v", cfg.WatchDebounce)
	}
	dir := cfg.Dir
	if dir == "" {
		dir = DefaultDir()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: session dir: %w", err)
	}
	s := &FileStore{
		dir:      dir,
		clock:    cfg.Clock,
		log:      cfg.Logger.With().Str("component", "sessionstore").Logger(),
		debounce: cfg.WatchDebounce,
		own:      make(map[string]*ownState),
		stats:    make(map[string]WriteStats),
		io:       make(chan struct{}, maxFileIO),
	}
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.debounce == 0 {
		s.debounce = defaultWatchDebounce
	}
	s.t = newThrottle(s.clock, s.log, s.writeRecord)
	return s, nil
}

// WriteStats counts the record writes of one account.
type WriteStats struct {
	Writes uint64 // records written to disk
	Errors uint64 // writes that failed
}

// Stats returns the account's write counts since the store was made.
func (s *FileStore) Stats(accountID string) WriteStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats[accountID]
}

// Dir returns the session directory.
func (s *FileStore) Dir() string { return s.dir }

// Path returns the record file of accountID.
func (s *FileStore) Path(accountID string) string {
	return filepath.Join(s.dir, FileName(accountID))
}

// Prepare creates the session directory if needed and checks that it can
// be used: a directory this user owns, tightened to 0700 when others could
// read it. A directory another user owns is refused (it could hold links
// planted to make this process clobber files elsewhere). Any failure is a
// [*DirError] naming the directory. Writes, Lock and Watch do the same;
// call Prepare to find out at start-up rather than at the first write.
func (s *FileStore) Prepare() error { return s.ensureDir() }

// ensureDir creates the directory if needed and checks it; see Prepare.
// It runs before every write: the directory may have been removed, or
// replaced, since the last one.
func (s *FileStore) ensureDir() error {
	if err := os.MkdirAll(s.dir, dirPerm); err != nil {
		return &DirError{Path: s.dir, Err: err}
	}
	// The directory itself may be a link (a home directory moved
	// elsewhere): what counts is the directory it leads to, checked and
	// tightened through one descriptor.
	d, err := os.Open(s.dir)
	if err != nil {
		return &DirError{Path: s.dir, Err: err}
	}
	defer d.Close()
	fi, err := d.Stat()
	if err == nil {
		err = checkDir(s.dir, fi)
	}
	if err != nil {
		return &DirError{Path: s.dir, Err: err}
	}
	if fi.Mode().Perm()&^dirPerm != 0 {
		if err := d.Chmod(dirPerm); err != nil {
			s.dirMu.Lock()
			warned := s.dirWarned
			s.dirWarned = true
			s.dirMu.Unlock()
			if !warned {
				s.log.Warn().Err(err).Str("dir", s.dir).Stringer("mode", fi.Mode().Perm()).
					Msg("session dir is readable by others and cannot be tightened")
			}
		}
	}
	return nil
}

// checkReadDir checks the directory before a read: a missing one is fine
// (there is nothing to read), one that is not a directory or is another
// user's is a [*DirError].
func (s *FileStore) checkReadDir() error {
	fi, err := os.Stat(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = checkDir(s.dir, fi)
	}
	if err != nil {
		return &DirError{Path: s.dir, Err: err}
	}
	return nil
}

// writeRecord writes r crash-safely: temp file, fsync, rename, fsync dir.
func (s *FileStore) writeRecord(r Record) (err error) {
	path := s.Path(r.AccountID)
	defer func() {
		s.statsMu.Lock()
		st := s.stats[r.AccountID]
		if err != nil {
			st.Errors++
		} else {
			st.Writes++
		}
		s.stats[r.AccountID] = st
		s.statsMu.Unlock()
		if err != nil {
			err = fmt.Errorf("save session %s: %w", path, err)
		}
	}()
	data, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	defer s.fileIO()()
	if err := s.ensureDir(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(filePerm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.noteOwn(filepath.Base(path), data)
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return s.syncDir()
}

// maxFileIO bounds the store's file operations in progress at once (see
// fileIO).
const maxFileIO = 16

// fileIO waits for one of maxFileIO slots and returns its release. Every
// write and read of a record takes one. A file operation blocks its OS
// thread (regular files do not go through Go's network poller), and fsync
// blocks it for milliseconds: a thousand accounts saving at once (all
// READY or RESUMED after a restart) would make the runtime start a thread
// for nearly each, and the runtime never ends its idle threads; each keeps
// tens of KiB of stacks (its g0 and signal stacks) for the life of the
// process. Beyond a few writes in flight, fsyncs of one file system gain
// nothing from more.
func (s *FileStore) fileIO() (release func()) {
	s.io <- struct{}{}
	n := s.ioBusy.Add(1)
	for peak := s.ioPeak.Load(); n > peak && !s.ioPeak.CompareAndSwap(peak, n); peak = s.ioPeak.Load() {
	}
	return func() {
		s.ioBusy.Add(-1)
		<-s.io
	}
}

// syncDir makes a rename or removal in the directory durable.
func (s *FileStore) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// noteOwn remembers content we are about to put in place (data) or a
// removal (nil data).
func (s *FileStore) noteOwn(name string, data []byte) {
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	o := s.own[name]
	if o == nil {
		o = &ownState{}
		s.own[name] = o
	}
	if data == nil {
		o.removed = true
		return
	}
	o.removed = false
	o.recent[o.next] = data
	o.next = (o.next + 1) % ownHistory
}

// isOwn reports whether content (nil: file missing) is our doing.
func (s *FileStore) isOwn(name string, content []byte) bool {
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	o := s.own[name]
	if o == nil {
		return false
	}
	if content == nil {
		return o.removed
	}
	for _, c := range o.recent {
		if c != nil && bytes.Equal(c, content) {
			return true
		}
	}
	return false
}

// readFile reads a record file, bounded, tightening a loose mode. Only a
// regular file of this user's with one link is read (see openFile); the
// mode is changed through the open descriptor, never through a path.
func (s *FileStore) readFile(path string) ([]byte, fs.FileInfo, error) {
	defer s.fileIO()()
	f, fi, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi.Mode().Perm()&^filePerm != 0 {
		if err := f.Chmod(filePerm); err != nil {
			s.log.Warn().Err(err).Str("path", path).Stringer("mode", fi.Mode().Perm()).
				Msg("session file is readable by others and cannot be tightened")
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxRecordSize+1))
	return data, fi, err
}

// unchanged reports whether path is still the file fi describes.
func unchanged(path string, fi fs.FileInfo) bool {
	cur, err := os.Lstat(path)
	return err == nil && os.SameFile(cur, fi) && cur.ModTime().Equal(fi.ModTime()) && cur.Size() == fi.Size()
}

// setAside renames a corrupt record out of the way and returns the error.
func (s *FileStore) setAside(path string, fi fs.FileInfo, perr error) *CorruptError {
	ce := &CorruptError{Path: path, Err: perr}
	if !unchanged(path, fi) {
		return ce // replaced meanwhile: leave the new file alone
	}
	aside := path + strings.TrimPrefix(corruptInfix, ".json") + strconv.FormatInt(s.clock.Now().UnixMilli(), 10)
	if err := os.Rename(path, aside); err != nil {
		s.log.Warn().Err(err).Str("path", path).Msg("cannot set corrupt session record aside")
		return ce
	}
	ce.KeptAs = aside
	if err := s.syncDir(); err != nil {
		s.log.Warn().Err(err).Str("dir", s.dir).Msg("fsync session dir")
	}
	return ce
}

// removeIfUnchanged removes path if it is still the file fi describes.
func (s *FileStore) removeIfUnchanged(path string, fi fs.FileInfo) (bool, error) {
	if !unchanged(path, fi) {
		return false, nil
	}
	s.noteOwn(filepath.Base(path), nil)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, s.syncDir()
}

// Load implements [Store.Load].
func (s *FileStore) Load(ctx context.Context, accountID, appID string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if err := s.checkReadDir(); err != nil {
		return Record{}, fmt.Errorf("load session: %w", err)
	}
	a := s.t.account(accountID)
	a.wmu.Lock() // no write of ours between reading and removing
	defer a.wmu.Unlock()
	path := s.Path(accountID)
	data, fi, err := s.readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, noSession(accountID, "no record")
	}
	if err != nil {
		return Record{}, fmt.Errorf("load session: %w", err)
	}
	r, err := ParseRecord(data)
	if err != nil {
		return Record{}, s.setAside(path, fi, err)
	}
	if r.AccountID != accountID {
		return Record{}, noSession(accountID, "%s belongs to account %q", path, r.AccountID)
	}
	now := s.clock.Now()
	if r.Expired(now) {
		if _, err := s.removeIfUnchanged(path, fi); err != nil {
			s.log.Warn().Err(err).Str("path", path).Msg("cannot remove expired session record")
		}
		if r.SavedAt.After(now) {
			return Record{}, noSession(accountID, "expired (saved %s in the future)", r.SavedAt.Sub(now).Round(time.Second))
		}
		return Record{}, noSession(accountID, "expired (saved %s ago)", now.Sub(r.SavedAt).Round(time.Second))
	}
	if r.AppID != "" && appID != "" && r.AppID != appID {
		return Record{}, noSession(accountID, "record is for app %q, not %q", r.AppID, appID)
	}
	if r.SessionID == "" || !r.HasSeq {
		return r, noSession(accountID, "record has no session id or seq")
	}
	return r, nil
}

// Peek returns the account's record as stored, even if expired or not
// resumable; it changes nothing. A missing or foreign record gives
// [ErrNoSession], a bad one a [*CorruptError] (left in place).
func (s *FileStore) Peek(ctx context.Context, accountID string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if err := s.checkReadDir(); err != nil {
		return Record{}, fmt.Errorf("read session: %w", err)
	}
	path := s.Path(accountID)
	data, _, err := s.readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, noSession(accountID, "no record in %s", s.dir)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read session: %w", err)
	}
	r, err := ParseRecord(data)
	if err != nil {
		return Record{}, &CorruptError{Path: path, Err: err}
	}
	if r.AccountID != accountID {
		return Record{}, noSession(accountID, "%s belongs to account %q", path, r.AccountID)
	}
	return r, nil
}

// Save implements [Store.Save].
func (s *FileStore) Save(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.save(r)
}

// SaveNow implements [Store.SaveNow].
func (s *FileStore) SaveNow(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.saveNow(r)
}

// Clear implements [Store.Clear]. A record that does not parse is set
// aside (it cannot be shown to be another account's).
func (s *FileStore) Clear(ctx context.Context, accountID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.clear(accountID, func() error {
		if err := s.checkReadDir(); err != nil {
			return fmt.Errorf("clear session: %w", err)
		}
		path := s.Path(accountID)
		data, fi, err := s.readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("clear session: %w", err)
		}
		r, err := ParseRecord(data)
		if err != nil {
			ce := s.setAside(path, fi, err)
			s.log.Warn().Err(ce).Msg("cleared a corrupt session record")
			return nil
		}
		if r.AccountID != accountID {
			return nil // not ours
		}
		if _, err := s.removeIfUnchanged(path, fi); err != nil {
			return fmt.Errorf("clear session: %w", err)
		}
		return nil
	})
}

// sessionFiles lists the names of the files in the directory that start
// with "session-" (records, set-aside and temporary files). A missing
// directory has none; what names the operation in a read error.
func (s *FileStore) sessionFiles(ctx context.Context, what string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.checkReadDir(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var names []string
	for _, de := range des {
		if name := de.Name(); strings.HasPrefix(name, "session-") && !de.IsDir() {
			names = append(names, name)
		}
	}
	return names, nil
}

// List implements [Store.List]. A missing directory is an empty list.
func (s *FileStore) List(ctx context.Context) ([]Entry, error) {
	names, err := s.sessionFiles(ctx, "list sessions")
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var out []Entry
	for _, name := range names {
		path := filepath.Join(s.dir, name)
		switch {
		case strings.HasSuffix(name, ".json"):
			e := Entry{Path: path}
			data, _, err := s.readFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err == nil {
				e.Record, err = ParseRecord(data)
			}
			switch {
			case errors.Is(err, ErrUnsafePath):
				e.Err = err
			case err != nil:
				e.Record, e.Err = Record{}, &CorruptError{Path: path, Err: err}
			default:
				e.Expired = e.Record.Expired(now)
			}
			out = append(out, e)
		case strings.Contains(name, corruptInfix):
			orig := path[:strings.LastIndex(path, corruptInfix)] + ".json"
			data, _, err := s.readFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if errors.Is(err, ErrUnsafePath) {
				out = append(out, Entry{Path: path, Err: err})
				continue
			}
			if err == nil {
				if _, err = ParseRecord(data); err == nil {
					err = errors.New("set aside")
				}
			}
			out = append(out, Entry{Path: path, Err: &CorruptError{Path: orig, Err: err, KeptAs: path}})
		}
	}
	return out, nil
}

// RemoveExpired implements [Store.RemoveExpired]. It also removes
// temporary files left by a crash in the middle of a write, once older than
// [Expiry].
func (s *FileStore) RemoveExpired(ctx context.Context) ([]string, error) {
	names, err := s.sessionFiles(ctx, "remove expired sessions")
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var removed []string
	var errs []error
	for _, name := range names {
		path := filepath.Join(s.dir, name)
		var fi fs.FileInfo
		switch {
		case strings.HasSuffix(name, ".json"):
			data, info, err := s.readFile(path)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			r, perr := ParseRecord(data)
			switch {
			case perr == nil && !r.Expired(now):
				continue
			case perr != nil && now.Sub(info.ModTime()) <= Expiry:
				continue // maybe a plugin write in progress: leave it
			}
			fi = info
		case strings.Contains(name, corruptInfix):
			info, err := os.Lstat(path)
			if err != nil {
				continue
			}
			if err := checkFile(path, info); err != nil {
				errs = append(errs, err)
				continue
			}
			fi = info
		case strings.Contains(name, tempInfix):
			info, err := os.Lstat(path)
			if err != nil || now.Sub(info.ModTime()) <= Expiry {
				continue
			}
			if err := checkFile(path, info); err != nil {
				errs = append(errs, err)
				continue
			}
			fi = info
		default:
			continue
		}
		ok, err := s.removeIfUnchanged(path, fi)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, path)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("remove expired sessions: %w", err)
	}
	return removed, nil
}

// Flush implements [Store.Flush].
func (s *FileStore) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.flush()
}

// Close implements [Store.Close]: it writes pending saves and stops
// timers; Watch calls return [ErrClosed].
func (s *FileStore) Close() error { return s.t.close() }
