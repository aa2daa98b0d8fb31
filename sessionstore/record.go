package sessionstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	// Expiry is how long after savedAt a record may still be resumed. An
	// older record is expired: Load removes it and reports [ErrNoSession].
	// The plugin uses the same five minutes.
	Expiry = 5 * time.Minute

	// MaxClockSkew is how far in the future a record's savedAt may lie
	// (another process's clock running a little ahead). A record saved
	// further ahead is treated as expired: its age cannot be known, so it
	// is never resumed, and cleanup removes it.
	MaxClockSkew = time.Minute

	// ThrottleInterval is the minimum time between two throttled writes of
	// one account's record (see [Store.Save]).
	ThrottleInterval = time.Second

	// MaxRecordSize is the largest record file, in bytes, that
	// [ParseRecord] accepts, both as read and as re-encoded. Real records
	// are about 200 bytes.
	MaxRecordSize = 64 << 10

	// maxDepth bounds the nesting of unknown fields, so that re-indenting
	// them stays cheap.
	maxDepth = 32

	// maxJSTime is the largest |ms since epoch| a JavaScript Date holds.
	maxJSTime = 8.64e15
	// maxSafeInt is Number.MAX_SAFE_INTEGER.
	maxSafeInt = 1<<53 - 1
)

// JSON field names, as the plugin writes them.
const (
	fieldSessionID        = "sessionId"
	fieldLastSeq          = "lastSeq"
	fieldLastConnectedAt  = "lastConnectedAt"
	fieldIntentLevelIndex = "intentLevelIndex"
	fieldAccountID        = "accountId"
	fieldSavedAt          = "savedAt"
	fieldAppID            = "appId"
)

// Record is one account's session record, the plugin's SessionState. The
// zero value means "no session". Records are plain values; the store only
// ever receives and returns copies.
//
// Times are stored as milliseconds since the Unix epoch; a zero time.Time
// is written as 0 and 0 reads back as the zero time.Time. Times read from
// a file are in UTC.
type Record struct {
	// AccountID is the bot account the record belongs to ("accountId").
	// Required: two account ids may share a file name (see [SafeID]), and
	// only the one named inside the file owns it.
	AccountID string
	// SessionID is the gateway session id ("sessionId"); "" is written as
	// null, as the plugin does before READY.
	SessionID string
	// LastSeq is the committed sequence number ("lastSeq"); meaningful
	// only when HasSeq is true.
	LastSeq uint64
	// HasSeq is false when "lastSeq" is null (no event yet).
	HasSeq bool
	// LastConnectedAt is when the session last connected
	// ("lastConnectedAt").
	LastConnectedAt time.Time
	// IntentLevelIndex is the index of the intent level that last worked
	// ("intentLevelIndex").
	IntentLevelIndex int
	// SavedAt is when the record was written ("savedAt"). The store sets
	// it on every write; the value passed to Save is ignored.
	SavedAt time.Time
	// AppID is the bot's app id ("appId"), written by newer plugin
	// versions; omitted when empty.
	AppID string
	// Extra holds fields this package does not know, as compact JSON,
	// keyed by name. They are written back unchanged (sorted by name,
	// after the known fields) when the record is rewritten.
	Extra map[string]json.RawMessage
}

// Expired reports whether the record is older than [Expiry] at now
// (now - SavedAt > Expiry, as in the plugin), or saved more than
// [MaxClockSkew] after now: a savedAt in the future would otherwise keep a
// record valid forever.
func (r Record) Expired(now time.Time) bool {
	return now.Sub(r.SavedAt) > Expiry || r.SavedAt.Sub(now) > MaxClockSkew
}

// Resumable reports whether the record is valid for a RESUME at now for
// the bot appID: not expired, with a session id and a seq, and with a
// matching appId when both the record and appID have one. It does not
// check AccountID; the store does.
func (r Record) Resumable(now time.Time, appID string) bool {
	return !r.Expired(now) &&
		r.SessionID != "" &&
		r.HasSeq &&
		(r.AppID == "" || appID == "" || r.AppID == appID)
}

// SafeID maps an account id to the part of its file name, exactly as the
// plugin's accountId.replace(/[^a-zA-Z0-9_-]/g, "_"): every character
// outside [a-zA-Z0-9_-] becomes "_". JavaScript strings are UTF-16, so a
// character outside the Basic Multilingual Plane (two code units) becomes
// "__", and so does each byte of invalid UTF-8 become one "_".
func SafeID(accountID string) string {
	var b strings.Builder
	b.Grow(len(accountID))
	for i := 0; i < len(accountID); {
		c, size := utf8.DecodeRuneInString(accountID[i:])
		i += size
		switch {
		case c == '_' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9'):
			b.WriteRune(c)
		case c == utf8.RuneError && size == 1:
			b.WriteByte('_') // Node decodes each bad byte as one U+FFFD
		case utf16.RuneLen(c) == 2:
			b.WriteString("__")
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// FileName is the record's file name for accountID:
// "session-" + SafeID(accountID) + ".json".
func FileName(accountID string) string {
	return "session-" + SafeID(accountID) + ".json"
}

// ErrTooLarge is the cause of a [*FormatError] for a record larger than
// [MaxRecordSize].
var ErrTooLarge = errors.New("sessionstore: record too large")

// FormatError reports a record that does not parse: not JSON, not an
// object, a field of the wrong type or out of range, a missing required
// field, or too large.
type FormatError struct {
	// Field is the JSON field at fault, or "" for the whole record.
	Field string
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any (a JSON syntax error, or
	// [ErrTooLarge]).
	Err error
}

// Error implements error.
func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("sessionstore: bad record")
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FormatError) Unwrap() error { return e.Err }

// ParseRecord parses a record file. Types are strict: accountId must be a
// string and savedAt a number (both required), sessionId a string or null,
// lastSeq a non-negative integer or null, lastConnectedAt a number,
// intentLevelIndex a non-negative integer, appId a string or null. Integers
// may be written in any JSON number form with an integral value. Unknown
// fields are kept in Extra. Inputs over [MaxRecordSize], or nested deeper
// than 32 levels, are refused. Every failure is a [*FormatError]; ParseRecord
// never panics.
func ParseRecord(b []byte) (Record, error) {
	if len(b) > MaxRecordSize {
		return Record{}, &FormatError{Reason: fmt.Sprintf("%d bytes", len(b)), Err: ErrTooLarge}
	}
	if depth(b) > maxDepth {
		return Record{}, &FormatError{Reason: "nested too deeply"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Record{}, &FormatError{Reason: "not a JSON object"}
		}
		return Record{}, &FormatError{Reason: "not JSON", Err: err}
	}
	if m == nil {
		return Record{}, &FormatError{Reason: "not a JSON object"}
	}
	var r Record
	var err error
	take := func(name string) (json.RawMessage, bool) {
		v, ok := m[name]
		delete(m, name)
		return v, ok
	}

	v, ok := take(fieldAccountID)
	if !ok {
		return Record{}, &FormatError{Field: fieldAccountID, Reason: "missing"}
	}
	if r.AccountID, err = str(fieldAccountID, v, false); err != nil {
		return Record{}, err
	}
	v, ok = take(fieldSavedAt)
	if !ok {
		return Record{}, &FormatError{Field: fieldSavedAt, Reason: "missing"}
	}
	if r.SavedAt, err = msTime(fieldSavedAt, v); err != nil {
		return Record{}, err
	}
	if v, ok = take(fieldSessionID); ok {
		if r.SessionID, err = str(fieldSessionID, v, true); err != nil {
			return Record{}, err
		}
	}
	if v, ok = take(fieldAppID); ok {
		if r.AppID, err = str(fieldAppID, v, true); err != nil {
			return Record{}, err
		}
	}
	if v, ok = take(fieldLastSeq); ok && !isNull(v) {
		n, err := integer(fieldLastSeq, v, 0, math.MaxUint64)
		if err != nil {
			return Record{}, err
		}
		r.LastSeq, r.HasSeq = n, true
	}
	if v, ok = take(fieldLastConnectedAt); ok {
		if r.LastConnectedAt, err = msTime(fieldLastConnectedAt, v); err != nil {
			return Record{}, err
		}
	}
	if v, ok = take(fieldIntentLevelIndex); ok {
		n, err := integer(fieldIntentLevelIndex, v, 0, math.MaxInt32)
		if err != nil {
			return Record{}, err
		}
		r.IntentLevelIndex = int(n)
	}
	if len(m) > 0 {
		r.Extra = make(map[string]json.RawMessage, len(m))
		for k, v := range m {
			var c bytes.Buffer
			if err := json.Compact(&c, v); err != nil { // cannot fail: v came from Unmarshal
				return Record{}, &FormatError{Field: k, Reason: "bad value", Err: err}
			}
			r.Extra[k] = c.Bytes()
		}
	}
	// The record must survive its own rewrite: the indented form of the
	// unknown fields may be larger than the input.
	if enc, err := r.MarshalJSON(); err != nil {
		return Record{}, &FormatError{Reason: "cannot re-encode", Err: err}
	} else if len(enc) > MaxRecordSize {
		return Record{}, &FormatError{Reason: fmt.Sprintf("%d bytes when re-encoded", len(enc)), Err: ErrTooLarge}
	}
	return r, nil
}

// UnmarshalJSON implements json.Unmarshaler with [ParseRecord].
func (r *Record) UnmarshalJSON(b []byte) error {
	rec, err := ParseRecord(b)
	if err != nil {
		return err
	}
	*r = rec
	return nil
}

// MarshalJSON encodes the record exactly as the plugin's
// JSON.stringify(state, null, 2) does: two-space indent, no trailing
// newline, fields in the order sessionId, lastSeq, lastConnectedAt,
// intentLevelIndex, accountId, savedAt, appId (omitted when empty), then
// the Extra fields sorted by name. It fails only when an Extra value is not
// valid JSON.
func (r Record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(256)
	b.WriteString("{\n")
	field := func(name string) {
		b.WriteString("  ")
		quote(&b, name)
		b.WriteString(": ")
	}
	field(fieldSessionID)
	if r.SessionID == "" {
		b.WriteString("null")
	} else {
		quote(&b, r.SessionID)
	}
	b.WriteString(",\n")
	field(fieldLastSeq)
	if r.HasSeq {
		b.WriteString(strconv.FormatUint(r.LastSeq, 10))
	} else {
		b.WriteString("null")
	}
	b.WriteString(",\n")
	field(fieldLastConnectedAt)
	b.WriteString(strconv.FormatInt(ms(r.LastConnectedAt), 10))
	b.WriteString(",\n")
	field(fieldIntentLevelIndex)
	b.WriteString(strconv.Itoa(r.IntentLevelIndex))
	b.WriteString(",\n")
	field(fieldAccountID)
	quote(&b, r.AccountID)
	b.WriteString(",\n")
	field(fieldSavedAt)
	b.WriteString(strconv.FormatInt(ms(r.SavedAt), 10))
	if r.AppID != "" {
		b.WriteString(",\n")
		field(fieldAppID)
		quote(&b, r.AppID)
	}
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		switch k {
		case fieldSessionID, fieldLastSeq, fieldLastConnectedAt, fieldIntentLevelIndex,
			fieldAccountID, fieldSavedAt, fieldAppID:
			continue // a known field always wins over a stray Extra entry
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(",\n")
		field(k)
		if err := json.Indent(&b, r.Extra[k], "  ", "  "); err != nil {
			return nil, fmt.Errorf("encode field %q: %w", k, err)
		}
	}
	b.WriteString("\n}")
	return b.Bytes(), nil
}

// ms is t in ms since the epoch; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// quote writes s as a JSON string the way JSON.stringify does: only '"',
// '\\' and control characters are escaped (no HTML escaping). Invalid
// UTF-8 becomes U+FFFD.
func quote(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteRune(c) // RuneError for bad bytes: U+FFFD
		}
	}
	b.WriteByte('"')
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// str decodes a JSON string (or null when nullable, as "").
func str(field string, v json.RawMessage, nullable bool) (string, error) {
	if nullable && isNull(v) {
		return "", nil
	}
	if len(v) == 0 || v[0] != '"' {
		return "", &FormatError{Field: field, Reason: "not a string"}
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", &FormatError{Field: field, Reason: "not a string", Err: err}
	}
	return s, nil
}

// integer decodes a JSON number with an integral value in [lo, hi].
func integer(field string, v json.RawMessage, lo, hi uint64) (uint64, error) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, &FormatError{Field: field, Reason: "not a number"}
	}
	s := string(v)
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			s = "0"
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n < lo || n > hi {
			return 0, &FormatError{Field: field, Reason: "out of range: " + s}
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f > maxSafeInt || uint64(f) < lo || uint64(f) > hi {
		return 0, &FormatError{Field: field, Reason: "not an integer in range: " + s}
	}
	return uint64(f), nil
}

// msTime decodes ms since the epoch, within a JavaScript Date's range.
func msTime(field string, v json.RawMessage) (time.Time, error) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return time.Time{}, &FormatError{Field: field, Reason: "not a number"}
	}
	s := string(v)
	var n int64
	if !strings.ContainsAny(s, ".eE") {
		var err error
		n, err = strconv.ParseInt(s, 10, 64)
		if err != nil || n > maxJSTime || n < -maxJSTime {
			return time.Time{}, &FormatError{Field: field, Reason: "out of range: " + s}
		}
	} else {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != math.Trunc(f) || f > maxJSTime || f < -maxJSTime {
			return time.Time{}, &FormatError{Field: field, Reason: "not a time in ms: " + s}
		}
		n = int64(f)
	}
	return fromMS(n), nil
}

// fromMS is the time n ms after the epoch in UTC; 0 is the zero time.
func fromMS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// depth is the maximum nesting of arrays and objects in b (a rough scan
// that ignores brackets inside strings; b need not be valid JSON).
func depth(b []byte) int {
	d, maxD := 0, 0
	inStr, esc := false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr:
			switch c {
			case '\\':
				esc = true
			case '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			d++
			maxD = max(maxD, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return maxD
}
