package webhook

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/sessionstore"
)

// Errors of the inbox.
var (
	// ErrInboxFull: the inbox holds InboxConfig.MaxPending pushes not yet
	// handled; the push is refused (503, the platform retries it).
	ErrInboxFull = errors.New("webhook: inbox full")
	// ErrClosed: the inbox is closed.
	ErrClosed = errors.New("webhook: inbox closed")
	// ErrLocked: another process holds the inbox.
	ErrLocked = errors.New("webhook: inbox locked by another process")
	// ErrUnsafePath is matched by every *UnsafePathError.
	ErrUnsafePath = errors.New("webhook: unsafe inbox path")
	// ErrForeignInbox: the inbox belongs to another account or app.
	ErrForeignInbox = errors.New("webhook: inbox belongs to another account")
)

// UnsafePathError reports an inbox path that is a link, not a regular
// file or directory, or another user's.
type UnsafePathError struct {
	Path, Reason string
}

func (e *UnsafePathError) Error() string { return "webhook: " + e.Path + " " + e.Reason }

// Is matches ErrUnsafePath.
func (e *UnsafePathError) Is(target error) bool { return target == ErrUnsafePath }

// Defaults of InboxConfig.
const (
	DefaultMaxPending      = 1024
	DefaultMaxPendingBytes = 64 << 20
	DefaultDedupeTTL       = time.Hour
	DefaultDedupeMax       = 10000
	DefaultSegmentBytes    = 4 << 20
	dirPerm                = 0o700
	filePerm               = 0o600
)

// InboxDir is the inbox directory of accountID in the session directory
// dir: dir/inbox-<safeId>, beside the account's session record.
func InboxDir(dir, accountID string) string {
	return filepath.Join(dir, "inbox-"+sessionstore.SafeID(accountID))
}

// InboxConfig configures OpenInbox.
type InboxConfig struct {
	// Dir is the session directory; the inbox is InboxDir(Dir, AccountID).
	Dir string
	// AccountID and AppID name the owner, written in the segment's header
	// and checked when it is opened again.
	AccountID, AppID string
	// MaxPending bounds the pushes accepted and not yet handled; zero
	// means DefaultMaxPending.
	MaxPending int
	// MaxPendingBytes bounds the bytes of d of those pushes (they are kept
	// in memory until handled); zero means DefaultMaxPendingBytes.
	MaxPendingBytes int64
	// DedupeTTL and DedupeMax bound how long and how many envelope ids are
	// kept to recognise a retried push; zero means the defaults. An id
	// whose push is not yet handled is always kept.
	DedupeTTL time.Duration
	DedupeMax int
	// SegmentBytes is the size past which the segment is compacted; zero
	// means DefaultSegmentBytes.
	SegmentBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives what the inbox cannot report through a return value
	// (a failed compaction).
	Logger zerolog.Logger
}

// idState is one envelope id kept for dedupe.
type idState struct {
	at      int64 // ms
	seq     uint64
	durable bool       // its accept line is on disk (or it came from the file)
	req     *appendReq // the write in flight while not durable
}

// idItem is an id in accept order, for pruning.
type idItem struct {
	id  string
	seq uint64
}

// entry is one accepted push not yet committed.
type entry struct {
	rec Record
}

// appendReq is one line waiting for the writer.
type appendReq struct {
	line   []byte
	sync   bool
	accept *entry // for an accept line
	commit uint64 // for a commit line
	err    error
	done   chan struct{}
}

// InboxStats are an inbox's counters.
type InboxStats struct {
	Depth      int    // pushes accepted and not yet handled
	Accepted   uint64 // pushes written
	Committed  uint64 // pushes handled
	LastCommit uint64 // the seq of the push handled last
	Syncs      uint64 // fsyncs of accepted pushes
	Synced     uint64 // accepted pushes those fsyncs covered (Synced/Syncs pushes per fsync)
	Skipped    uint64 // lines that did not parse when the inbox was opened
	Compacts   uint64 // segments rewritten
	Segment    int64  // bytes of the current segment
	NextSeq    uint64 // the seq the next push gets
}

// Inbox is a per-account, crash-safe queue of verified pushes on disk:
// Accept writes and fsyncs a push before it is acknowledged (concurrent
// pushes share one fsync), Next hands them out in order, Commit marks
// one handled. See the file format above EncodeRecord. Safe for
// concurrent use.
type Inbox struct {
	cfg  InboxConfig
	dir  string
	lock *os.File

	mu           sync.Mutex
	f            *os.File
	seg          uint64
	size         int64
	base         int64 // size right after the last compaction
	next         uint64
	ids          map[string]*idState
	order        []idItem // ids in accept order
	pending      []*entry // durable, not committed, by seq
	pendingBytes int64    // bytes of d in pending
	handing      uint64   // highest seq handed out by Next
	queue        []*appendReq
	flushing     bool
	idle         *sync.Cond // flushing ended
	closed       bool
	notify       chan struct{}
	stats        InboxStats
	waiting      func() // tests: a retry waits for the first copy's write
}

// OpenInbox opens (creating it if needed) the account's inbox: it checks
// the directory and files (no links, this user's, 0700/0600), takes its
// lock, and loads what a previous process left: the pushes not yet handled
// (Next hands them out first) and the ids kept for dedupe.
func OpenInbox(cfg InboxConfig) (*Inbox, error) {
	if cfg.AccountID == "" || cfg.Dir == "" {
		return nil, errors.New("webhook: inbox needs a directory and an account id")
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if cfg.DedupeTTL <= 0 {
		cfg.DedupeTTL = DefaultDedupeTTL
	}
	if cfg.DedupeMax <= 0 {
		cfg.DedupeMax = DefaultDedupeMax
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	in := &Inbox{cfg: cfg, dir: InboxDir(cfg.Dir, cfg.AccountID), ids: map[string]*idState{}, notify: make(chan struct{}, 1)}
	in.idle = sync.NewCond(&in.mu)
	if err := in.prepareDir(); err != nil {
		return nil, err
	}
	lock, err := openSafe(filepath.Join(in.dir, "lock"), os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("webhook: inbox lock: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%s: %w", in.dir, err)
	}
	in.lock = lock
	if err := in.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return in, nil
}

// Dir is the inbox directory.
func (in *Inbox) Dir() string { return in.dir }

func (in *Inbox) prepareDir() error {
	if err := os.Mkdir(in.dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("webhook: inbox: %w", err)
	}
	// Checked and tightened through one descriptor, opened without
	// following a link.
	d, err := openDir(in.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		return fmt.Errorf("webhook: inbox: %w", err)
	}
	if err := checkOwned(in.dir, fi, true); err != nil {
		return err
	}
	if fi.Mode().Perm()&^dirPerm != 0 {
		if err := d.Chmod(dirPerm); err != nil {
			return fmt.Errorf("webhook: inbox: %w", err)
		}
	}
	return nil
}

func segName(n uint64) string { return fmt.Sprintf("seg-%020d.log", n) }

// load reads the newest segment and removes older ones and leftovers.
func (in *Inbox) load() error {
	ents, err := os.ReadDir(in.dir)
	if err != nil {
		return fmt.Errorf("webhook: inbox: %w", err)
	}
	var segs []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(in.dir, name)) // a compaction cut short
			continue
		}
		if s, ok := strings.CutPrefix(name, "seg-"); ok {
			if s, ok = strings.CutSuffix(s, ".log"); ok {
				if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
					segs = append(segs, n)
				}
			}
		}
	}
	slices.Sort(segs)
	if len(segs) == 0 {
		in.next = 1
		return in.rewrite(1)
	}
	in.seg = segs[len(segs)-1]
	for _, old := range segs[:len(segs)-1] {
		_ = os.Remove(filepath.Join(in.dir, segName(old))) // superseded by a finished compaction
	}
	path := filepath.Join(in.dir, segName(in.seg))
	f, err := openSafe(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&^filePerm != 0 {
		_ = f.Chmod(filePerm)
	}
	good, err := in.readSegment(f, path)
	if err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(good); err != nil { // an incomplete last line
		f.Close()
		return fmt.Errorf("webhook: inbox %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	in.f, in.size, in.base = f, good, good
	in.prune()
	// Start from a compact segment when the last process left a long one.
	if in.size > in.cfg.SegmentBytes/2 {
		return in.rewrite(in.seg + 1)
	}
	return nil
}

// readSegment replays a segment into the inbox's state; it returns the
// offset after the last complete line.
func (in *Inbox) readSegment(f *os.File, path string) (int64, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	var off int64
	first := true
	accepted := map[uint64]*entry{}
	var seqs []uint64
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a last line without its newline is cut off
		}
		if err != nil {
			return 0, fmt.Errorf("webhook: inbox %s: %w", path, err)
		}
		off += int64(len(line))
		r, perr := ParseRecord(line[:len(line)-1])
		if first {
			if perr != nil || r.Kind != kindHeader {
				return 0, fmt.Errorf("webhook: inbox %s: no valid header: %w", path, errors.Join(perr, ErrBadRecord))
			}
			if r.Account != in.cfg.AccountID || (r.App != "" && in.cfg.AppID != "" && r.App != in.cfg.AppID) {
				return 0, fmt.Errorf("%w: %s is account %q app %q, not account %q app %q (an account id reused for another app?); move %s away if its pushes are not wanted", ErrForeignInbox, path, r.Account, r.App, in.cfg.AccountID, in.cfg.AppID, in.dir)
			}
			in.next = r.Next
			first = false
			continue
		}
		if perr != nil {
			in.stats.Skipped++
			continue
		}
		switch r.Kind {
		case kindID:
			if _, dup := in.ids[r.ID]; !dup {
				in.ids[r.ID] = &idState{at: r.At, seq: r.Seq, durable: true}
				in.order = append(in.order, idItem{r.ID, r.Seq})
			}
		case kindAccept:
			if r.ID != "" {
				if _, dup := in.ids[r.ID]; dup {
					continue // written twice (a retry after a failed write): handle it once
				}
				in.ids[r.ID] = &idState{at: r.At, seq: r.Seq, durable: true}
				in.order = append(in.order, idItem{r.ID, r.Seq})
			}
			if _, dup := accepted[r.Seq]; !dup {
				accepted[r.Seq] = &entry{rec: r}
				seqs = append(seqs, r.Seq)
			}
			in.next = max(in.next, r.Seq+1)
		case kindCommit:
			delete(accepted, r.Seq)
		}
	}
	if first {
		return 0, fmt.Errorf("webhook: inbox %s: %w: empty segment", path, ErrBadRecord)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, s := range seqs {
		if e := accepted[s]; e != nil {
			in.pending = append(in.pending, e)
			in.pendingBytes += int64(len(e.rec.Data))
			delete(accepted, s)
		}
	}
	return off, nil
}

// rewrite writes segment n holding the current state (header, kept ids,
// pending pushes), makes it the current one and removes the previous.
// The caller owns the writer (load, or the flushing leader).
func (in *Inbox) rewrite(n uint64) error {
	in.mu.Lock()
	var buf bytes.Buffer
	buf.Write(EncodeRecord(Record{Kind: kindHeader, Version: formatVersion, Account: in.cfg.AccountID, App: in.cfg.AppID, Next: in.next}))
	pendingSeq := map[uint64]bool{}
	for _, e := range in.pending {
		pendingSeq[e.rec.Seq] = true
	}
	for _, it := range in.order {
		st := in.ids[it.id]
		if st == nil || !st.durable || pendingSeq[st.seq] {
			continue
		}
		buf.Write(EncodeRecord(Record{Kind: kindID, ID: it.id, At: st.at, Seq: st.seq}))
	}
	for _, e := range in.pending {
		buf.Write(EncodeRecord(e.rec))
	}
	in.mu.Unlock()

	path := filepath.Join(in.dir, segName(n))
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := openSafe(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return fmt.Errorf("webhook: inbox: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("webhook: inbox %s: %w", tmp, err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(in.dir); err != nil {
		// The old segment stays current: the new one must not outrank it
		// at the next start.
		f.Close()
		if rerr := os.Remove(path); rerr != nil && n > in.seg && in.seg != 0 {
			return fmt.Errorf("webhook: inbox %s: %w (and %s could not be removed: %v)", in.dir, err, path, rerr)
		}
		return fmt.Errorf("webhook: inbox %s: %w", in.dir, err)
	}
	old, oldSeg := in.f, in.seg
	in.mu.Lock()
	in.f, in.seg, in.size, in.base = f, n, int64(buf.Len()), int64(buf.Len())
	if old != nil {
		in.stats.Compacts++
	}
	in.mu.Unlock()
	if old != nil {
		old.Close()
		if oldSeg != n {
			_ = os.Remove(filepath.Join(in.dir, segName(oldSeg)))
			_ = syncDir(in.dir)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// prune forgets dedupe ids past the TTL or the count, never one whose
// push is not yet handled. in.mu is held (or the inbox is not shared yet).
func (in *Inbox) prune() {
	cutoff := in.cfg.Now().Add(-in.cfg.DedupeTTL).UnixMilli()
	var oldestPending uint64 = ^uint64(0)
	if len(in.pending) > 0 {
		oldestPending = in.pending[0].rec.Seq
	}
	drop := 0
	for drop < len(in.order) {
		it := in.order[drop]
		st := in.ids[it.id]
		if st == nil || st.seq != it.seq {
			drop++
			continue
		}
		if !st.durable || st.seq >= oldestPending {
			break
		}
		if len(in.order)-drop <= in.cfg.DedupeMax && st.at >= cutoff {
			break
		}
		delete(in.ids, it.id)
		drop++
	}
	if drop > 0 {
		in.order = append(in.order[:0:0], in.order[drop:]...)
	}
}

// Accepted is what Accept did with a push.
type Accepted struct {
	Seq       uint64 // the push's seq in the inbox (of the first copy, for a duplicate)
	Duplicate bool   // its envelope id was accepted before: nothing was written
}

// Accept makes a push durable: unless its envelope id (non-empty) was
// accepted before, it appends it to the segment and returns once the line
// is fsynced (concurrent calls share one fsync). Data is d as pushed.
func (in *Inbox) Accept(id, typ string, data []byte) (Accepted, error) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return Accepted{}, ErrClosed
	}
	now := in.cfg.Now().UnixMilli()
	for id != "" {
		st := in.ids[id]
		if st == nil {
			break
		}
		if st.durable || st.req == nil {
			in.mu.Unlock()
			return Accepted{Seq: st.seq, Duplicate: true}, nil
		}
		// The first copy is being written: its outcome decides. A retry
		// acknowledged before the first copy is on disk could be lost
		// with it.
		req := st.req
		in.mu.Unlock()
		if in.waiting != nil {
			in.waiting()
		}
		<-req.done
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			return Accepted{}, ErrClosed
		}
	}
	inflight, bytes := 0, in.pendingBytes
	for _, r := range in.queue {
		if r.accept != nil {
			inflight++
			bytes += int64(len(r.accept.rec.Data))
		}
	}
	if len(in.pending)+inflight >= in.cfg.MaxPending || (bytes > 0 && bytes+int64(len(data)) > in.cfg.MaxPendingBytes) {
		in.mu.Unlock()
		return Accepted{}, ErrInboxFull
	}
	seq := in.next
	in.next++
	rec := Record{Kind: kindAccept, Seq: seq, ID: id, Type: typ, At: now, Data: append([]byte(nil), data...)}
	req := &appendReq{line: EncodeRecord(rec), sync: true, accept: &entry{rec: rec}, done: make(chan struct{})}
	if id != "" {
		in.ids[id] = &idState{at: now, seq: seq, req: req}
		in.order = append(in.order, idItem{id, seq})
	}
	err := in.submitLocked(req)
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{Seq: seq}, nil
}

// submitLocked queues req and waits for it, writing as the leader when no
// one else is. in.mu is held on entry and released on return.
func (in *Inbox) submitLocked(req *appendReq) error {
	in.queue = append(in.queue, req)
	if in.flushing {
		in.mu.Unlock()
		<-req.done
		return req.err
	}
	in.flushing = true
	for len(in.queue) > 0 {
		batch := in.queue
		in.queue = nil
		in.mu.Unlock()
		err := in.writeBatch(batch)
		in.mu.Lock()
		in.finishBatch(batch, err)
		if len(in.queue) == 0 && !in.closed && in.size > in.cfg.SegmentBytes && in.size > 2*in.base {
			in.prune()
			in.mu.Unlock()
			cerr := in.rewrite(in.seg + 1)
			in.mu.Lock()
			if cerr != nil {
				// The old segment stays current and complete: nothing is lost.
				in.base = in.size
				in.cfg.Logger.Error().Err(cerr).Str("inbox", in.dir).Msg("webhook inbox compaction failed; the segment keeps growing until the next one succeeds")
			}
		}
	}
	in.flushing = false
	in.idle.Broadcast()
	in.mu.Unlock()
	return req.err
}

// writeBatch writes the batch's lines in one write, and fsyncs when one
// of them asks for it.
func (in *Inbox) writeBatch(batch []*appendReq) error {
	var n int
	sync := false
	for _, r := range batch {
		n += len(r.line)
		sync = sync || r.sync
	}
	buf := make([]byte, 0, n)
	for _, r := range batch {
		buf = append(buf, r.line...)
	}
	if _, err := in.f.Write(buf); err != nil {
		return fmt.Errorf("webhook: inbox write: %w", err)
	}
	in.mu.Lock()
	in.size += int64(n)
	in.mu.Unlock()
	if sync {
		if err := in.f.Sync(); err != nil {
			return fmt.Errorf("webhook: inbox fsync: %w", err)
		}
	}
	return nil
}

// finishBatch applies a written batch to the state. in.mu is held.
func (in *Inbox) finishBatch(batch []*appendReq, err error) {
	accepts := 0
	for _, r := range batch {
		r.err = err
		switch {
		case r.accept != nil && err == nil:
			accepts++
			in.pending = append(in.pending, r.accept)
			in.pendingBytes += int64(len(r.accept.rec.Data))
			if st := in.ids[r.accept.rec.ID]; st != nil && st.seq == r.accept.rec.Seq {
				st.durable, st.req = true, nil
			}
			in.stats.Accepted++
		case r.accept != nil:
			// Not acknowledged: let the platform's retry write it again.
			if st := in.ids[r.accept.rec.ID]; st != nil && st.seq == r.accept.rec.Seq {
				delete(in.ids, r.accept.rec.ID)
			}
		case err == nil:
			in.removePending(r.commit)
			in.stats.Committed++
			in.stats.LastCommit = max(in.stats.LastCommit, r.commit)
		}
		close(r.done)
	}
	if accepts > 0 {
		in.stats.Syncs++
		in.stats.Synced += uint64(accepts)
		select {
		case in.notify <- struct{}{}:
		default:
		}
	}
}

func (in *Inbox) removePending(seq uint64) {
	for i, e := range in.pending {
		if e.rec.Seq == seq {
			in.pendingBytes -= int64(len(e.rec.Data))
			in.pending = append(in.pending[:i], in.pending[i+1:]...)
			return
		}
	}
}

// eventOf turns an inbox entry into the event a handler gets.
func (in *Inbox) eventOf(e *entry) event.Event {
	return event.Event{
		AccountID:  in.cfg.AccountID,
		Type:       e.rec.Type,
		Seq:        e.rec.Seq,
		ID:         e.rec.ID,
		Data:       json.RawMessage(e.rec.Data),
		ReceivedAt: time.UnixMilli(e.rec.At),
	}
}

// Next returns the oldest push not yet handed out (in seq order), or false
// when there is none; Ready is signalled when one may have arrived. The
// pushes a previous process left unhandled come first.
func (in *Inbox) Next() (event.Event, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, e := range in.pending {
		if e.rec.Seq > in.handing {
			in.handing = e.rec.Seq
			return in.eventOf(e), true
		}
	}
	return event.Event{}, false
}

// Ready receives a value when Next may have a push to hand out.
func (in *Inbox) Ready() <-chan struct{} { return in.notify }

// Requeue makes Next hand out seq (and what follows it) again: a push
// whose handler was cancelled at shutdown stays in the inbox.
func (in *Inbox) Requeue(seq uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if seq > 0 && seq <= in.handing {
		in.handing = seq - 1
	}
}

// Commit records that the push of seq was handled: it is written (not
// fsynced) and leaves the inbox.
func (in *Inbox) Commit(seq uint64) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return ErrClosed
	}
	req := &appendReq{line: EncodeRecord(Record{Kind: kindCommit, Seq: seq}), commit: seq, done: make(chan struct{})}
	return in.submitLocked(req)
}

// Stats returns the inbox's counters.
func (in *Inbox) Stats() InboxStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.stats
	s.Depth = len(in.pending)
	s.Segment = in.size
	s.NextSeq = in.next
	return s
}

// Close closes the inbox; pushes not yet handled stay on disk for the next
// OpenInbox. It waits for a write in progress.
func (in *Inbox) Close() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	for in.flushing {
		in.idle.Wait() // the leader finishes its batches first
	}
	f := in.f
	in.mu.Unlock()
	err := f.Close()
	if in.lock != nil {
		in.lock.Close()
	}
	return err
}
