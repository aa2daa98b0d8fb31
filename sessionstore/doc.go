// Package sessionstore keeps the QQ Bot gateway session record that lets a
// restarted process RESUME instead of IDENTIFY. The on-disk format is the
// openclaw qqbot plugin's (one JSON file per account, written by
// JSON.stringify(state, null, 2)), so qqgate and the plugin can share a
// session directory; see [Record].
//
// Use [NewFileStore] for the real thing and [NewMemoryStore] for tests or
// embedding. Both implement [Store]:
//
//	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{})
//	unlock, err := st.Lock(accountID)      // one live process per account
//	rec, err := st.Load(ctx, accountID, appID)
//	if errors.Is(err, sessionstore.ErrNoSession) { /* IDENTIFY */ }
//	st.Save(ctx, rec)                      // throttled, on every seq advance
//	st.SaveNow(ctx, rec)                   // READY, RESUMED, graceful close
//	st.Close()                             // writes what is still pending
//
// # Writes
//
// [Store.Save] writes at most once per [ThrottleInterval] per account and
// always writes the newest state last (a trailing write from a timer).
// [Store.SaveNow] writes at once. Unlike the plugin, pending writes are not
// lost at exit: [Store.Flush] and [Store.Close] write them. A file write goes
// to a temporary file in the same directory, is fsynced, renamed over the
// record and the directory is fsynced, so a crash at any point leaves either
// the old or the new record, never a torn one. Files are 0600 and the
// directory 0700; looser existing modes are tightened.
//
// # Safety in a shared directory
//
// The session directory may be a shared one (/tmp/.openclaw/... when HOME
// is unset), so the store trusts nothing it finds there. It uses a
// directory only when the current user owns it; another user's directory
// is refused with a [*DirError] naming it ([FileStore.Prepare] checks this
// at start-up), and so is a directory below one that another user (other
// than root) owns or that every user may write without the sticky bit,
// since that user could swap it for a link. It opens a record or lock file only when it is a regular
// file with one link, owned by the current user: a symbolic link (never
// followed), a named pipe or device (opened without blocking, then
// refused), a hard link or another user's file gives an error wrapping
// [ErrUnsafePath] and is neither read, truncated nor chmod-ed. A mode is
// changed only through an open descriptor of a file already checked.
//
// # Reading
//
// [Store.Load] returns [ErrNoSession] when there is nothing to resume:
// the record is missing, expired ([Expiry], the expired file is removed),
// belongs to another account whose id maps to the same file name (left
// alone), has another appId, or lacks a session id or seq. A savedAt more
// than [MaxClockSkew] in the future counts as expired too. A file that does
// not parse is renamed aside and reported as a [*CorruptError]; nothing is
// deleted without a trace.
//
// # Concurrency
//
// Every [Store] implementation is safe for concurrent use by multiple
// goroutines. Several processes may share a directory; [Store.Lock] keeps
// one live process per account, and [Store.Watch] reports records that
// another process rewrites or removes. Throttle state belongs to the store
// value: two clients share it only when they share the store.
package sessionstore
