package client

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckRedirect(t *testing.T) {
	t.Parallel()
	req := func(raw string) *http.Request {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		return &http.Request{URL: u}
	}
	cases := []struct {
		from, to string
		ok       bool
	}{
		{"https://bots.qq.com/app/getAppAccessToken", "https://bots.qq.com/app/v2/token", true},
		{"https://bots.qq.com/a", "https://BOTS.qq.com:443/b", true},
		{"http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b", true},
		{"http://127.0.0.1:8080/ws", "ws://127.0.0.1:8080/ws2", true}, // an upgrade is an http request
		{"https://bots.qq.com/a", "https://evil.example/a", false},
		{"https://bots.qq.com/a", "https://bots.qq.com:8443/a", false},
		{"https://bots.qq.com/a", "http://bots.qq.com/a", false},
		{"https://api.sgroup.qq.com/websocket", "wss://api.sgroup.qq.com.evil.example/websocket", false},
		{"http://127.0.0.1:8080/a", "http://localhost:8080/a", false},
		{"http://127.0.0.1:8080/a", "http://127.0.0.1:8081/a", false},
		// Same origin, but plain http off loopback (a source built by hand
		// on such a URL) is refused all the same.
		{"http://bots.example/a", "http://bots.example/b", false},
	}
	for _, tc := range cases {
		err := checkRedirect(req(tc.to), []*http.Request{req(tc.from)})
		if tc.ok {
			assert.NoError(t, err, "%s -> %s", tc.from, tc.to)
			continue
		}
		require.Error(t, err, "%s -> %s", tc.from, tc.to)
		assert.True(t, errors.Is(err, ErrRedirectRefused))
		assert.Contains(t, err.Error(), tc.from)
	}
}

func TestRedactURLsIn(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`Get "http://h/p?token=abc": refused`:                   `Get "http://h/p?redacted": refused`,
		`dial wss://u:pw@h/ws#frag now`:                         `dial wss://u:xxxxx@h/ws now`,
		`no url here`:                                           `no url here`,
		`https://a/x?q=1 and http://b/y`:                        `https://a/x?redacted and http://b/y`,
		`Post "https://bots.qq.com/app/getAppAccessToken": EOF`: `Post "https://bots.qq.com/app/getAppAccessToken": EOF`,
	} {
		assert.Equal(t, want, redactURLsIn(in), in)
	}
}
