package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What the CLI prints may come from the network (a runner's /status, which
// repeats error messages of the token and API endpoints) or from files any
// process can plant (session records, file names in the session
// directory). A terminal acts on some characters instead of showing them:
// ESC and the 8-bit CSI start sequences that clear the screen, set the
// title or recolour later text; BEL, BS and CR rewrite a line; the
// bidirectional formatting characters reorder it. So every such character
// is printed escaped, the way Go writes it in a string literal.

// unsafeRune reports whether r, printed raw, could make a terminal do
// something other than show it: a C0 or C1 control, DEL, or a
// bidirectional formatting character.
func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f',
		'\u202a' <= r && r <= '\u202e', '\u2066' <= r && r <= '\u2069':
		return true
	}
	return false
}

// termSafe returns s with every character unsafeRune reports, and every
// byte that is not UTF-8, written as its Go escape (\x1b, \n, \u009b,
// \u202e, \xff). Everything else, backslashes included, is kept.
func termSafe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether s holds a character unsafeRune reports or a
// byte that is not UTF-8.
func needsEscape(s string) bool {
	for i, r := range s {
		if unsafeRune(r) || (r == utf8.RuneError && !validAt(s, i)) {
			return true
		}
	}
	return false
}

// validAt reports whether the rune at s[i:] is a real U+FFFD rather than
// a byte that is not UTF-8.
func validAt(s string, i int) bool {
	_, n := utf8.DecodeRuneInString(s[i:])
	return n == len(string(utf8.RuneError))
}

// jsonTermSafe makes valid JSON text safe to print: inside strings (the
// only place JSON allows them) the characters unsafeRune reports become
// \uXXXX escapes and bytes that are not UTF-8 become \ufffd, as a JSON
// decoder would read them anyway. Control characters below U+0020 cannot
// appear raw in valid JSON. The value the text encodes is unchanged,
// invalid UTF-8 aside.
func jsonTermSafe(b []byte) []byte {
	s := string(b)
	if !needsEscape(s) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			out = append(out, `\ufffd`...)
		case unsafeRune(r) && r >= 0x20:
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, s[i:i+n]...)
		}
		i += n
	}
	return out
}

// safeErrorf is errorf with the message made terminal-safe: error texts
// carry answers of servers and names of files.
func (e *env) safeErrorf(format string, args ...any) int {
	return e.errorf("%s", termSafe(fmt.Sprintf(format, args...)))
}
