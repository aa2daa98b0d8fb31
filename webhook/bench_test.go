package webhook_test

import (
	"bytes"
	"context"
	"fmt"
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
	var n atomic.Uint64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Appendf(nil, `{"id":"C2C_MESSAGE_CREATE:%d","op":0,"d":{"id":"ROBOT1.0_%d","content":"hello"},"t":"C2C_MESSAGE_CREATE"}`, i, i)
			ts := strconv.FormatInt(1_800_000_000, 10)
			req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
			req.Header.Set(webhook.HeaderTimestamp, ts)
			req.Header.Set(webhook.HeaderSignature, webhook.Sign(key, ts, body))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
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
