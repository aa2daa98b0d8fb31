package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/qqgate/qqgate/sessionstore"
)

const sessionUsage = `usage: qqgate session <command> [flags]

commands:
  list              list every session record (a table on a terminal, else JSON lines)
  show ACCOUNT      print the account's record as JSON
  clear ACCOUNT     remove the account's record
  cleanup           remove expired records and bad files, printing each

flags:
  --session-dir DIR   session record directory (env QQBOT_SESSION_DIR;
                      default $HOME/.openclaw/qqbot/sessions)
  --config FILE       the records of this runner configuration: its
                      session_dir, or with a cluster: block the cluster's
                      records in etcd
  --json              list: JSON lines even on a terminal
`

// cmdSession is `qqgate session`: inspect and maintain session records.
func cmdSession(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, sessionUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, sessionUsage)
		return 0
	case "list", "show", "clear", "cleanup":
	default:
		fmt.Fprintf(e.stderr, "qqgate: session: unknown command %q\n\n%s", sub, sessionUsage)
		return 2
	}

	fs := flag.NewFlagSet("qqgate session "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, sessionUsage) }
	dir := fs.String("session-dir", e.getenv("QQBOT_SESSION_DIR"), "session record directory")
	asJSON := fs.Bool("json", false, "list: JSON lines even on a terminal")
	config := fs.String("config", "", "runner configuration whose records to use")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	wantArgs := 0
	if sub == "show" || sub == "clear" {
		wantArgs = 1
	}
	if len(pos) != wantArgs {
		if wantArgs == 1 {
			fmt.Fprintf(e.stderr, "qqgate: session %s: need exactly one ACCOUNT\n", sub)
		} else {
			fmt.Fprintf(e.stderr, "qqgate: session %s: unexpected argument %q\n", sub, pos[0])
		}
		return 2
	}
	var st sessionStore
	if *config != "" {
		cst, closeStore, err := configSessionStore(*config, e)
		if err != nil {
			return e.safeErrorf("session %s: %v", sub, err)
		}
		defer closeStore()
		st = cst
	} else {
		if *dir == "" {
			*dir = sessionstore.DirForHome(e.getenv("HOME"))
		}
		fst, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: *dir, Clock: envClock{e}})
		if err != nil {
			return e.safeErrorf("session %s: %v", sub, err)
		}
		defer fst.Close()
		st = fst
	}

	switch sub {
	case "list":
		return sessionList(ctx, st, *asJSON || !isCharDevice(e.stdout), e)
	case "show":
		return sessionShow(ctx, st, pos[0], e)
	case "clear":
		return sessionClear(ctx, st, pos[0], e)
	default:
		return sessionCleanup(ctx, st, e)
	}
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("show ACCOUNT --session-dir X") and returns the positional
// ones. "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// envClock is the store's clock: the env's now, real timers.
type envClock struct{ e *env }

func (c envClock) Now() time.Time { return c.e.now() }

func (c envClock) AfterFunc(d time.Duration, f func()) sessionstore.Timer {
	return time.AfterFunc(d, f)
}

// isCharDevice reports whether w is a terminal (or another character
// device), where a table reads better than JSON lines.
func isCharDevice(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// listLine is one file in `session list --json`: the record's fields under
// the record's own names and units (as `session show` prints them), then
// what the listing derives. A file that cannot be read has only path,
// expired and error.
type listLine struct {
	*ListRecord
	Expired bool   `json:"expired"`
	Path    string `json:"path"`
	Error   string `json:"error,omitempty"`
}

// ListRecord is the record part of a listLine (exported only so that
// encoding/json can fill the embedded pointer when a test decodes a line).
type ListRecord struct {
	AccountID        string  `json:"accountId"`
	SessionID        *string `json:"sessionId"` // null when empty, as in the record
	LastSeq          *uint64 `json:"lastSeq"`
	LastConnectedAt  int64   `json:"lastConnectedAt"` // ms since the Unix epoch
	IntentLevelIndex int     `json:"intentLevelIndex"`
	SavedAt          int64   `json:"savedAt"` // ms since the Unix epoch
	AppID            string  `json:"appId,omitempty"`
	// AgeSeconds is how long ago SavedAt was (negative for a record
	// saved in the future).
	AgeSeconds float64 `json:"ageSeconds"`
}

// newListRecord is the listing of r at now.
func newListRecord(r sessionstore.Record, now time.Time) *ListRecord {
	l := &ListRecord{
		AccountID: r.AccountID, IntentLevelIndex: r.IntentLevelIndex, AppID: r.AppID,
		LastConnectedAt: unixMilli(r.LastConnectedAt), SavedAt: unixMilli(r.SavedAt),
		AgeSeconds: now.Sub(r.SavedAt).Round(time.Millisecond).Seconds(),
	}
	if r.SessionID != "" {
		sid := r.SessionID
		l.SessionID = &sid
	}
	if r.HasSeq {
		seq := r.LastSeq
		l.LastSeq = &seq
	}
	return l
}

// unixMilli is t in ms since the Unix epoch, 0 for the zero time, as the
// record writes it.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func sessionList(ctx context.Context, st sessionStore, asJSON bool, e *env) int {
	entries, err := st.List(ctx)
	if err != nil {
		return e.safeErrorf("session list: %v", err)
	}
	now := e.now()
	if asJSON {
		// Encoded to a buffer first: the strings come from files anyone
		// may have planted, and JSON leaves C1 controls raw.
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		for _, en := range entries {
			l := listLine{Path: en.Path, Expired: en.Expired}
			if en.Err != nil {
				l.Error = en.Err.Error()
			} else {
				l.ListRecord = newListRecord(en.Record, now)
			}
			if err := enc.Encode(l); err != nil {
				return e.safeErrorf("session list: %v", err)
			}
			if _, err := e.stdout.Write(jsonTermSafe(line.Bytes())); err != nil {
				return e.safeErrorf("session list: %v", err)
			}
			line.Reset()
		}
		return 0
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tSESSION\tSEQ\tAGE\tSTATE\tINTENT")
	for _, en := range entries {
		if en.Err != nil {
			fmt.Fprintf(tw, "-\t-\t-\t-\tcorrupt\t-\t%s\n", termSafe(en.Path))
			continue
		}
		r := en.Record
		seq, sid, state := "null", r.SessionID, "valid"
		if r.HasSeq {
			seq = strconv.FormatUint(r.LastSeq, 10)
		}
		if sid == "" {
			sid = "null"
		}
		account := r.AccountID
		if account == "" {
			account = "null"
		}
		switch {
		case en.Expired:
			state = "expired"
		case !r.Resumable(now, ""):
			state = "not resumable"
		}
		// The record's strings as cells: a planted record must not
		// reach the terminal raw, nor break the columns (a tab shows as \t).
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", termSafe(account), termSafe(sid), seq,
			now.Sub(r.SavedAt).Round(time.Second), state, r.IntentLevelIndex)
	}
	if err := tw.Flush(); err != nil {
		return e.safeErrorf("session list: %v", err)
	}
	return 0
}

func sessionShow(ctx context.Context, st sessionStore, account string, e *env) int {
	r, err := st.Peek(ctx, account)
	if err != nil {
		return noRecord("show", account, err, e)
	}
	b, err := r.MarshalJSON()
	if err != nil {
		return e.safeErrorf("session show: %v", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", jsonTermSafe(b))
	if now := e.now(); r.SavedAt.After(now) && r.Expired(now) {
		fmt.Fprintf(e.stderr, "qqgate: note: this record was saved %s in the future (a clock is wrong) and will not be resumed\n",
			r.SavedAt.Sub(now).Round(time.Second))
	} else if r.Expired(now) {
		fmt.Fprintf(e.stderr, "qqgate: note: this record expired %s ago and will not be resumed\n",
			(now.Sub(r.SavedAt) - sessionstore.Expiry).Round(time.Second))
	}
	return 0
}

func sessionClear(ctx context.Context, st sessionStore, account string, e *env) int {
	if _, err := st.Peek(ctx, account); err != nil {
		var ce *sessionstore.CorruptError
		if !errors.As(err, &ce) {
			return noRecord("clear", account, err, e)
		}
		// A corrupt record is set aside by Clear; say so.
	}
	if u, err := st.Lock(account); err != nil {
		var le *sessionstore.LockedError
		if errors.As(err, &le) {
			fmt.Fprintf(e.stderr, "qqgate: warning: %s; it may write the record again\n", termSafe(le.Error()))
		}
	} else {
		defer u.Unlock()
	}
	if err := st.Clear(ctx, account); err != nil {
		return e.safeErrorf("session clear: %v", err)
	}
	fmt.Fprintf(e.stdout, "cleared session record of account %q (%s)\n", account, termSafe(st.Path(account)))
	return 0
}

func sessionCleanup(ctx context.Context, st sessionStore, e *env) int {
	removed, err := st.RemoveExpired(ctx)
	for _, p := range removed {
		fmt.Fprintf(e.stdout, "removed %s\n", termSafe(p))
	}
	if err != nil {
		return e.safeErrorf("session cleanup: %v", err)
	}
	fmt.Fprintf(e.stdout, "%d file(s) removed from %s\n", len(removed), termSafe(st.Dir()))
	return 0
}

// noRecord reports a missing, foreign or unreadable record of account.
func noRecord(cmd, account string, err error, e *env) int {
	if errors.Is(err, sessionstore.ErrNoSession) {
		// "sessionstore: no session for account "x": no record in DIR",
		// or the account the file belongs to.
		return e.safeErrorf("session %s: %v", cmd, err)
	}
	return e.safeErrorf("session %s: account %q: %v", cmd, account, err)
}
