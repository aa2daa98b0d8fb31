package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/webhook"
)

// BenchmarkVerifiedPushes measures signed pushes per second through the
// listener (HTTP over loopback, signature check, inbox write and fsync)
// to a no-op handler, with parallel senders; it reports how many pushes
// one fsync covered.
func BenchmarkVerifiedPushes(b *testing.B) {
	bot := newBot(b, b.TempDir(), testApp, testSecret, event.HandlerFunc(func(context.Context, event.Event) error { return nil }),
		func(c *webhook.BotConfig) { c.Inbox.MaxPending = 1 << 20 })
	run(b, bot)
	srv := httptest.NewServer(bot)
	defer srv.Close()
	key, _ := webhook.KeyFromSecret(testSecret)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	// Signed before the clock starts: the platform's cost is not ours.
	type push struct {
		body []byte
		sig  string
	}
	ts := strconv.FormatInt(1_800_000_000, 10)
	pushes := make([]push, b.N)
	for i := range pushes {
		body := fmt.Appendf(nil, `{"id":"C2C_MESSAGE_CREATE:%d","op":0,"d":{"id":"ROBOT1.0_%d","content":"hello"},"t":"C2C_MESSAGE_CREATE"}`, i, i)
		pushes[i] = push{body, webhook.Sign(key, ts, body)}
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := pushes[n.Add(1)-1]
			req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(p.body))
			req.Header.Set(webhook.HeaderTimestamp, ts)
			req.Header.Set(webhook.HeaderSignature, p.sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	st := bot.Stats().Inbox
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
	if st.Syncs > 0 {
		b.ReportMetric(float64(st.Synced)/float64(st.Syncs), "pushes/fsync")
	}
}

// BenchmarkInboxAccept measures durable accepts alone (write and fsync,
// shared by concurrent callers), without HTTP or signatures.
func BenchmarkInboxAccept(b *testing.B) {
	in, err := webhook.OpenInbox(webhook.InboxConfig{Dir: b.TempDir(), AccountID: "a", MaxPending: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	var n atomic.Uint64
	data := []byte(`{"id":"ROBOT1.0_x","content":"hello"}`)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := in.Accept("C2C_MESSAGE_CREATE:"+strconv.FormatUint(n.Add(1), 10), "C2C_MESSAGE_CREATE", data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := in.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
	b.ReportMetric(float64(st.Synced)/float64(st.Syncs), "pushes/fsync")
}
