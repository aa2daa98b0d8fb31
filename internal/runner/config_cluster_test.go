package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfigClusterBlock(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "etcd-password")
	require.NoError(t, os.WriteFile(pw, []byte("hunter2\n"), 0o600))
	src := `cluster:
  name: node-a
  etcd:
    endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]
    prefix: /bots
    lease_ttl: 3s
    username: qqgate
    password_file: ` + pw + `
    tls: {ca_file: /etc/etcd/ca.pem, cert_file: /etc/etcd/c.pem, key_file: /etc/etcd/k.pem}
accounts:
  - {id: a, app_id: "1", secret: s}
`
	cfg, err := ParseConfig("c.yaml", []byte(src), testEnv)
	require.NoError(t, err)
	c := cfg.Cluster
	require.NotNil(t, c)
	assert.Equal(t, "node-a", c.Name)
	assert.Equal(t, []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}, c.Endpoints)
	assert.Equal(t, "/bots", c.Prefix)
	assert.Equal(t, 3*time.Second, c.LeaseTTL)
	assert.Equal(t, "qqgate", c.Username)
	assert.Equal(t, "hunter2", c.Password)
	assert.Equal(t, "/etc/etcd/ca.pem", c.CAFile)
	assert.Equal(t, "/etc/etcd/k.pem", c.KeyFile)

	cfg, err = ParseConfig("c.yaml", []byte("accounts:\n  - {id: a, app_id: \"1\", secret: s}\n"), testEnv)
	require.NoError(t, err)
	assert.Nil(t, cfg.Cluster, "without cluster: nothing changes")

	for src, want := range map[string]string{
		"cluster: {etcd: {endpoints: []}}\n":                            "c.yaml:1: cluster: etcd.endpoints must list at least one endpoint",
		"cluster: {}\n":                                                 "cluster.etcd: is required",
		"cluster: {etcd: {endpoints: [x], lease_ttl: 1s}}\n":            "lease_ttl must be at least 2s",
		"cluster: {etcd: {endpoints: [x], lease_ttl: soon}}\n":          "cluster.etcd.lease_ttl: must be a duration",
		"cluster: {etcd: {endpoints: [x], ttl: 5s}}\n":                  "cluster.etcd.ttl: unknown key",
		"cluster: {etcd: {endpoints: [x], password_file: /nonexist}}\n": "cannot read the password file",
		"cluster: {etcd: {endpoints: [x], tls: {cert_file: c}}}\n":      "key_file go together",
	} {
		_, err := ParseConfig("c.yaml", []byte(src+"accounts:\n  - {id: a, app_id: \"1\", secret: s}\n"), testEnv)
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), want, src)
	}
}
