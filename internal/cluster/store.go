package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/qqgate/qqgate/sessionstore"
)

// Store is a [sessionstore.Store] whose records live in etcd under
// prefix/sessions/<account>, as the same JSON as the record files. Writes
// keep the throttle of the file store (one per second per account, with
// a trailing write), so etcd's write load is bounded by the number of
// accounts; expiry is the record's savedAt, as with the files. With a
// Node, every write is fenced on the node's ownership of the account: a
// transaction that compares the ownership key's create revision, so a
// runner that lost an account can never overwrite its new owner's record.
type Store struct {
	cli    *clientv3.Client
	node   *Node // nil: unfenced (the `qqgate session` commands)
	prefix string
	clock  sessionstore.Clock
	op     time.Duration
	t      *sessionstore.Throttled

	mu    sync.Mutex
	stats map[string]*stats // guarded by mu
}

type stats struct{ writes, errors atomic.Uint64 }

var _ sessionstore.Store = (*Store)(nil)

// NewStore returns the store of node's cluster, fenced on its ownerships.
func NewStore(node *Node, log zerolog.Logger) *Store {
	return newStore(node.cli, node, node.cfg.Prefix, node.opTimeout(), log)
}

// NewUnfencedStore returns a store on cli under the cluster prefix whose
// writes are not fenced: for tools that read, list and clear records.
func NewUnfencedStore(cli *clientv3.Client, prefix string, log zerolog.Logger) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return newStore(cli, nil, "/"+strings.Trim(prefix, "/"), 5*time.Second, log)
}

func newStore(cli *clientv3.Client, node *Node, prefix string, op time.Duration, log zerolog.Logger) *Store {
	s := &Store{cli: cli, node: node, prefix: prefix, clock: sessionstore.SystemClock{}, op: op, stats: map[string]*stats{}}
	s.t = sessionstore.NewThrottled(s.clock, log, s.write)
	return s
}

// Key is the etcd key of the account's record.
func (s *Store) Key(accountID string) string {
	return s.prefix + "/sessions/" + url.PathEscape(accountID)
}

// Path is Key, for messages that name where a record is.
func (s *Store) Path(accountID string) string { return s.Key(accountID) }

// Stats counts the account's writes and failed writes.
func (s *Store) Stats(accountID string) sessionstore.WriteStats {
	st := s.stat(accountID)
	return sessionstore.WriteStats{Writes: st.writes.Load(), Errors: st.errors.Load()}
}

func (s *Store) stat(id string) *stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[id]
	if st == nil {
		st = &stats{}
		s.stats[id] = st
	}
	return st
}

// fence returns the comparison a write of the account must pass.
func (s *Store) fence(accountID string) ([]clientv3.Cmp, error) {
	if s.node == nil {
		return nil, nil
	}
	rev, ok := s.node.Fence(accountID)
	if !ok {
		return nil, fmt.Errorf("account %q: %w", accountID, ErrNotOwner)
	}
	return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.node.key("owners", accountID)), "=", rev)}, nil
}

func (s *Store) write(r sessionstore.Record) error {
	st := s.stat(r.AccountID)
	err := s.put(r)
	if err != nil {
		st.errors.Add(1)
		return err
	}
	st.writes.Add(1)
	return nil
}

func (s *Store) put(r sessionstore.Record) error {
	b, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	cmp, err := s.fence(r.AccountID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.op)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmp...).Then(clientv3.OpPut(s.Key(r.AccountID), string(b))).Commit()
	if err != nil {
		return fmt.Errorf("etcd: write session record of %q: %w", r.AccountID, err)
	}
	if !resp.Succeeded {
		s.node.Lost(r.AccountID)
		return fmt.Errorf("account %q: record not written: %w", r.AccountID, ErrNotOwner)
	}
	return nil
}

// Load implements [sessionstore.Store.Load]. A read that fails on etcd
// is retried until ctx ends: an error here would make the client
// IDENTIFY and lose the session.
func (s *Store) Load(ctx context.Context, accountID, appID string) (sessionstore.Record, error) {
	var (
		rec sessionstore.Record
		err error
	)
	for {
		s.t.Serialize(accountID, func() { rec, err = s.load(ctx, accountID, appID) })
		var te *transientError
		if !errors.As(err, &te) {
			return rec, err
		}
		select {
		case <-ctx.Done():
			return sessionstore.Record{}, ctx.Err()
		case <-time.After(s.op / 2):
		}
	}
}

type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func noSession(accountID, format string, args ...any) error {
	return fmt.Errorf("%w: account %q: %s", sessionstore.ErrNoSession, accountID, fmt.Sprintf(format, args...))
}

func (s *Store) load(ctx context.Context, accountID, appID string) (sessionstore.Record, error) {
	if err := ctx.Err(); err != nil {
		return sessionstore.Record{}, err
	}
	octx, cancel := context.WithTimeout(ctx, s.op)
	defer cancel()
	key := s.Key(accountID)
	resp, err := s.cli.Get(octx, key)
	if err != nil {
		if ctx.Err() != nil {
			return sessionstore.Record{}, ctx.Err()
		}
		return sessionstore.Record{}, &transientError{fmt.Errorf("etcd: read session record: %w", err)}
	}
	if len(resp.Kvs) == 0 {
		return sessionstore.Record{}, noSession(accountID, "no record")
	}
	kv := resp.Kvs[0]
	r, perr := sessionstore.ParseRecord(kv.Value)
	if perr != nil {
		return sessionstore.Record{}, &sessionstore.CorruptError{Path: key, Err: perr}
	}
	if r.AccountID != accountID {
		return sessionstore.Record{}, noSession(accountID, "record belongs to account %q", r.AccountID)
	}
	now := s.clock.Now()
	if r.Expired(now) {
		// Removed only if nobody rewrote it meanwhile.
		_, _ = s.cli.Txn(octx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).Commit()
		return sessionstore.Record{}, noSession(accountID, "expired (saved %s ago)", now.Sub(r.SavedAt).Round(time.Second))
	}
	if r.AppID != "" && appID != "" && r.AppID != appID {
		return sessionstore.Record{}, noSession(accountID, "record is for app %q, not %q", r.AppID, appID)
	}
	if r.SessionID == "" || !r.HasSeq {
		return r, noSession(accountID, "record has no session id or seq")
	}
	return r, nil
}

// Save implements [sessionstore.Store.Save].
func (s *Store) Save(ctx context.Context, r sessionstore.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.Save(r)
}

// SaveNow implements [sessionstore.Store.SaveNow].
func (s *Store) SaveNow(ctx context.Context, r sessionstore.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.SaveNow(r)
}

// Clear implements [sessionstore.Store.Clear]; with a Node it is fenced
// like a write.
func (s *Store) Clear(ctx context.Context, accountID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.Clear(accountID, func() error {
		cmp, err := s.fence(accountID)
		if err != nil {
			return err
		}
		octx, cancel := context.WithTimeout(ctx, s.op)
		defer cancel()
		key := s.Key(accountID)
		r, err := s.cli.Get(octx, key)
		if err != nil {
			return fmt.Errorf("etcd: read session record: %w", err)
		}
		if len(r.Kvs) == 0 {
			return nil
		}
		if rec, perr := sessionstore.ParseRecord(r.Kvs[0].Value); perr == nil && rec.AccountID != accountID {
			return nil
		}
		cmp = append(cmp, clientv3.Compare(clientv3.ModRevision(key), "=", r.Kvs[0].ModRevision))
		resp, err := s.cli.Txn(octx).If(cmp...).Then(clientv3.OpDelete(key)).Commit()
		if err != nil {
			return fmt.Errorf("etcd: remove session record: %w", err)
		}
		if !resp.Succeeded {
			return fmt.Errorf("account %q: record changed or ownership lost meanwhile; not removed: %w", accountID, ErrNotOwner)
		}
		return nil
	})
}

// List implements [sessionstore.Store.List]; Path is the record's key.
func (s *Store) List(ctx context.Context) ([]sessionstore.Entry, error) {
	octx, cancel := context.WithTimeout(ctx, s.op)
	defer cancel()
	resp, err := s.cli.Get(octx, s.prefix+"/sessions/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("etcd: list session records: %w", err)
	}
	now := s.clock.Now()
	out := make([]sessionstore.Entry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e := sessionstore.Entry{Path: string(kv.Key)}
		r, perr := sessionstore.ParseRecord(kv.Value)
		if perr != nil {
			e.Err = &sessionstore.CorruptError{Path: string(kv.Key), Err: perr}
		} else {
			e.Record, e.Expired = r, r.Expired(now)
		}
		out = append(out, e)
	}
	return out, nil
}

// RemoveExpired implements [sessionstore.Store.RemoveExpired]: expired
// and unparsable records go (each only if unchanged since it was read).
func (s *Store) RemoveExpired(ctx context.Context) ([]string, error) {
	entries, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.Expired && e.Err == nil {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, s.op)
		r, err := s.cli.Get(octx, e.Path)
		if err == nil && len(r.Kvs) > 0 {
			kv := r.Kvs[0]
			rec, perr := sessionstore.ParseRecord(kv.Value)
			if perr != nil || rec.Expired(s.clock.Now()) {
				var resp *clientv3.TxnResponse
				resp, err = s.cli.Txn(octx).If(clientv3.Compare(clientv3.ModRevision(e.Path), "=", kv.ModRevision)).
					Then(clientv3.OpDelete(e.Path)).Commit()
				if err == nil && resp.Succeeded {
					removed = append(removed, e.Path)
				}
			}
		}
		cancel()
		if err != nil {
			return removed, fmt.Errorf("etcd: remove %s: %w", e.Path, err)
		}
	}
	return removed, nil
}

// Flush implements [sessionstore.Store.Flush].
func (s *Store) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.t.Flush()
}

// Close implements [sessionstore.Store.Close]. It does not close the
// etcd client.
func (s *Store) Close() error { return s.t.Close() }

// Watch implements [sessionstore.Store.Watch]. In a cluster no other
// process can write an account's record while this runner owns it (the
// writes are fenced), so it only waits for ctx or Close.
func (s *Store) Watch(ctx context.Context, accountID string, fn func(sessionstore.Change)) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.t.Closed():
		return sessionstore.ErrClosed
	}
}

// Lock implements [sessionstore.Store.Lock]: in a cluster the lock of an
// account is its ownership key, which the Node takes before it starts the
// account and releases after it stopped. Lock fails unless this runner
// owns the account; Unlock does nothing.
func (s *Store) Lock(accountID string) (sessionstore.Unlocker, error) {
	if s.node != nil && !s.node.Owns(accountID) {
		return nil, fmt.Errorf("account %q: %w", accountID, ErrNotOwner)
	}
	return nopUnlocker{}, nil
}

type nopUnlocker struct{}

func (nopUnlocker) Unlock() error { return nil }

// Dir names where the records are: the key prefix.
func (s *Store) Dir() string { return s.prefix + "/sessions/" }

// Peek returns the account's record as stored, even if expired or not
// resumable; a missing or foreign one gives [sessionstore.ErrNoSession].
func (s *Store) Peek(ctx context.Context, accountID string) (sessionstore.Record, error) {
	octx, cancel := context.WithTimeout(ctx, s.op)
	defer cancel()
	key := s.Key(accountID)
	resp, err := s.cli.Get(octx, key)
	if err != nil {
		return sessionstore.Record{}, fmt.Errorf("etcd: read session record: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return sessionstore.Record{}, noSession(accountID, "no record at %s", key)
	}
	r, perr := sessionstore.ParseRecord(resp.Kvs[0].Value)
	if perr != nil {
		return sessionstore.Record{}, &sessionstore.CorruptError{Path: key, Err: perr}
	}
	if r.AccountID != accountID {
		return sessionstore.Record{}, noSession(accountID, "record belongs to account %q", r.AccountID)
	}
	return r, nil
}
