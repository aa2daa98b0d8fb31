package handler

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxMetaValue is the most bytes of an account id, event type or envelope
// id that MetaValue keeps.
const MaxMetaValue = 1024

// MetaValue is how a handler passes an event's account id, type or
// envelope id outside the JSON line: in the environment of an exec
// handler's command (QQGATE_ACCOUNT, QQGATE_TYPE, QQGATE_ID) and in the
// headers of an http handler's request (X-QQGate-Account, X-QQGate-Type,
// X-QQGate-Id). The gateway chooses the type and the id, and not every
// string can go there: a NUL cannot be in an environment variable, a CR,
// LF or other control character cannot be in a header, and a string over
// the system's limit cannot be passed at all, so the event could never be
// delivered. Hence:
//
//   - a value of valid UTF-8 without control characters (C0, DEL, C1), not
//     starting with a double quote and at most MaxMetaValue bytes long is
//     passed as it is: every value a real gateway sends;
//   - any other value is passed Go-quoted, as strconv.Quote gives it: in
//     double quotes, with \x00, \r, \n, \u0085 and the like for the control
//     characters and \xNN for bytes that are not UTF-8, so strconv.Unquote
//     (or a JSON decoder, for values without \x escapes) gives it back;
//   - a value over MaxMetaValue bytes is cut there (on a character
//     boundary), quoted, and followed by "..." after the closing quote.
//
// A value starting with a double quote was therefore quoted by qqgate. The
// JSON line (stdin, request body, stdout) always holds the exact values.
func MetaValue(s string) string {
	if plainMeta(s) {
		return s
	}
	if len(s) <= MaxMetaValue {
		return strconv.Quote(s)
	}
	cut := MaxMetaValue
	for cut > MaxMetaValue-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// plainMeta reports whether s is passed by MetaValue as it is.
func plainMeta(s string) bool {
	if len(s) > MaxMetaValue || (s != "" && s[0] == '"') || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
