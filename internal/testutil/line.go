package testutil

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Line is one JSON line of the stdout event handler (`qqgate run`'s
// stdout), with the field names the handler writes:
//
//	{"account":…,"seq":…,"type":…,"id":…,"data":{…}}
//
// internal/handler's tests check that the handler's encoding and this type
// agree field for field.
type Line struct {
	Account string          `json:"account"`
	Seq     uint64          `json:"seq"`
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
}

// ParseLine decodes one line; it is the parse function of a Proc reading
// event lines.
func ParseLine(b []byte) (Line, error) {
	var l Line
	err := json.Unmarshal(b, &l)
	return l, err
}

// ParseLines decodes every line of text, failing the test on one that is
// not a JSON object.
func ParseLines(tb testing.TB, text string) []Line {
	tb.Helper()
	var out []Line
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, maxLine)
	for sc.Scan() {
		l, err := ParseLine(sc.Bytes())
		require.NoError(tb, err, "not a JSON line: %q", sc.Text())
		out = append(out, l)
	}
	require.NoError(tb, sc.Err())
	return out
}
