package sessionstore

import (
	"errors"
	"fmt"
)

// ErrNoSession means there is no session to resume for the account: no
// record, an expired one, one that belongs to another account or app, or
// one without a session id or seq. The caller should IDENTIFY. Errors from
// Load wrap it with the reason; test with errors.Is.
var ErrNoSession = errors.New("sessionstore: no session")

// ErrClosed is returned by writes and Watch after [Store.Close].
var ErrClosed = errors.New("sessionstore: store closed")

// noSession wraps ErrNoSession with a reason.
func noSession(accountID, format string, args ...any) error {
	return fmt.Errorf("%w for account %q: %s", ErrNoSession, accountID, fmt.Sprintf(format, args...))
}

// CorruptError reports a record file that does not parse. Load renames
// such a file aside (KeptAs) so the account can start afresh without losing
// the evidence; List reports it in place (KeptAs empty) or already set
// aside (KeptAs is the set-aside file).
type CorruptError struct {
	// Path is the record file.
	Path string
	// Err says why it does not parse; usually a [*FormatError].
	Err error
	// KeptAs is where the bad file now is, or "" if it was left in
	// place (or could not be moved).
	KeptAs string
}

// Error implements error.
func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("sessionstore: corrupt record %s: %v", e.Path, e.Err)
	if e.KeptAs != "" {
		msg += " (kept as " + e.KeptAs + ")"
	}
	return msg
}

// Unwrap returns the parse error.
func (e *CorruptError) Unwrap() error { return e.Err }

// LockedError reports that another live process (or another Lock call in
// this process) holds an account's lock.
type LockedError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id, or 0 if it could not be read.
	PID int
}

// Error implements error.
func (e *LockedError) Error() string {
	if e.PID <= 0 {
		return fmt.Sprintf("sessionstore: account is in use by another process (lock %s)", e.Path)
	}
	return fmt.Sprintf("sessionstore: account is in use by process with pid %d (lock %s)", e.PID, e.Path)
}

// ErrUnsafePath is wrapped by the errors about a session file or directory
// the store refuses to use because acting on it could harm something else:
// test with errors.Is. See [UnsafePathError].
var ErrUnsafePath = errors.New("sessionstore: unsafe path")

// UnsafePathError reports a path the store refuses to act on: a session
// file that is not a regular file (a symbolic link, a named pipe, a
// device, a directory), that has more than one hard link, or that another
// user owns; or a session directory that another user owns. Acting on such
// a path could block the process, or read, truncate or chmod a file
// elsewhere. The store never follows a link in the directory, never opens a
// special file for reading or writing, and never changes a file it does not
// own.
type UnsafePathError struct {
	// Path is the refused file or directory.
	Path string
	// Reason says what is wrong with it, e.g. "is a symbolic link".
	Reason string
}

// Error implements error.
func (e *UnsafePathError) Error() string {
	return fmt.Sprintf("sessionstore: refusing %s: it %s", e.Path, e.Reason)
}

// Is reports whether target is [ErrUnsafePath].
func (e *UnsafePathError) Is(target error) bool { return target == ErrUnsafePath }

// DirError reports a session directory that cannot be used: it cannot be
// created, is not a directory, or another user owns it (Err then wraps
// [ErrUnsafePath]). [FileStore.Prepare] returns it, and every operation
// that needs the directory wraps it.
type DirError struct {
	// Path is the session directory.
	Path string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *DirError) Error() string {
	var ue *UnsafePathError
	if errors.As(e.Err, &ue) && ue.Path == e.Path {
		return fmt.Sprintf("sessionstore: session directory %s cannot be used: it %s", e.Path, ue.Reason)
	}
	return fmt.Sprintf("sessionstore: session directory %s cannot be used: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *DirError) Unwrap() error { return e.Err }
