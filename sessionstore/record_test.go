package sessionstore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureDir holds records in the plugin's exact format, made by testdata/gen.js.
const fixtureDir = "testdata"

// fixtureSaved is savedAt of every fixture (2026-01-01T00:00:00Z).
var fixtureSaved = time.UnixMilli(1767225600000).UTC()

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	require.NoError(t, err)
	return b
}

func TestParseFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want Record
	}{
		{"session-full.json", Record{
			AccountID: "full", SessionID: "c4b1e0a2-5f9d-4e36-9a1b-7d2f0e8c6a11", LastSeq: 42, HasSeq: true,
			LastConnectedAt: fixtureSaved.Add(-time.Minute), IntentLevelIndex: 1, SavedAt: fixtureSaved, AppID: "102005678",
		}},
		{"session-null-seq.json", Record{
			AccountID: "null-seq", SessionID: "0d9e8f7a-1111-2222-3333-444455556666",
			LastConnectedAt: fixtureSaved.Add(-time.Second), SavedAt: fixtureSaved,
		}},
		{"session-no-appid.json", Record{
			AccountID: "no-appid", SessionID: "e1e2e3e4-aaaa-bbbb-cccc-ddddeeeeffff", LastSeq: 7, HasSeq: true,
			LastConnectedAt: fixtureSaved.Add(-5 * time.Second), IntentLevelIndex: 2, SavedAt: fixtureSaved,
		}},
		{"session-extra.json", Record{
			AccountID: "extra", SessionID: "f0f0f0f0-1234-5678-9abc-def012345678", LastSeq: 1001, HasSeq: true,
			LastConnectedAt: fixtureSaved.Add(-2 * time.Second), SavedAt: fixtureSaved, AppID: "102005678",
			Extra: map[string]json.RawMessage{"shard": json.RawMessage(`{"index":0,"count":[1,2],"label":"a<b>&c ` + "\u2028" + ` \"q\" 机器人"}`)},
		}},
		{"session-null-session.json", Record{AccountID: "null-session", IntentLevelIndex: 3, SavedAt: fixtureSaved}},
		{"session-__bot__.json", Record{
			AccountID: "ü.bot😀", SessionID: "s-uni", LastSeq: 5, HasSeq: true,
			LastConnectedAt: fixtureSaved, SavedAt: fixtureSaved,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			b := readFixture(t, tt.file)
			r, err := ParseRecord(b)
			require.NoError(t, err)
			assert.Equal(t, tt.want, r)
			assert.Equal(t, tt.file, FileName(r.AccountID), "file name rule")
			// Our encoding is byte for byte the plugin's JSON.stringify(state, null, 2).
			enc, err := r.MarshalJSON()
			require.NoError(t, err)
			assert.Equal(t, string(b), string(enc))
		})
	}
}

func TestSafeIDMatchesPlugin(t *testing.T) {
	t.Parallel()
	// safeid.json was produced by the plugin's own regex under Node.
	var want map[string]string
	require.NoError(t, json.Unmarshal(readFixture(t, "safeid.json"), &want))
	require.NotEmpty(t, want)
	for id, safe := range want {
		assert.Equal(t, safe, SafeID(id), "SafeID(%q)", id)
	}
	assert.Equal(t, "_", SafeID("\xff"), "invalid UTF-8 byte")
	assert.Equal(t, "session-a_b.json", FileName("a.b"))
}

func TestParseRecordErrors(t *testing.T) {
	t.Parallel()
	valid := `"accountId":"a","savedAt":1767225600000`
	tests := map[string]struct {
		in    string
		field string
	}{
		"empty":             {"", ""},
		"not json":          {"hello", ""},
		"truncated":         {`{"accountId":"a","savedAt":17672`, ""},
		"null":              {"null", ""},
		"array":             {"[1,2]", ""},
		"string":            {`"x"`, ""},
		"trailing garbage":  {`{` + valid + `} x`, ""},
		"missing accountId": {`{"savedAt":1}`, "accountId"},
		"missing savedAt":   {`{"accountId":"a"}`, "savedAt"},
		"accountId number":  {`{"accountId":1,"savedAt":1}`, "accountId"},
		"accountId null":    {`{"accountId":null,"savedAt":1}`, "accountId"},
		"savedAt string":    {`{"accountId":"a","savedAt":"1"}`, "savedAt"},
		"savedAt fraction":  {`{"accountId":"a","savedAt":1.5}`, "savedAt"},
		"savedAt huge":      {`{"accountId":"a","savedAt":1e300}`, "savedAt"},
		"savedAt null":      {`{"accountId":"a","savedAt":null}`, "savedAt"},
		"lastSeq string":    {`{` + valid + `,"lastSeq":"42"}`, "lastSeq"},
		"lastSeq negative":  {`{` + valid + `,"lastSeq":-1}`, "lastSeq"},
		"lastSeq fraction":  {`{` + valid + `,"lastSeq":1.25}`, "lastSeq"},
		"lastSeq overflow":  {`{` + valid + `,"lastSeq":18446744073709551616}`, "lastSeq"},
		"lastSeq bool":      {`{` + valid + `,"lastSeq":true}`, "lastSeq"},
		"sessionId number":  {`{` + valid + `,"sessionId":5}`, "sessionId"},
		"sessionId object":  {`{` + valid + `,"sessionId":{}}`, "sessionId"},
		"intent negative":   {`{` + valid + `,"intentLevelIndex":-1}`, "intentLevelIndex"},
		"intent null":       {`{` + valid + `,"intentLevelIndex":null}`, "intentLevelIndex"},
		"appId number":      {`{` + valid + `,"appId":102}`, "appId"},
		"lastConnected str": {`{` + valid + `,"lastConnectedAt":"x"}`, "lastConnectedAt"},
		"deep nesting":      {`{` + valid + `,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ""},
		"huge":              {`{` + valid + `,"pad":"` + strings.Repeat("x", MaxRecordSize) + `"}`, ""},
		"grows on rewrite":  {`{` + valid + `,"pad":[` + strings.Repeat("1,", 20000) + `1]}`, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseRecord([]byte(tt.in))
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
			assert.NotEmpty(t, fe.Error())
		})
	}
	_, err := ParseRecord([]byte(`{` + valid + `,"pad":"` + strings.Repeat("x", MaxRecordSize) + `"}`))
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestParseRecordLenient(t *testing.T) {
	t.Parallel()
	// Integral numbers in any JSON form, nulls where the plugin allows them,
	// and absent optional fields.
	r, err := ParseRecord([]byte(`{"accountId":"a","savedAt":1.767225600e12,"lastSeq":4.2e1,"sessionId":null,"appId":null,"intentLevelIndex":2.0}`))
	require.NoError(t, err)
	assert.Equal(t, Record{AccountID: "a", SavedAt: fixtureSaved, LastSeq: 42, HasSeq: true, IntentLevelIndex: 2}, r)

	// Duplicate keys: the last wins, as in JSON.parse.
	r, err = ParseRecord([]byte(`{"accountId":"a","accountId":"b","savedAt":0}`))
	require.NoError(t, err)
	assert.Equal(t, "b", r.AccountID)

	// Field names are case-sensitive: "SessionId" is an unknown field.
	r, err = ParseRecord([]byte(`{"accountId":"a","savedAt":0,"SessionId":"x"}`))
	require.NoError(t, err)
	assert.Empty(t, r.SessionID)
	assert.Contains(t, r.Extra, "SessionId")

	// json.Unmarshal goes through ParseRecord.
	var rr Record
	require.NoError(t, json.Unmarshal(readFixture(t, "session-full.json"), &rr))
	assert.Equal(t, uint64(42), rr.LastSeq)
	require.Error(t, json.Unmarshal([]byte(`{"accountId":1}`), &rr))
}

func TestMarshalJSONForm(t *testing.T) {
	t.Parallel()
	r := Record{
		AccountID: `a"b\c` + "\n\x01", SessionID: "<s>&", HasSeq: true, LastSeq: 0,
		SavedAt: fixtureSaved, IntentLevelIndex: 1,
		Extra: map[string]json.RawMessage{
			"zeta": json.RawMessage(`[]`), "alpha": json.RawMessage(`{ "k" : [ 1 , {} ] }`),
			"sessionId": json.RawMessage(`"ignored"`),
		},
	}
	b, err := r.MarshalJSON()
	require.NoError(t, err)
	// What Node's JSON.stringify(state, null, 2) gives for this state.
	want := `{
  "sessionId": "<s>&",
  "lastSeq": 0,
  "lastConnectedAt": 0,
  "intentLevelIndex": 1,
  "accountId": "a\"b\\c\n\u0001",
  "savedAt": 1767225600000,
  "alpha": {
    "k": [
      1,
      {}
    ]
  },
  "zeta": []
}`
	assert.Equal(t, want, string(b))

	_, err = Record{Extra: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}.MarshalJSON()
	require.Error(t, err)
}

func TestResumable(t *testing.T) {
	t.Parallel()
	base := Record{AccountID: "a", SessionID: "s", LastSeq: 1, HasSeq: true, SavedAt: fixtureSaved, AppID: "app"}
	tests := []struct {
		name  string
		mod   func(*Record)
		age   time.Duration
		appID string
		want  bool
	}{
		{"fresh", nil, time.Minute, "app", true},
		{"exactly five minutes", nil, Expiry, "app", true},
		{"just expired", nil, Expiry + time.Millisecond, "app", false},
		{"no session id", func(r *Record) { r.SessionID = "" }, 0, "app", false},
		{"null seq", func(r *Record) { r.HasSeq = false }, 0, "app", false},
		{"seq zero is a seq", func(r *Record) { r.LastSeq = 0 }, 0, "app", true},
		{"other app", nil, 0, "other", false},
		{"caller has no app id", nil, 0, "", true},
		{"record has no app id", func(r *Record) { r.AppID = "" }, 0, "other", true},
		{"saved a little in the future (clock skew)", nil, -MaxClockSkew, "app", true},
		{"saved too far in the future", nil, -MaxClockSkew - time.Millisecond, "app", false},
		{"saved an hour in the future", nil, -time.Hour, "app", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base
			if tt.mod != nil {
				tt.mod(&r)
			}
			assert.Equal(t, tt.want, r.Resumable(fixtureSaved.Add(tt.age), tt.appID))
		})
	}
}

func TestExpiredInTheFuture(t *testing.T) {
	t.Parallel()
	r := Record{AccountID: "a", SessionID: "s", HasSeq: true, SavedAt: fixtureSaved}
	assert.False(t, r.Expired(fixtureSaved.Add(-MaxClockSkew)), "within the skew")
	assert.True(t, r.Expired(fixtureSaved.Add(-MaxClockSkew-time.Millisecond)), "beyond the skew")
	assert.True(t, r.Expired(fixtureSaved.Add(-24*time.Hour)))
}

func TestErrorsAreInspectable(t *testing.T) {
	t.Parallel()
	ce := &CorruptError{Path: "p", Err: &FormatError{Reason: "x", Err: ErrTooLarge}, KeptAs: "k"}
	var fe *FormatError
	require.ErrorAs(t, ce, &fe)
	require.ErrorIs(t, ce, ErrTooLarge)
	assert.Contains(t, ce.Error(), "kept as k")
	le := &LockedError{Path: "l", PID: 4242}
	assert.Contains(t, le.Error(), "4242")
	assert.NotContains(t, (&LockedError{Path: "l"}).Error(), " 0 ")
	assert.True(t, errors.Is(noSession("a", "x"), ErrNoSession))
}

func FuzzParseRecord(f *testing.F) {
	ents, err := os.ReadDir(fixtureDir)
	require.NoError(f, err)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			f.Add(readFixture(f, e.Name()))
		}
	}
	for _, s := range []string{
		"", "{}", "null", "[]", `"x"`, "{", `{"accountId":"a","savedAt":0}`,
		`{"accountId":"a","savedAt":1e3,"lastSeq":1.0,"x":{"y":[null,true,"\ud800"]}}`,
		`{"accountId":"\u0000\u2028","savedAt":-1,"lastSeq":18446744073709551615}`,
		`{"accountId":"a","savedAt":0,"appId":"","sessionId":""}`,
		"{\"accountId\":\"\xff\",\"savedAt\":0}",
		`{"accountId":"a","savedAt":0,"x":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			return
		}
		enc, err := r.MarshalJSON()
		require.NoError(t, err)
		r2, err := ParseRecord(enc)
		require.NoError(t, err, "re-parse of %q", enc)
		require.Equal(t, r, r2)
		enc2, err := r2.MarshalJSON()
		require.NoError(t, err)
		require.Equal(t, string(enc), string(enc2))
	})
}
