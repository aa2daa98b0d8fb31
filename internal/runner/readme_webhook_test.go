package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's webhook config is a valid file whose listener may be
// served as it stands.
func TestREADMEWebhookConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "```yaml\n# qqgate.yaml\n")
	require.True(t, ok, "the README has the webhook config")
	text, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	secret := filepath.Join(t.TempDir(), "support")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	text = strings.ReplaceAll(text, "/run/secrets/support", secret)
	cfg, err := ParseConfig("README.md", []byte(text), func(name string) string {
		if name == "SHOP_BOT_SECRET" {
			return "shop-secret"
		}
		return ""
	})
	require.NoError(t, err)
	require.Len(t, cfg.Accounts, 2)
	for _, a := range cfg.Accounts {
		assert.True(t, a.IsWebhook(), a.ID)
	}
	assert.Equal(t, "/qq/callback", cfg.Webhook.Path)
	require.NoError(t, cfg.Webhook.Check())
}
