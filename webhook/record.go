package webhook

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
)

// The inbox file format (version 1). An inbox is a directory
// <session dir>/inbox-<safeId>/ (mode 0700) holding one segment file
// seg-<n>.log (mode 0600, n in 20 decimal digits) and a lock file. A
// segment is a sequence of lines, each
//
//	<crc> <json>\n
//
// where <crc> is the CRC-32C of the JSON bytes in 8 lowercase hex digits
// and <json> one object, whose "k" says what the line is:
//
//	{"k":"h","v":1,"account":A,"app":P,"next":N}  header, the first line: the account and app it belongs to, the next seq
//	{"k":"i","id":ID,"at":MS,"s":S}              an envelope id accepted before (seq S, at MS ms since the epoch), kept for dedupe
//	{"k":"a","s":S,"id":ID,"t":T,"at":MS,"d":B}  an accepted push: seq S, envelope id, type, when, and d exactly as pushed (base64)
//	{"k":"c","s":S}                              the push of seq S was handled
//
// Accepted lines are fsynced before the push is answered; commit lines are
// written (not fsynced: a crash of the process loses nothing written, and
// after a power failure the event is handled again). A line that does not
// parse is skipped; an incomplete last line (a write cut short) is cut
// off. When the segment grows past its bound, the inbox writes a new one
// (the header, the ids still kept for dedupe, the pushes not yet handled)
// beside it as a temporary file, syncs it, renames it into place and
// removes the old one; at start only the highest-numbered segment counts.

// recordKind is the "k" of an inbox line.
const (
	kindHeader = "h"
	kindID     = "i"
	kindAccept = "a"
	kindCommit = "c"
)

// formatVersion is the "v" of the header this package writes and reads.
const formatVersion = 1

// Record is one line of an inbox segment, parsed.
type Record struct {
	Kind    string `json:"k"`
	Version int    `json:"v,omitempty"`
	Account string `json:"account,omitempty"`
	App     string `json:"app,omitempty"`
	Next    uint64 `json:"next,omitempty"`
	Seq     uint64 `json:"s,omitempty"`
	ID      string `json:"id,omitempty"`
	Type    string `json:"t,omitempty"`
	At      int64  `json:"at,omitempty"`
	Data    []byte `json:"d,omitempty"`
}

// ErrBadRecord is wrapped by ParseRecord's errors.
var ErrBadRecord = errors.New("webhook: bad inbox record")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// EncodeRecord returns r as one inbox line, newline included.
func EncodeRecord(r Record) []byte {
	js, err := json.Marshal(r)
	if err != nil {
		// Record has only strings, numbers and bytes: Marshal cannot fail.
		panic(err)
	}
	out := make([]byte, 0, 10+len(js))
	out = fmt.Appendf(out, "%08x ", crc32.Checksum(js, crcTable))
	out = append(out, js...)
	return append(out, '\n')
}

// ParseRecord parses one inbox line (without its newline). A line whose
// checksum does not match, that is not one JSON object, or whose fields do
// not fit its kind is an error wrapping ErrBadRecord.
func ParseRecord(line []byte) (Record, error) {
	var r Record
	if len(line) < 10 || line[8] != ' ' {
		return r, fmt.Errorf("%w: too short or no checksum", ErrBadRecord)
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return r, fmt.Errorf("%w: checksum is not hex", ErrBadRecord)
	}
	js := line[9:]
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	if crc32.Checksum(js, crcTable) != want {
		return r, fmt.Errorf("%w: checksum mismatch", ErrBadRecord)
	}
	if err := json.Unmarshal(js, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	switch r.Kind {
	case kindHeader:
		if r.Version != formatVersion {
			return Record{}, fmt.Errorf("%w: format version %d (this build reads %d)", ErrBadRecord, r.Version, formatVersion)
		}
		if r.Next == 0 {
			return Record{}, fmt.Errorf("%w: header without next", ErrBadRecord)
		}
	case kindID:
		if r.ID == "" {
			return Record{}, fmt.Errorf("%w: id record without id", ErrBadRecord)
		}
	case kindAccept:
		if r.Seq == 0 || !json.Valid(r.Data) {
			return Record{}, fmt.Errorf("%w: accept record without seq or with a d that is not JSON", ErrBadRecord)
		}
	case kindCommit:
		if r.Seq == 0 {
			return Record{}, fmt.Errorf("%w: commit without seq", ErrBadRecord)
		}
	default:
		return Record{}, fmt.Errorf("%w: unknown kind %q", ErrBadRecord, r.Kind)
	}
	return r, nil
}
