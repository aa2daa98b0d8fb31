package ops

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/internal/testutil"
)

func webhookBot() AccountState {
	return AccountState{
		ID: "hook-bot", AppID: "1020306", Running: true, Transport: "webhook",
		Status: client.Status{AccountID: "hook-bot", State: client.StateConnected},
		Webhook: &WebhookStats{Accepted: 10, Duplicates: 2, Validations: 1, InboxDepth: 3, Fsyncs: 4, Synced: 10,
			Rejected: map[string]uint64{"bad_signature": 5, "stale_timestamp": 1}},
	}
}

func TestWebhookMetricsAndStatus(t *testing.T) {
	t.Parallel()
	src := &fakeSource{}
	_, hs, hc := newTestServer(t, src)
	src.set(shopBot(), webhookBot())
	mfs := scrape(t, hc, hs.URL)
	hook := []string{"account", "hook-bot"}
	for name, want := range map[string]float64{
		"qqgate_webhook_pushes_accepted_total":      10,
		"qqgate_webhook_pushes_duplicate_total":     2,
		"qqgate_webhook_validations_total":          1,
		"qqgate_webhook_inbox_depth":                3,
		"qqgate_webhook_inbox_fsyncs_total":         4,
		"qqgate_webhook_inbox_fsynced_pushes_total": 10,
	} {
		assert.Equal(t, want, value(t, mfs, name, hook...), name)
	}
	assert.Equal(t, 5.0, value(t, mfs, "qqgate_webhook_pushes_rejected_total", "account", "hook-bot", "reason", "bad_signature"))
	// A gateway account has no webhook series.
	for _, m := range mfs["qqgate_webhook_pushes_accepted_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			assert.NotEqual(t, "shop-bot", l.GetValue())
		}
	}

	code, _, b := testutil.GetWith(t, hc, hs.URL+"/status")
	require.Equal(t, http.StatusOK, code)
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	require.Len(t, raw, 2)
	assert.Equal(t, "websocket", raw[0]["transport"])
	assert.NotContains(t, raw[0], "webhook")
	assert.Equal(t, "webhook", raw[1]["transport"])
	assert.Equal(t, map[string]any{"pushes_accepted": 10.0, "pushes_duplicate": 2.0, "validations": 1.0, "inbox_depth": 3.0,
		"inbox_fsyncs": 4.0, "inbox_fsynced_pushes": 10.0, "pushes_rejected": map[string]any{"bad_signature": 5.0, "stale_timestamp": 1.0}}, raw[1]["webhook"])
}
