package openapi

// ConfigWithDefaults exposes the defaults New applies.
func ConfigWithDefaults(c Config) Config { return c.withDefaults() }

// TrackedInbound reports how many inbound ids the client remembers.
func (c *Client) TrackedInbound() int { return c.inbound.len() }
