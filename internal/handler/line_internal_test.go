package handler

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
)

// marshalLine is the reference encoding of a line: encoding/json's Marshal
// of the five fields, the way Line was written before it was hand-rolled.
func marshalLine(ev event.Event) ([]byte, error) {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return json.Marshal(struct {
		Account string          `json:"account"`
		Seq     uint64          `json:"seq"`
		Type    string          `json:"type"`
		ID      string          `json:"id"`
		Data    json.RawMessage `json:"data"`
	}{ev.AccountID, ev.Seq, ev.Type, ev.ID, data})
}

// stringSeeds hold every byte class appendJSONString treats apart.
var stringSeeds = []string{
	"", "plain", `a"b\c`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "<script>&amp;</script>",
	"你好", "\u2028\u2029", "\xe2\x80", "\xe2\x80\xa8x", "\xff\xfe", "a\xc3", "\xed\xa0\x80", "😀\U0010FFFF",
}

// dataSeeds hold valid and invalid JSON of every shape checkData tells
// apart.
var dataSeeds = []string{
	`{"content":"hi"}`, "{\n  \"n\": 1.50,\n  \"s\": \"\\u4f60\"\n}", `[1]`, `""`, `"<@!123> hi & bye"`,
	`{"a":[true,false,null,-0,1e5,2.5E-3,{}],"b":{"c":[]}}`, " 1 ", "\t[ 1 , 2 ]\r\n", `"\u2028"`, "\"\u2028\u2029\"",
	"\"\xe2\x80\xa9\"", "\"\xff\"", `"\"\\\/\b\f\n\r\t\u00e9"`,
	`{"broken`, `{"a" 1}`, `{"a":}`, `[1,]`, `{,}`, `01`, `1.`, `-`, `1e`, `.5`, `+1`, `tru`, `truex`, `nul`, `"\x"`, `"\u12"`,
	"\"a\nb\"", `{"a":1}}`, `[1]]`, `{"a":1]`, `[1}`, `1 2`, "", " ", `"`, `'a'`, `{"a":1,}`, `[`, `{`, `{"a"`, `{"a":1`,
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		got := appendJSONString([]byte("prefix"), s)
		require.Equal(t, "prefix"+string(want), string(got), "%q", s)
	})
}

func FuzzAppendData(f *testing.F) {
	for _, s := range dataSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		orig := bytes.Clone(src)
		got, err := appendData([]byte("prefix"), src)
		require.Equal(t, orig, src, "src is never modified")
		want, werr := json.Marshal(json.RawMessage(src))
		if len(src) == 0 { // Marshal writes null for an empty RawMessage; Line does not call appendData then.
			require.Error(t, err)
			return
		}
		if werr != nil {
			require.Error(t, err, "%q is invalid for encoding/json", src)
			require.ErrorIs(t, err, ErrInvalidData)
			require.Equal(t, "prefix", string(got), "nothing appended on error")
			return
		}
		require.NoError(t, err, "%q is valid for encoding/json", src)
		require.Equal(t, "prefix"+string(want), string(got), "%q", src)
		require.NotContains(t, string(got), "\n")
	})
}

func FuzzLine(f *testing.F) {
	for i, d := range dataSeeds {
		f.Add(stringSeeds[i%len(stringSeeds)], uint64(i), stringSeeds[(i+3)%len(stringSeeds)], stringSeeds[(i+5)%len(stringSeeds)], []byte(d))
	}
	f.Fuzz(func(t *testing.T, account string, seq uint64, typ, id string, data []byte) {
		ev := event.Event{AccountID: account, Seq: seq, Type: typ, ID: id, Data: data}
		want, werr := marshalLine(ev)
		got, err := Line(ev)
		if werr != nil {
			require.Error(t, err)
			require.Nil(t, got)
			return
		}
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		// The same appended to a buffer holding an earlier line.
		buf, err := appendLine([]byte("earlier\n"), ev)
		require.NoError(t, err)
		require.Equal(t, "earlier\n"+string(want), string(buf))
	})
}

func TestAppendDataNestingBound(t *testing.T) {
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		for _, src := range []string{
			strings.Repeat("[", depth) + strings.Repeat("]", depth),       // the innermost empty
			strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth), // the innermost not
			strings.Repeat(`{"k":`, depth-1) + "{}" + strings.Repeat("}", depth-1),
			strings.Repeat(`{"k":`, depth) + "1" + strings.Repeat("}", depth),
		} {
			_, err := appendData(nil, []byte(src))
			assert.Equal(t, depth <= maxDepth, err == nil, "depth %d: %.20s", depth, src)
			assert.Equal(t, json.Valid([]byte(src)), err == nil, "as encoding/json: depth %d: %.20s", depth, src)
		}
	}
}

func TestAppendDataCopiesCompactDataAsItIs(t *testing.T) {
	src := []byte(`{"content":"\u003c@!1\u003e hi","n":[1,2]}`)
	verbatim, err := checkData(src)
	require.NoError(t, err)
	assert.True(t, verbatim)
	for _, s := range []string{`{"a": 1}`, "[1,\n2]", `"<"`, `"&"`, "\"\u2028\""} {
		verbatim, err := checkData([]byte(s))
		require.NoError(t, err)
		assert.False(t, verbatim, s)
	}
}

func BenchmarkLine(b *testing.B) {
	ev := event.Event{AccountID: "102005555", Seq: 123456, Type: "GROUP_AT_MESSAGE_CREATE", ID: "GROUP_AT_MESSAGE_CREATE:1",
		Data: json.RawMessage(`{"id":"ROBOT1.0_group.1","content":" hello 1","timestamp":"2026-11-26T00:00:16+08:00","author":{"id":"M0000000000000000000000000000001","member_openid":"M0000000000000000000000000000001","union_openid":"U0000000000000000000000000000001"},"group_openid":"G0000000000000000000000000000001","group_id":"G0000000000000000000000000000001","mentions":[{"scope":"single","id":"B0000000000000000000000000000001","member_openid":"B0000000000000000000000000000001","nickname":"qqgate-test-bot-1020304","bot":true,"is_you":true}],"message_scene":{"source":"default"}}`)}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = marshalLine(ev)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendLine(buf[:0], ev)
		}
	})
	b.Run("append-rewrite", func(b *testing.B) { // data with a raw '<' and spaces: the second pass
		ev := ev
		ev.Data = bytes.ReplaceAll(ev.Data, []byte(`" hello`), []byte(`"<@!1> hello`))
		ev.Data = bytes.ReplaceAll(ev.Data, []byte(`,"`), []byte(`, "`))
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendLine(buf[:0], ev)
		}
	})
}

// TestSpecial8 holds the 8-byte test of scanString to the byte classes:
// a special byte anywhere in the word is always seen, and words of plain
// ASCII are passed over.
func TestSpecial8(t *testing.T) {
	for c := 0; c < 256; c++ {
		special := strClass[c] != inStrPlain || c >= utf8.RuneSelf
		for pos := 0; pos < 8; pos++ {
			word := []byte("abcdefgh")
			word[pos] = byte(c)
			got := special8(binary.LittleEndian.Uint64(word))
			if special {
				require.True(t, got, "byte %#x at %d", c, pos)
			}
		}
		if !special {
			word := bytes.Repeat([]byte{byte(c)}, 8)
			assert.False(t, special8(binary.LittleEndian.Uint64(word)), "plain byte %#x", c)
		}
	}
}
