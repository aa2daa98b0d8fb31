package openapi_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/openapi"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := openapi.ConfigWithDefaults(openapi.Config{AppID: " 123 ", Tokens: &testTokens{}})
	assert.Equal(t, "123", c.AppID)
	assert.Equal(t, "https://api.sgroup.qq.com", c.BaseURL)
	assert.Equal(t, 10*time.Second, c.Timeout)
	assert.GreaterOrEqual(t, c.Timeout, openapi.MinAdvisedTimeout)
	assert.Equal(t, 3, c.MaxRetries)
	assert.Equal(t, 10000, c.SeqCacheSize)
	assert.NotNil(t, c.HTTPClient)
	assert.NotNil(t, c.Clock)
	assert.NotEmpty(t, c.UserAgent)
	assert.Equal(t, openapi.Limits{
		C2C:     openapi.Limit{Window: 60 * time.Minute, Replies: 5},
		Group:   openapi.Limit{Window: 5 * time.Minute, Replies: 5},
		Channel: openapi.Limit{Window: 5 * time.Minute, Replies: -1},
		DM:      openapi.Limit{Window: 5 * time.Minute, Replies: -1},
	}, c.Limits)
	assert.Equal(t, openapi.DefaultLimits(), c.Limits)

	b := c.Backoff()
	first := b.NextBackOff()
	assert.GreaterOrEqual(t, first, 250*time.Millisecond)
	assert.LessOrEqual(t, first, 750*time.Millisecond)

	partial := openapi.ConfigWithDefaults(openapi.Config{BaseURL: "https://sandbox.api.sgroup.qq.com/",
		Limits: openapi.Limits{C2C: openapi.Limit{Window: time.Minute}}, MaxRetries: -1})
	assert.Equal(t, "https://sandbox.api.sgroup.qq.com", partial.BaseURL)
	assert.Equal(t, openapi.Limit{Window: time.Minute, Replies: 5}, partial.Limits.C2C)
	assert.Equal(t, 0, partial.MaxRetries)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := openapi.Config{AppID: "1", Tokens: &testTokens{}}
	require.NoError(t, ok.Validate())
	cases := map[string]func(*openapi.Config){
		"no app id":          func(c *openapi.Config) { c.AppID = " " },
		"app id with a line": func(c *openapi.Config) { c.AppID = "1\r\nX-Evil: 1" },
		"no tokens":          func(c *openapi.Config) { c.Tokens = nil },
		"http off loopback":  func(c *openapi.Config) { c.BaseURL = "http://api.sgroup.qq.com" },
		"ftp":                func(c *openapi.Config) { c.BaseURL = "ftp://127.0.0.1" },
		"no host":            func(c *openapi.Config) { c.BaseURL = "https://" },
		"credentials":        func(c *openapi.Config) { c.BaseURL = "https://u:p@api.sgroup.qq.com" },
		"query":              func(c *openapi.Config) { c.BaseURL = "https://api.sgroup.qq.com?x=1" },
		"negative timeout":   func(c *openapi.Config) { c.Timeout = -time.Second },
		"negative cache":     func(c *openapi.Config) { c.SeqCacheSize = -1 },
		"user agent newline": func(c *openapi.Config) { c.UserAgent = "a\nb" },
	}
	for name, mutate := range cases {
		c := ok
		mutate(&c)
		require.Error(t, c.Validate(), name)
		_, err := openapi.New(c)
		require.Error(t, err, name)
	}
	var nilCfg *openapi.Config
	require.Error(t, nilCfg.Validate())

	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost", "http://[::1]:9", "https://example.com/base/"} {
		c := ok
		c.BaseURL = u
		require.NoError(t, c.Validate(), u)
	}
}

// New copies the config; the caller's value is never changed.
func TestNewDoesNotMutate(t *testing.T) {
	t.Parallel()
	cfg := openapi.Config{AppID: "1", Tokens: &testTokens{}}
	before := cfg
	_, err := openapi.New(cfg)
	require.NoError(t, err)
	assert.Equal(t, before.BaseURL, cfg.BaseURL)
	assert.Nil(t, cfg.HTTPClient)
}
