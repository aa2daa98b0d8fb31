package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Envelope is a frame decoded in place by ScanFrame. D is a sub-slice of
// the input, as are T and ID unless they carried escapes or invalid UTF-8
// (then they are unescaped copies): keep the input unchanged while the
// Envelope is in use, and copy what must outlive it.
type Envelope struct {
	Op Opcode
	S  uint64
	T  []byte // "t" unescaped; nil when absent or null
	ID []byte // "id" unescaped; nil when absent or null
	D  []byte // "d" as it came (a null d is "null"); nil when absent
}

// maxDepth is how deeply arrays and objects may nest in a frame, the outer
// object included: encoding/json's limit.
const maxDepth = 10000

// ScanFrame decodes a frame's envelope in one pass over b: it checks that b
// is a JSON object and every value in it is well-formed, takes op, s, t and
// id as values and d as a sub-slice, and skips other keys. It accepts
// exactly the input that encoding/json accepts when unmarshalling b into
// the five fields (keys matched the way encoding/json matches them,
// duplicate keys last-wins, null leaving s, t and id as they were and
// taking op away) and gives the same values; an error wraps ErrBadFrame.
// It never panics.
func ScanFrame(b []byte) (Envelope, error) {
	if len(b) > MaxFrameBytes {
		return Envelope{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadFrame, len(b), MaxFrameBytes)
	}
	s := scanner{b: b}
	e, hasOp := s.frame()
	if s.err != "" {
		return Envelope{}, fmt.Errorf("%w: %s at offset %d", ErrBadFrame, s.err, s.errAt)
	}
	if !hasOp {
		return Envelope{}, fmt.Errorf("%w: missing op", ErrBadFrame)
	}
	return e, nil
}

// scanner walks a frame. The first error sticks; it is a syntax error, or
// a value of the wrong type for a field (encoding/json reports those after
// checking the whole input, which comes to the same: the frame is bad).
type scanner struct {
	b     []byte
	i     int
	depth int
	err   string
	errAt int
}

func (s *scanner) fail(msg string) {
	if s.err == "" {
		s.err, s.errAt = msg, s.i
	}
	s.i = len(s.b) // stop every loop
}

func (s *scanner) unexpected(what string) {
	if s.i >= len(s.b) {
		s.fail("unexpected end of input " + what)
		return
	}
	s.fail("invalid character " + strconv.QuoteRune(rune(s.b[s.i])) + " " + what)
}

func (s *scanner) space() {
	i := s.i
	for i < len(s.b) && (s.b[i] == ' ' || s.b[i] == '\t' || s.b[i] == '\n' || s.b[i] == '\r') {
		i++
	}
	s.i = i
}

// frame scans the whole input: one object and nothing after it but space.
func (s *scanner) frame() (e Envelope, hasOp bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		if s.i < len(s.b) {
			// Well-formed or not, anything but an object is not a frame.
			s.unexpected("looking for the beginning of a frame object")
			return
		}
		s.unexpected("looking for the beginning of a frame")
		return
	}
	s.i++
	s.depth = 1
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
	} else {
		for s.err == "" {
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				s.unexpected("looking for the beginning of an object key")
				return
			}
			k0 := s.i + 1
			esc := s.str()
			if s.err != "" {
				return
			}
			key := field(s.b[k0:s.i-1], esc)
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				s.unexpected("after object key")
				return
			}
			s.i++
			s.space()
			switch key {
			case fieldOp:
				if s.null() {
					hasOp = false
					break
				}
				n, ok := s.int()
				if ok {
					e.Op, hasOp = Opcode(n), true
				}
			case fieldS:
				if s.null() {
					break
				}
				if n, ok := s.uint(); ok {
					e.S = n
				}
			case fieldT, fieldID:
				if s.null() {
					break
				}
				if s.i >= len(s.b) || s.b[s.i] != '"' {
					s.typeError(key)
					break
				}
				v0 := s.i + 1
				esc := s.str()
				if s.err != "" {
					return
				}
				v := unquote(s.b[v0:s.i-1], esc)
				if key == fieldT {
					e.T = v
				} else {
					e.ID = v
				}
			case fieldD:
				v0 := s.i
				s.value()
				e.D = s.b[v0:s.i:s.i]
			default:
				s.value()
			}
			s.space()
			if s.i < len(s.b) && s.b[s.i] == ',' {
				s.i++
				continue
			}
			if s.i < len(s.b) && s.b[s.i] == '}' {
				s.i++
				break
			}
			s.unexpected("after object key:value pair")
		}
	}
	s.space()
	if s.i < len(s.b) {
		s.unexpected("after top-level value")
	}
	return
}

// The envelope's fields, as a key names them.
const (
	fieldOther = iota
	fieldOp
	fieldS
	fieldT
	fieldID
	fieldD
)

// field names the envelope field raw (a key's contents between its
// quotes) stands for, matched like encoding/json: exactly, or else
// case-insensitively after unescaping, with Unicode simple folding (so
// "S" and "ſ" are "s" too).
func field(raw []byte, esc bool) int {
	if esc || len(raw) > 2 || (len(raw) > 0 && raw[0] >= utf8.RuneSelf) {
		return foldedField(unquote(raw, esc))
	}
	switch len(raw) {
	case 1:
		switch raw[0] | 0x20 {
		case 's':
			return fieldS
		case 't':
			return fieldT
		case 'd':
			return fieldD
		}
	case 2:
		if raw[1] >= utf8.RuneSelf {
			return foldedField(raw)
		}
		switch {
		case raw[0]|0x20 == 'o' && raw[1]|0x20 == 'p':
			return fieldOp
		case raw[0]|0x20 == 'i' && raw[1]|0x20 == 'd':
			return fieldID
		}
	}
	return fieldOther
}

// foldedField matches an unescaped key rune by rune: besides ASCII case,
// the only rune that folds onto a letter of op, s, t, id or d is 'ſ'
// (U+017F), which folds onto s.
func foldedField(key []byte) int {
	var folded [2]byte
	n := 0
	for i := 0; i < len(key); {
		if n == len(folded) {
			return fieldOther
		}
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			folded[n] = c
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(key[i:])
		if r != 'ſ' {
			return fieldOther
		}
		folded[n] = 'S'
		n++
		i += size
	}
	switch string(folded[:n]) {
	case "OP":
		return fieldOp
	case "S":
		return fieldS
	case "T":
		return fieldT
	case "ID":
		return fieldID
	case "D":
		return fieldD
	}
	return fieldOther
}

func (s *scanner) typeError(key int) {
	names := [...]string{fieldOp: "op", fieldS: "s", fieldT: "t", fieldID: "id"}
	s.value()
	if s.err == "" {
		s.fail("wrong type for field " + names[key])
	}
}

// null consumes a null literal and reports whether there was one.
func (s *scanner) null() bool {
	if s.i < len(s.b) && s.b[s.i] == 'n' {
		s.lit("null")
		return true
	}
	return false
}

// int scans a JSON value that must be an integer fitting an int, like
// encoding/json's decoding into an int field (no fraction, no exponent).
func (s *scanner) int() (int64, bool) {
	i0 := s.i
	if s.i >= len(s.b) || (s.b[s.i] != '-' && (s.b[s.i] < '0' || s.b[s.i] > '9')) {
		s.typeError(fieldOp)
		return 0, false
	}
	if integer := s.number(); !integer {
		if s.err == "" {
			s.i = i0
			s.fail("wrong type for field op")
		}
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[i0:s.i]), 10, strconv.IntSize)
	if err != nil {
		s.i = i0
		s.fail("op out of range")
		return 0, false
	}
	return n, true
}

// uint scans a JSON value that must be an integer fitting a uint64.
func (s *scanner) uint() (uint64, bool) {
	i0 := s.i
	if s.i >= len(s.b) || (s.b[s.i] != '-' && (s.b[s.i] < '0' || s.b[s.i] > '9')) {
		s.typeError(fieldS)
		return 0, false
	}
	integer := s.number()
	if s.err != "" {
		return 0, false
	}
	var n uint64
	ok := integer && s.b[i0] != '-'
	for _, c := range s.b[i0:s.i] {
		if !ok {
			break
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			ok = false
		}
		n = n*10 + d
	}
	if !ok {
		s.i = i0
		s.fail("wrong type or range for field s")
		return 0, false
	}
	return n, true
}

// value scans any JSON value.
func (s *scanner) value() {
	if s.i >= len(s.b) {
		s.unexpected("looking for beginning of value")
		return
	}
	switch c := s.b[s.i]; c {
	case '{':
		s.object()
	case '[':
		s.array()
	case '"':
		s.skipStr()
	case 't':
		s.lit("true")
	case 'f':
		s.lit("false")
	case 'n':
		s.lit("null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			s.number()
			return
		}
		s.unexpected("looking for beginning of value")
	}
}

func (s *scanner) push() bool {
	s.depth++
	if s.depth > maxDepth {
		s.fail("exceeded max depth")
		return false
	}
	return true
}

func (s *scanner) object() {
	s.i++ // {
	if !s.push() {
		return
	}
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return
	}
	for s.err == "" {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			s.unexpected("looking for beginning of object key string")
			return
		}
		s.skipStr()
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			s.unexpected("after object key")
			return
		}
		s.i++
		s.space()
		s.value()
		s.space()
		if s.i < len(s.b) {
			switch s.b[s.i] {
			case ',':
				s.i++
				continue
			case '}':
				s.i++
				s.depth--
				return
			}
		}
		s.unexpected("after object key:value pair")
	}
}

func (s *scanner) array() {
	s.i++ // [
	if !s.push() {
		return
	}
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return
	}
	for s.err == "" {
		s.space()
		s.value()
		s.space()
		if s.i < len(s.b) {
			switch s.b[s.i] {
			case ',':
				s.i++
				continue
			case ']':
				s.i++
				s.depth--
				return
			}
		}
		s.unexpected("after array element")
	}
}

func (s *scanner) lit(want string) {
	if len(s.b)-s.i >= len(want) && string(s.b[s.i:s.i+len(want)]) == want {
		s.i += len(want)
		return
	}
	for k := 0; k < len(want); k++ {
		if s.i >= len(s.b) || s.b[s.i] != want[k] {
			s.unexpected("in literal " + want)
			return
		}
		s.i++
	}
}

// number scans a JSON number and reports whether it is an integer (no
// fraction or exponent).
func (s *scanner) number() (integer bool) {
	b := s.b
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(b) && b[s.i] == '0':
		s.i++
	case s.i < len(b) && '1' <= b[s.i] && b[s.i] <= '9':
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	default:
		s.unexpected("in numeric literal")
		return false
	}
	integer = true
	if s.i < len(b) && b[s.i] == '.' {
		integer = false
		s.i++
		if s.i >= len(b) || b[s.i] < '0' || b[s.i] > '9' {
			s.unexpected("after decimal point in numeric literal")
			return false
		}
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		integer = false
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(b) || b[s.i] < '0' || b[s.i] > '9' {
			s.unexpected("in exponent of numeric literal")
			return false
		}
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	}
	return integer
}

// str scans a string from its opening quote to past its closing one and
// reports whether unquoting it is more than taking its bytes: it has
// escapes or bytes that are not valid UTF-8.
func (s *scanner) str() (esc bool) {
	b := s.b
	s.i++ // "
	for s.i < len(b) {
		i := s.i
		for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:]), highBits) {
			i += 8
		}
		s.i = i
		if s.i >= len(b) {
			break
		}
		c := b[s.i]
		switch {
		case c == '"':
			s.i++
			return esc
		case c == '\\':
			esc = true
			s.escape()
			if s.err != "" {
				return
			}
		case c < ' ':
			s.unexpected("in string literal")
			return
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(b[s.i:])
			if r == utf8.RuneError && size == 1 {
				esc = true
			}
			s.i += size
		}
	}
	s.unexpected("in string literal")
	return
}

// strSafe marks the bytes a string holds as they are: not the quote, the
// backslash or a control character.
var strSafe = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= ' ' && c != '"' && c != '\\'
	}
	return t
}()

const (
	lowBits  = 0x0101010101010101 // one in every byte
	highBits = 0x8080808080808080 // the top bit of every byte
)

// special8 reports whether any of the 8 bytes in x is a quote, a
// backslash, a control character, or has a bit of also set (highBits:
// is not ASCII). It may say yes for 8 plain bytes, never no for special
// ones.
func special8(x, also uint64) bool {
	q := x ^ (lowBits * '"')
	bs := x ^ (lowBits * '\\')
	return ((x-lowBits*' ')&^x|(q-lowBits)&^q|(bs-lowBits)&^bs)&highBits|x&also != 0
}

// skipStr scans a string whose contents are not needed (inside d, or an
// unknown key's value): the same checks as str, without the UTF-8 one,
// which only unquoting needs.
func (s *scanner) skipStr() {
	b := s.b
	s.i++ // "
	for {
		i := s.i
		for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:]), 0) {
			i += 8
		}
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		s.i = i
		if s.i >= len(b) {
			s.unexpected("in string literal")
			return
		}
		switch b[s.i] {
		case '"':
			s.i++
			return
		case '\\':
			s.escape()
			if s.err != "" {
				return
			}
		default:
			s.unexpected("in string literal")
			return
		}
	}
}

// escape scans one escape sequence, from its backslash.
func (s *scanner) escape() {
	b := s.b
	s.i++
	if s.i >= len(b) {
		s.unexpected("in string escape code")
		return
	}
	switch b[s.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
	case 'u':
		s.i++
		for k := 0; k < 4; k++ {
			if s.i >= len(b) || !isHex(b[s.i]) {
				s.unexpected("in \\u hexadecimal character escape")
				return
			}
			s.i++
		}
	default:
		s.unexpected("in string escape code")
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

// unquote gives a scanned string's contents unescaped, like encoding/json:
// invalid UTF-8 and lone surrogates become U+FFFD. Without esc it is raw
// itself.
func unquote(raw []byte, esc bool) []byte {
	if !esc {
		return raw
	}
	out := make([]byte, 0, len(raw)+2*utf8.UTFMax)
	for r := 0; r < len(raw); {
		c := raw[r]
		switch {
		case c == '\\':
			r++
			switch raw[r] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				rr := hex4(raw[r+1:])
				r += 4
				if utf16.IsSurrogate(rr) {
					if r+6 < len(raw) && raw[r+1] == '\\' && raw[r+2] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(raw[r+3:])); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							r += 7
							continue
						}
					}
					rr = utf8.RuneError
				}
				out = utf8.AppendRune(out, rr)
			default: // " \ /
				out = append(out, raw[r])
			}
			r++
		case c < utf8.RuneSelf:
			out = append(out, c)
			r++
		default:
			rr, size := utf8.DecodeRune(raw[r:])
			out = utf8.AppendRune(out, rr)
			r += size
		}
	}
	return out
}

// hex4 decodes the four hex digits a scanned \u escape is sure to have.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
