package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/wire"
)

// reference decodes b the way the envelope was decoded before ScanFrame:
// encoding/json into the five fields, op required.
func reference(b []byte) (wire.Frame, bool) {
	var raw struct {
		ID string          `json:"id"`
		Op *wire.Opcode    `json:"op"`
		D  json.RawMessage `json:"d"`
		S  uint64          `json:"s"`
		T  string          `json:"t"`
	}
	if len(b) > wire.MaxFrameBytes {
		return wire.Frame{}, false
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Op == nil {
		return wire.Frame{}, false
	}
	return wire.Frame{ID: raw.ID, Op: *raw.Op, D: raw.D, S: raw.S, T: raw.T}, true
}

// checkSame fails t unless ScanFrame and DecodeFrame agree with
// encoding/json on b: both accept it with the same values, or both reject
// it (with ErrBadFrame).
func checkSame(t *testing.T, b []byte) {
	t.Helper()
	want, ok := reference(b)
	e, err := wire.ScanFrame(b)
	f, ferr := wire.DecodeFrame(b)
	if !ok {
		if err == nil || ferr == nil {
			t.Fatalf("%q: encoding/json rejects it, ScanFrame gives %+v, DecodeFrame %+v", b, e, f)
		}
		if !errors.Is(err, wire.ErrBadFrame) || !errors.Is(ferr, wire.ErrBadFrame) {
			t.Fatalf("%q: error %v / %v does not wrap ErrBadFrame", b, err, ferr)
		}
		return
	}
	if err != nil || ferr != nil {
		t.Fatalf("%q: encoding/json accepts it (%+v), ScanFrame says %v, DecodeFrame %v", b, want, err, ferr)
	}
	got := wire.Frame{ID: string(e.ID), Op: e.Op, D: e.D, S: e.S, T: string(e.T)}
	for name, g := range map[string]wire.Frame{"ScanFrame": got, "DecodeFrame": f} {
		if g.ID != want.ID || g.Op != want.Op || g.S != want.S || g.T != want.T || !bytes.Equal(g.D, want.D) || (g.D == nil) != (want.D == nil) {
			t.Fatalf("%q: %s gives %+v (d %q), encoding/json %+v (d %q)", b, name, g, g.D, want, want.D)
		}
	}
}

// frameSeeds are the seed corpus of FuzzScanFrame, run as a test as well:
// the envelope's corners where a hand-written decoder could part ways
// with encoding/json.
var frameSeeds = []string{
	`{"op":0,"s":42,"t":"C2C_MESSAGE_CREATE","id":"C2C_MESSAGE_CREATE:abc","d":{"content":"123"}}`,
	`{"op":10,"d":{"heartbeat_interval":41250}}`,
	`{"op":11}`, `{"op":1,"d":null}`, `{"op":9,"d":false}`, `{"op":7}`,
	` {"op" : 0 , "d" : [ 1 , { "a" : [ ] } , "x" ] , "s" : 3 } ` + "\n\t\r",
	`{}`, `{"op":null}`, `{"op":1,"op":null}`, `{"op":null,"op":2}`, `{"op":1,"op":2}`,
	`{"op":0,"s":1,"s":null}`, `{"op":0,"t":"a","t":null}`, `{"op":0,"id":"a","id":null}`,
	`{"op":0,"d":1,"d":"x"}`, `{"op":0,"d":null}`, `{"op":0,"d":""}`, `{"op":0,"d":{}}`, `{"op":0,"d":[]}`,
	`{"OP":1}`, `{"Op":1,"S":2,"T":"x","ID":"y","D":3}`, `{"iD":"a","op":1}`,
	`{"\u006fp":1}`, `{"o\u0070":2,"\u0073":3,"\u0074":"t"}`, `{"op":1,"ſ":7}`, `{"op":1,"\u017f":7}`,
	`{"op":1,"K":1}`, `{"op":1,"ıd":"x"}`, `{"op":1,"İd":"x"}`, `{"op":1,"ops":1}`, `{"op":1,"":1}`,
	`{"op":-0}`, `{"op":-1}`, `{"op":0,"s":-0}`, `{"op":0,"s":0}`, `{"op":01}`, `{"op":1.0}`, `{"op":1e2}`, `{"op":1E+2}`,
	`{"op":9223372036854775807}`, `{"op":9223372036854775808}`, `{"op":-9223372036854775808}`, `{"op":-9223372036854775809}`,
	`{"op":0,"s":18446744073709551615}`, `{"op":0,"s":18446744073709551616}`, `{"op":0,"s":99999999999999999999}`,
	`{"op":"1"}`, `{"op":true}`, `{"op":{}}`, `{"op":[]}`, `{"op":0,"s":"1"}`, `{"op":0,"s":1.5}`, `{"op":0,"s":true}`,
	`{"op":0,"t":1}`, `{"op":0,"t":{}}`, `{"op":0,"id":[]}`, `{"op":0,"id":false}`,
	`{"op":0,"t":"\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t"}`, `{"op":0,"t":"\ud83d"}`, `{"op":0,"t":"\ud83dx"}`,
	`{"op":0,"t":"\ud83d\u0041"}`, `{"op":0,"t":"\ude00\ud83d"}`, `{"op":0,"id":"\ud83d\ud83d\ude00"}`,
	"{\"op\":0,\"t\":\"\xff\xfe\"}", "{\"op\":0,\"id\":\"a\xed\xa0\x80b\"}", "{\"op\":0,\"d\":\"\xff\"}", "{\"\xff\":1,\"op\":1}",
	"{\"op\":0,\"t\":\"a\x01\"}", "{\"op\":0,\"d\":\"\x1f\"}", `{"op":0,"t":"\x"}`, `{"op":0,"t":"\u12"}`, `{"op":0,"t":"\u12G4"}`,
	`{"op":0,"d":{"a":1,}}`, `{"op":0,"d":[1,]}`, `{"op":0,,"s":1}`, `{"op":0 "s":1}`, `{"op" 0}`, `{op:0}`, `{'op':0}`,
	`{"op":0}x`, `{"op":0}{}`, `{"op":0`, `{"op":`, `{"op"`, `{"`, `{`, ``, ` `, `null`, `[]`, `[{"op":1}]`, `"op"`, `1`, `true`,
	`{"op":0,"d":tru}`, `{"op":0,"d":nul}`, `{"op":0,"d":True}`, `{"op":0,"d":-}`, `{"op":0,"d":1.}`, `{"op":0,"d":.5}`, `{"op":0,"d":1e}`,
	`{"op":0,"d":1e+}`, `{"op":0,"d":-01}`, `{"op":0,"d":0.0e-0}`, `{"op":0,"d":NaN}`, "\ufeff{\"op\":0}",
	`{"op":0,"d":{"a":{"b":{"c":[[[["deep"]]]]}}}}`, `{"op":0,"x":{"op":5},"y":[{"s":1}]}`,
}

func TestScanFrameMatchesEncodingJSON(t *testing.T) {
	for _, s := range frameSeeds {
		checkSame(t, []byte(s))
	}
	// Nesting: encoding/json allows 10000 levels, the frame's included.
	for _, depth := range []int{9998, 9999, 10000} {
		d := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		checkSame(t, []byte(`{"op":0,"d":`+d+`}`))
		d = strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
		checkSame(t, []byte(`{"op":0,"x":`+d+`}`))
	}
	big := make([]byte, wire.MaxFrameBytes+1)
	_, err := wire.ScanFrame(big)
	assert.ErrorIs(t, err, wire.ErrBadFrame)
}

func TestScanFrameInPlace(t *testing.T) {
	b := []byte(`{"op":0,"s":7,"t":"READY","id":"x:1","d":{"session_id":"s"}}`)
	e, err := wire.ScanFrame(b)
	require.NoError(t, err)
	assert.Equal(t, `{"session_id":"s"}`, string(e.D))
	assert.Equal(t, len(e.D), cap(e.D), "appending to d cannot write over the input")
	b[bytes.Index(b, []byte("READY"))] = 'X'
	assert.Equal(t, "XEADY", string(e.T), "t is a sub-slice of the input")
}

// FuzzScanFrame checks that ScanFrame (and DecodeFrame on it) accept
// exactly what encoding/json accepts into the envelope, with the same
// values, and never panic.
func FuzzScanFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSame(t, b)
	})
}

// benchFrame is a message dispatch the size of the gateway's common one.
var benchFrame = []byte(`{"op":0,"s":1234,"t":"GROUP_AT_MESSAGE_CREATE","id":"GROUP_AT_MESSAGE_CREATE:e2xkanzpqwbahz1xkxxfbuuc7mc9ymnhtshpuuhtmeeytjgozazxksbnqfsgxnnjlczpgr","d":{"author":{"id":"E4F4AEA33253A2797FB897C50B81D7ED","member_openid":"E4F4AEA33253A2797FB897C50B81D7ED","union_openid":"E4F4AEA33253A2797FB897C50B81D7ED"},"content":" hello \u4f60\u597d, this is a test message with some text in it","group_id":"C9F778FE6ADF9D1D1DBE395BF744A33A","group_openid":"C9F778FE6ADF9D1D1DBE395BF744A33A","id":"ROBOT1.0_veoihSPBWsUcGOtaJrtOy5cE4UInSKm3I6TomhdYldxNOO8Q","timestamp":"2026-11-25T16:00:00+08:00","message_scene":{"source":"default"}}}`)

func BenchmarkScanFrame(b *testing.B) {
	b.SetBytes(int64(len(benchFrame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ScanFrame(benchFrame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalEnvelope(b *testing.B) {
	b.SetBytes(int64(len(benchFrame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := reference(benchFrame); !ok {
			b.Fatal("bad frame")
		}
	}
}

// ScanFrame allocates nothing for a frame whose t and id need no
// unescaping: the envelope points into the input.
func TestScanFrameAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := wire.ScanFrame(benchFrame); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
