package testutil

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "%d\n", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 800, strings.Count(b.String(), "\n"))
}

func TestParseLines(t *testing.T) {
	got := ParseLines(t, `{"account":"a","seq":2,"type":"READY","id":"","data":{"x":1}}`+"\n"+
		`{"account":"b","seq":3,"type":"C2C_MESSAGE_CREATE","id":"m","data":null}`+"\n")
	require.Len(t, got, 2)
	assert.Equal(t, Line{Account: "a", Seq: 2, Type: "READY", Data: []byte(`{"x":1}`)}, got[0])
	assert.Equal(t, "m", got[1].ID)
}

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("short and stout"))
	}))
	defer srv.Close()
	code, body := Get(t, srv.URL+"/pot")
	assert.Equal(t, http.StatusTeapot, code)
	assert.Equal(t, "short and stout", body)
	code, hdr, b := GetWith(t, srv.Client(), srv.URL+"/kettle")
	assert.Equal(t, http.StatusTeapot, code)
	assert.Equal(t, "/kettle", hdr.Get("X-Path"))
	assert.Equal(t, "short and stout", string(b))
}

func TestProcLinesInOrderThenRest(t *testing.T) {
	// More lines than any pipe buffer holds, none read until the end: the
	// child never blocks on its stdout, and nothing is lost.
	p := Spawn(t, exec.Command("sh", "-c", `i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done; echo oops >&2; exit 3`), Text)
	assert.Equal(t, 3, ExitCode(p.Wait()))
	assert.Equal(t, "line 0", p.Next())
	assert.Equal(t, "line 1", p.Next())
	rest := p.Rest()
	require.Len(t, rest, 19998)
	assert.Equal(t, "line 19999", rest[len(rest)-1])
	assert.Equal(t, "oops\n", p.Stderr.String())
}

func TestProcParsesLines(t *testing.T) {
	p := Spawn(t, exec.Command("sh", "-c", `echo '{"account":"a","seq":7,"type":"T","id":"i","data":{}}'; read x`), ParseLine)
	l := p.Next()
	assert.Equal(t, Line{Account: "a", Seq: 7, Type: "T", ID: "i", Data: []byte(`{}`)}, l)
	// The cleanup kills the child blocked in read.
}

func TestProcStartError(t *testing.T) {
	_, err := Start(t, exec.Command("/nonexistent/qqgate-testutil"), Text)
	require.Error(t, err)
}

func TestExitCode(t *testing.T) {
	assert.Equal(t, 0, ExitCode(nil))
	assert.Equal(t, -1, ExitCode(assert.AnError))
	assert.Equal(t, 2, ExitCode(exec.Command("sh", "-c", "exit 2").Run()))
}

func TestClock(t *testing.T) {
	c := NewClock()
	t0 := c.Now()
	assert.Equal(t, int64(1_800_000_000), t0.Unix())
	c.Set(t0.Add(time.Hour))
	assert.Equal(t, time.Hour, c.Now().Sub(t0))
}
