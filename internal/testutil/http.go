package testutil

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// httpClient keeps no idle connection (so no transport goroutine outlives
// a test for goleak to find) and gives up after Wait.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: Wait}

// Get fetches url and returns the status code and the body, failing the
// test when the request fails.
func Get(tb testing.TB, url string) (int, string) {
	tb.Helper()
	code, _, body := GetWith(tb, httpClient, url)
	return code, string(body)
}

// GetWith is Get through hc (an httptest server's client, say), returning
// the headers too.
func GetWith(tb testing.TB, hc *http.Client, url string) (int, http.Header, []byte) {
	tb.Helper()
	resp, err := hc.Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, body
}
