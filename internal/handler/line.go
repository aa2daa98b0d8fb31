package handler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/qqgate/qqgate/event"
)

// This file encodes an event's line by hand, appending to a caller's
// buffer, byte for byte as encoding/json's Marshal of
//
//	struct{Account, Seq, Type, ID, Data json.RawMessage}
//
// writes it: the strings escaped as Marshal escapes them (HTML-safe, so
// '<', '>' and '&' become \u003c, \u003e and \u0026; U+2028 and U+2029
// escaped; invalid UTF-8 replaced by U+FFFD), and data validated and
// compacted as Marshal compacts a RawMessage (no white space outside
// strings, so no line break; the same HTML-safe escapes; nothing else
// reinterpreted). The fuzz tests hold it to Marshal's output.
//
// The data of almost every event is already in that form (the gateway
// writes compact JSON), so appendData checks it in one read-only pass and
// copies it once, with append; only data that holds white space or a
// character to escape is rewritten, in a second pass that copies it once
// too.

// maxDepth is encoding/json's bound on nesting: deeper data is invalid.
const maxDepth = 10000

// ErrInvalidData is matched (errors.Is) by the error of an event whose
// data is not valid JSON: Line fails with it, and a handler returns it at
// once, without an attempt or a retry.
var ErrInvalidData = errors.New("data is not valid JSON")

// appendLine appends the line of ev, without a newline, to dst. On error
// (ev.Data is not valid JSON) it returns dst unchanged.
func appendLine(dst []byte, ev event.Event) ([]byte, error) {
	start := len(dst)
	dst = append(dst, `{"account":`...)
	dst = appendJSONString(dst, ev.AccountID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, ev.Seq, 10)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, ev.Type)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, ev.ID)
	dst = append(dst, `,"data":`...)
	if len(ev.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		var err error
		if dst, err = appendData(dst, ev.Data); err != nil {
			return dst[:start], fmt.Errorf("handler: encode event %s #%d: %w", ev.Type, ev.Seq, err)
		}
	}
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

// htmlSafe[b] is true for the ASCII bytes a JSON string written by
// encoding/json's Marshal holds as they are: printable, and none of '"',
// '\\', '<', '>', '&'.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// appendJSONString appends s as a JSON string, exactly as encoding/json's
// Marshal writes a Go string. strconv.Quote is not that: it writes Go
// escapes (\x00, \a, \v, \U0001f600) that JSON does not have.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if htmlSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other control bytes, '<', '>', '&'
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Byte classes of the data scanner.
const (
	inStrPlain  = iota // a byte a string holds as it is
	inStrEnd           // '"'
	inStrEscape        // '\\'
	inStrCtl           // a control byte: invalid in a string
	inStrHTML          // '<', '>', '&': escaped on output
	inStrE2            // 0xE2: may start U+2028 or U+2029, escaped on output
)

// strClass classifies the bytes inside a JSON string.
var strClass = func() (t [256]uint8) {
	for b := 0; b < ' '; b++ {
		t[b] = inStrCtl
	}
	t['"'] = inStrEnd
	t['\\'] = inStrEscape
	t['<'], t['>'], t['&'] = inStrHTML, inStrHTML, inStrHTML
	t[0xE2] = inStrE2
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isLineSep reports whether s[i:] starts with U+2028 or U+2029.
func isLineSep(s []byte, i int) bool {
	return i+2 < len(s) && s[i] == 0xE2 && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8
}

// appendData appends the JSON value src to dst as encoding/json's Marshal
// writes a json.RawMessage: validated and compacted, HTML-safe. It copies
// src once. On error dst is returned unchanged.
func appendData(dst, src []byte) ([]byte, error) {
	verbatim, err := checkData(src)
	if err != nil {
		return dst, err
	}
	if verbatim {
		return append(dst, src...), nil
	}
	return appendCompactHTML(dst, src), nil
}

// checkData validates src as one JSON value, with the grammar and nesting
// bound of encoding/json (which leaves UTF-8 in strings unchecked), and
// reports whether it is already in the form Marshal writes: no white
// space outside strings, no '<', '>', '&', U+2028 or U+2029.
func checkData(src []byte) (verbatim bool, err error) {
	var stackBuf [64]bool // true: in an object; false: in an array
	stack := stackBuf[:0]
	verbatim = true
	i, n := 0, len(src)
	fail := func(what string) (bool, error) {
		if i >= n {
			return false, fmt.Errorf("%w: unexpected end of data (%s)", ErrInvalidData, what)
		}
		return false, fmt.Errorf("%w: %s at offset %d", ErrInvalidData, what, i)
	}
	skip := func() {
		for i < n && isSpace(src[i]) {
			verbatim = false
			i++
		}
	}

value:
	skip()
	if i >= n {
		return fail("looking for a value")
	}
	switch c := src[i]; c {
	case '{', '[':
		// An empty object or array counts towards the bound too.
		if len(stack) >= maxDepth {
			return fail("nesting too deep")
		}
		obj := c == '{'
		i++
		skip()
		if i < n && (obj && src[i] == '}' || !obj && src[i] == ']') {
			i++
			goto next
		}
		stack = append(stack, obj)
		if obj {
			goto key
		}
		goto value
	case '"':
		if !scanString(src, &i, &verbatim) {
			return fail("in a string")
		}
		goto next
	case 't':
		if !literal(src, &i, "true") {
			return fail("in a literal")
		}
		goto next
	case 'f':
		if !literal(src, &i, "false") {
			return fail("in a literal")
		}
		goto next
	case 'n':
		if !literal(src, &i, "null") {
			return fail("in a literal")
		}
		goto next
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			if !scanNumber(src, &i) {
				return fail("in a number")
			}
			goto next
		}
		return fail("looking for a value")
	}

key: // in an object, a member's key is due
	skip()
	if i >= n || src[i] != '"' {
		return fail("looking for an object key")
	}
	if !scanString(src, &i, &verbatim) {
		return fail("in an object key")
	}
	skip()
	if i >= n || src[i] != ':' {
		return fail("after an object key")
	}
	i++
	goto value

next: // a value ended
	skip()
	if len(stack) == 0 {
		if i < n {
			return fail("after the top-level value")
		}
		return verbatim, nil
	}
	if i >= n {
		return fail("in an object or array")
	}
	switch c := src[i]; {
	case c == ',':
		i++
		if stack[len(stack)-1] {
			goto key
		}
		goto value
	case c == '}' && stack[len(stack)-1], c == ']' && !stack[len(stack)-1]:
		i++
		stack = stack[:len(stack)-1]
		goto next
	}
	return fail("after a value in an object or array")
}

// scanString moves *i past the string starting at src[*i] ('"'), and
// clears *verbatim if the string holds a character Marshal escapes. It
// reports whether the string is valid.
func scanString(src []byte, i *int, verbatim *bool) bool {
	j, n := *i+1, len(src)
	for j < n {
		for j+8 <= n && !special8(binary.LittleEndian.Uint64(src[j:])) {
			j += 8
		}
		for j < n && strClass[src[j]] == inStrPlain {
			j++
		}
		if j == n {
			break
		}
		switch strClass[src[j]] {
		case inStrEnd:
			*i = j + 1
			return true
		case inStrEscape:
			if j+1 >= n {
				return false
			}
			switch src[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > n || !isHex(src[j+2]) || !isHex(src[j+3]) || !isHex(src[j+4]) || !isHex(src[j+5]) {
					*i = j
					return false
				}
				j += 6
			default:
				*i = j
				return false
			}
		case inStrCtl:
			*i = j
			return false
		case inStrHTML:
			*verbatim = false
			j++
		case inStrE2:
			if isLineSep(src, j) {
				*verbatim = false
			}
			j++
		}
	}
	*i = j
	return false
}

const (
	lowBits  = 0x0101010101010101 // one in every byte
	highBits = 0x8080808080808080 // the top bit of every byte
)

// special8 reports whether any of the 8 bytes in x may be one a string
// does not hold as it is: a control byte, '"', '\\', '<', '>', '&', or a
// byte of a multi-byte character (one may be U+2028 or U+2029). It may say
// yes for 8 plain bytes (the bytes are then looked at one by one), never
// no for a special one.
func special8(x uint64) bool {
	q, bs := x^lowBits*'"', x^lowBits*'\\'
	lt, gt, amp := x^lowBits*'<', x^lowBits*'>', x^lowBits*'&'
	return ((x-lowBits*' ')&^x|(q-lowBits)&^q|(bs-lowBits)&^bs|
		(lt-lowBits)&^lt|(gt-lowBits)&^gt|(amp-lowBits)&^amp|x)&highBits != 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// literal moves *i past word if src[*i:] starts with it.
func literal(src []byte, i *int, word string) bool {
	if len(src)-*i < len(word) || string(src[*i:*i+len(word)]) != word {
		return false
	}
	*i += len(word)
	return true
}

// scanNumber moves *i past the number starting at src[*i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(src []byte, i *int) bool {
	j, n := *i, len(src)
	digits := func() bool {
		k := j
		for j < n && '0' <= src[j] && src[j] <= '9' {
			j++
		}
		return j > k
	}
	if src[j] == '-' {
		j++
	}
	switch {
	case j < n && src[j] == '0':
		j++
	case j < n && '1' <= src[j] && src[j] <= '9':
		digits()
	default:
		*i = j
		return false
	}
	if j < n && src[j] == '.' {
		j++
		if !digits() {
			*i = j
			return false
		}
	}
	if j < n && (src[j] == 'e' || src[j] == 'E') {
		j++
		if j < n && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if !digits() {
			*i = j
			return false
		}
	}
	*i = j
	return true
}

// appendCompactHTML appends the valid JSON src without white space
// outside strings and with '<', '>', '&', U+2028 and U+2029 escaped, as
// encoding/json's Marshal writes a json.RawMessage.
func appendCompactHTML(dst, src []byte) []byte {
	start, i, n := 0, 0, len(src)
	for i < n {
		// Outside strings: drop white space, up to the next string.
		for ; i < n && src[i] != '"'; i++ {
			if isSpace(src[i]) {
				dst = append(dst, src[start:i]...)
				start = i + 1
			}
		}
		// In a string (src is valid: it ends), up to its closing quote.
		for i++; i < n; i++ {
			for i < n && strClass[src[i]] == inStrPlain {
				i++
			}
			if i == n {
				break
			}
			c := src[i]
			switch strClass[c] {
			case inStrEscape:
				i++ // the escaped byte: never the end of the string
				continue
			case inStrHTML:
				dst = append(dst, src[start:i]...)
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
				start = i + 1
				continue
			case inStrE2:
				if isLineSep(src, i) {
					dst = append(dst, src[start:i]...)
					dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xF])
					i += 2
					start = i + 1
				}
				continue
			}
			break // inStrEnd: a valid string holds no control byte
		}
		i++
	}
	return append(dst, src[start:]...)
}

// lineSize is the length of ev's line when nothing in it needs escaping.
func lineSize(ev event.Event) int {
	return len(`{"account":"","seq":18446744073709551615,"type":"","id":"","data":}`) +
		len(ev.AccountID) + len(ev.Type) + len(ev.ID) + max(len(ev.Data), len("null"))
}
