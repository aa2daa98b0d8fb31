package webhook_test

import (
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/qqgate/qqgate/webhook"
)

func FuzzParseRecord(f *testing.F) {
	for _, r := range []webhook.Record{
		{Kind: "h", Version: 1, Account: "a", App: "1", Next: 1},
		{Kind: "i", ID: "C2C_MESSAGE_CREATE:x", At: 1, Seq: 3},
		{Kind: "a", Seq: 2, ID: "GROUP_AT_MESSAGE_CREATE:y", Type: "GROUP_AT_MESSAGE_CREATE", At: 5, Data: []byte(`{"id":"ROBOT1.0_1"}`)},
		{Kind: "c", Seq: 2},
	} {
		line := webhook.EncodeRecord(r)
		f.Add(line[:len(line)-1])
	}
	f.Add([]byte("00000000 {}"))
	f.Add([]byte("zzzzzzzz {\"k\":\"c\",\"s\":1}"))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := webhook.ParseRecord(line)
		if err != nil {
			return
		}
		// What parses re-encodes to a line that parses to the same record.
		again := webhook.EncodeRecord(r)
		r2, err := webhook.ParseRecord(again[:len(again)-1])
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		if r2.Kind != r.Kind || r2.Seq != r.Seq || r2.ID != r.ID || string(r2.Data) != string(r.Data) {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, r2)
		}
	})
}

func FuzzParsePush(f *testing.F) {
	f.Add([]byte(`{"op":13,"d":{"plain_token":"Arq0D5A61EgUu4OxUvOp","event_ts":"1725442341"}}`))
	f.Add([]byte(`{"op":13,"d":{"plain_token":"p","event_ts":1725442341}}`))
	f.Add([]byte(`{"id":"GROUP_AT_MESSAGE_CREATE:yit7pd","op":0,"d":{"id":"ROBOT1.0_x","content":"hi"},"t":"GROUP_AT_MESSAGE_CREATE"}`))
	f.Add([]byte(`{"op":0,"d":null,"t":"X"}`))
	f.Add([]byte(`{"op":12,"d":0}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := webhook.ParsePush(body)
		if err != nil {
			return
		}
		switch p.Op {
		case webhook.OpDispatch:
			if p.Type == "" || len(p.Data) == 0 {
				t.Fatalf("op 0 accepted without t or d: %q", body)
			}
		case webhook.OpValidation:
			if p.PlainToken == "" || p.EventTS == "" {
				t.Fatalf("op 13 accepted without token or ts: %q", body)
			}
		}
	})
}

// FuzzParseRecordBody fuzzes the JSON of a line behind a valid checksum,
// which random lines almost never have.
func FuzzParseRecordBody(f *testing.F) {
	f.Add([]byte(`{"k":"a","s":2,"id":"X:1","t":"T","at":5,"d":"e30="}`))
	f.Add([]byte(`{"k":"h","v":1,"account":"a","next":1}`))
	f.Add([]byte(`{"k":"c","s":18446744073709551615}`))
	f.Add([]byte(`{"k":"a","s":1,"d":"bnVsbA=="}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		line := fmt.Appendf(nil, "%08x ", crc32.Checksum(js, crc32.MakeTable(crc32.Castagnoli)))
		line = append(line, js...)
		r, err := webhook.ParseRecord(line)
		if err != nil {
			return
		}
		again := webhook.EncodeRecord(r)
		if _, err := webhook.ParseRecord(again[:len(again)-1]); err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
	})
}
