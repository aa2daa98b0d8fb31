package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/wire"
)

func TestDecodeFrame(t *testing.T) {
	f, err := wire.DecodeFrame([]byte(`{"op":0,"s":42,"t":"C2C_MESSAGE_CREATE","id":"C2C_MESSAGE_CREATE:abc","d":{"content":"123"}}`))
	require.NoError(t, err)
	assert.Equal(t, wire.OpDispatch, f.Op)
	assert.EqualValues(t, 42, f.S)
	assert.Equal(t, "C2C_MESSAGE_CREATE", f.T)
	assert.Equal(t, "C2C_MESSAGE_CREATE:abc", f.ID)
	assert.JSONEq(t, `{"content":"123"}`, string(f.D))

	for name, in := range map[string]string{
		"empty":        ``,
		"not json":     `hello`,
		"array":        `[1,2]`,
		"no op":        `{"d":1}`,
		"string op":    `{"op":"0"}`,
		"negative seq": `{"op":0,"s":-1}`,
		"float op":     `{"op":1.5}`,
		"truncated":    `{"op":0,"d":{"a":`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := wire.DecodeFrame([]byte(in))
			require.Error(t, err)
			assert.True(t, errors.Is(err, wire.ErrBadFrame), "%v", err)
		})
	}
	big := make([]byte, wire.MaxFrameBytes+1)
	_, err = wire.DecodeFrame(big)
	assert.ErrorIs(t, err, wire.ErrBadFrame)
}

func TestEncodeFrame(t *testing.T) {
	b, err := wire.EncodeFrame(wire.OpHeartbeat, json.RawMessage("null"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"op":1,"d":null}`, string(b))
	b, err = wire.EncodeFrame(wire.OpHeartbeat, json.RawMessage("251"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"op":1,"d":251}`, string(b))
	b, err = wire.EncodeFrame(wire.OpIdentify, wire.Identify{Token: "QQBot t", Intents: 1107300352, Shard: [2]int{0, 1}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"op":2,"d":{"token":"QQBot t","intents":1107300352,"shard":[0,1]}}`, string(b))
	b, err = wire.EncodeFrame(wire.OpReconnect, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"op":7}`, string(b))
	_, err = wire.EncodeFrame(wire.OpDispatch, func() {})
	assert.Error(t, err)
}

func TestSecondsAcceptsStringAndNumber(t *testing.T) {
	for in, want := range map[string]int64{
		`{"access_token":"a","expires_in":"7200"}`: 7200,
		`{"access_token":"a","expires_in":7200}`:   7200,
		`{"access_token":"a","expires_in":null}`:   0,
		`{"access_token":"a"}`:                     0,
	} {
		var tr wire.TokenResponse
		require.NoError(t, json.Unmarshal([]byte(in), &tr), in)
		assert.EqualValues(t, want, tr.ExpiresIn, in)
	}
	var tr wire.TokenResponse
	assert.Error(t, json.Unmarshal([]byte(`{"expires_in":"soon"}`), &tr))
	assert.Error(t, json.Unmarshal([]byte(`{"expires_in":true}`), &tr))
	b, err := json.Marshal(wire.TokenResponse{AccessToken: "a", ExpiresIn: 7200})
	require.NoError(t, err)
	assert.JSONEq(t, `{"access_token":"a","expires_in":"7200"}`, string(b))
}

func TestNames(t *testing.T) {
	assert.Equal(t, "4009 session timed out", wire.CloseSessionTimedOut.String())
	assert.Equal(t, "4905 internal error", wire.CloseCode(4905).String())
	assert.Equal(t, "4100", wire.CloseCode(4100).String())
	assert.Equal(t, "INVALID_SESSION", wire.OpInvalidSession.String())
	assert.Equal(t, "op(42)", wire.Opcode(42).String())
	assert.EqualValues(t, 13, wire.OpCallbackValidation, "webhook callback URL validation")
	assert.Equal(t, "CALLBACK_VALIDATION", wire.OpCallbackValidation.String())
}

// FuzzDecodeFrame: no input panics; a decoded frame re-encodes and decodes
// to the same frame.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"op":10,"d":{"heartbeat_interval":45000}}`,
		`{"op":0,"s":1,"t":"READY","d":{"version":1,"session_id":"x","user":{"id":"1","username":"b","bot":true},"shard":[0,1]}}`,
		`{"op":0,"s":2002,"t":"RESUMED","d":""}`,
		`{"op":9,"d":false}`, `{"op":11}`, `{"op":7}`, `{}`, `null`, `[]`, `{"op":1e3}`,
		`{"op":0,"s":18446744073709551615}`, `{"op":0,"s":18446744073709551616}`,
		"{\"op\":0,\"t\":\"\xff\"}", `{"op":0,"d":{"a":[[[[[[[[[[]]]]]]]]]]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := wire.DecodeFrame(b)
		if err != nil {
			if !errors.Is(err, wire.ErrBadFrame) {
				t.Fatalf("error does not wrap ErrBadFrame: %v", err)
			}
			return
		}
		out, err := json.Marshal(fr)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := wire.DecodeFrame(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if again.Op != fr.Op || again.S != fr.S || again.T != fr.T || again.ID != fr.ID {
			t.Fatalf("round trip changed the frame: %+v -> %+v", fr, again)
		}
	})
}

func TestDecodeAPIError(t *testing.T) {
	// The real body: message, code, err_code, trace_id.
	e := wire.DecodeAPIError(401, "hdr-trace", []byte(`{"message":"token not exist or expire","code":11244,"err_code":11244,"trace_id":"body-trace"}`))
	require.NotNil(t, e)
	assert.Equal(t, 401, e.Status)
	assert.Equal(t, 11244, e.EffectiveCode())
	assert.Equal(t, "body-trace", e.TraceID, "the body's trace id first")
	assert.True(t, e.TokenRejected())
	assert.False(t, errors.Is(e, wire.ErrRateLimited))
	e.Request = "GET https://api.sgroup.qq.com/gateway/bot"
	assert.Equal(t, "GET https://api.sgroup.qq.com/gateway/bot: HTTP 401, code 11244: token not exist or expire (trace id body-trace)", e.Error())

	// Only err_code: it is the effective code. The header gives the trace id.
	e = wire.DecodeAPIError(400, "  hdr-trace ", []byte(`{"message":"x","err_code":11242}`))
	require.NotNil(t, e)
	assert.Equal(t, 0, e.Code)
	assert.Equal(t, 11242, e.EffectiveCode())
	assert.Equal(t, "hdr-trace", e.TraceID)
	assert.True(t, e.TokenRejected(), "codes 11241-11245 refuse the token whatever the status")
	assert.Contains(t, e.Error(), "(trace id hdr-trace)")

	// Code wins over err_code.
	assert.Equal(t, 100001, wire.DecodeAPIError(200, "", []byte(`{"code":100001,"err_code":5}`)).EffectiveCode())

	// Success answers carry no error; a 200 with a code does.
	assert.Nil(t, wire.DecodeAPIError(200, "t", []byte(`{"access_token":"a","expires_in":"7200"}`)))
	assert.Nil(t, wire.DecodeAPIError(204, "t", nil))
	assert.Nil(t, wire.DecodeAPIError(200, "t", []byte(`garbage`)))
	e = wire.DecodeAPIError(200, "", []byte(`{"code":100016,"message":"invalid appid or secret"}`))
	require.NotNil(t, e)
	assert.Equal(t, "HTTP 200, code 100016: invalid appid or secret", e.Error())

	// Not JSON: the status alone.
	e = wire.DecodeAPIError(404, "", []byte(`<html><body>not found</body></html>`))
	require.NotNil(t, e)
	assert.Equal(t, "HTTP 404", e.Error())
	assert.False(t, e.TokenRejected())

	// Rate limits.
	for _, e := range []*wire.APIError{
		wire.DecodeAPIError(429, "", nil),
		wire.DecodeAPIError(200, "", []byte(`{"code":100001}`)),
		wire.DecodeAPIError(200, "", []byte(`{"err_code":100001}`)),
		wire.DecodeAPIError(500, "", []byte(`{"message":"Too Many Requests"}`)),
	} {
		assert.ErrorIs(t, e, wire.ErrRateLimited, e.Error())
	}
}

// A hostile server cannot forge terminal output or log lines through the
// message or the trace id, nor flood them.
func TestAPIErrorCleansItsText(t *testing.T) {
	e := wire.DecodeAPIError(500, "", []byte(`{"message":"a\u001b[2J\nFAKE\u202e","trace_id":"t\r\nx","code":1}`))
	require.NotNil(t, e)
	msg := e.Error()
	assert.NotContains(t, msg, "\x1b")
	assert.NotContains(t, msg, "\n")
	assert.NotContains(t, msg, "\r")
	assert.NotContains(t, msg, "\u202e")
	assert.Contains(t, msg, "FAKE")
	long := wire.APIError{Status: 500, Message: strings.Repeat("x", 10000)}
	assert.Less(t, len(long.Error()), 400)
	assert.Contains(t, long.Error(), "…")
}

func TestAPIErrorIsTheFakesBody(t *testing.T) {
	b, err := json.Marshal(wire.APIError{Status: 401, Request: "GET x", Message: "m", Code: 11244, ErrCode: 11244, TraceID: "t",
		AuditID: "a", RetryAfter: time.Second})
	require.NoError(t, err)
	assert.JSONEq(t, `{"message":"m","code":11244,"err_code":11244,"trace_id":"t"}`, string(b),
		"status, request, audit id and Retry-After are not part of the body")
}
