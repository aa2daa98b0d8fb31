package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/qqgate/qqgate/internal/runner"
)

// unitFile is a systemd unit: section → key → values in order.
type unitFile map[string]map[string][]string

// parseUnit reads the systemd unit syntax: [Section] headers, Key=Value
// lines, # and ; comments, trailing-backslash continuations.
func parseUnit(t *testing.T, b []byte) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cont string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			require.True(t, strings.HasSuffix(line, "]"), "line %d: %q", n, line)
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "line %d: not Key=Value: %q", n, line)
			require.NotEmpty(t, section, "line %d: key outside a section", n)
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// one returns the single value of key in [Service].
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	v := u["Service"][key]
	require.Len(t, v, 1, "[Service] %s", key)
	return v[0]
}

func deployFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	require.NoError(t, err)
	return b
}

func TestDeployUnit(t *testing.T) {
	t.Parallel()
	u := parseUnit(t, deployFile(t, "qqgate.service"))
	require.Contains(t, u, "Unit")
	require.Contains(t, u, "Service")
	require.Contains(t, u, "Install")

	// The binary and the flags of the runner.
	exec := strings.Fields(u.one(t, "ExecStart"))
	require.NotEmpty(t, exec)
	assert.Equal(t, "/usr/local/bin/qqgate", exec[0])
	require.GreaterOrEqual(t, len(exec), 2)
	assert.Equal(t, "run", exec[1])
	flagValue := func(name string) string {
		i := slices.Index(exec, name)
		if assert.GreaterOrEqual(t, i, 0, "ExecStart lacks %s: %v", name, exec) && assert.Less(t, i+1, len(exec), name) {
			return exec[i+1]
		}
		return ""
	}
	assert.Equal(t, "/etc/qqgate/config.yaml", flagValue("--config"))
	assert.Equal(t, "127.0.0.1:9464", flagValue("--listen"))

	// Reload is SIGHUP to the main process; stop is SIGTERM, bounded.
	assert.Equal(t, []string{"/bin/kill", "-HUP", "$MAINPID"}, strings.Fields(u.one(t, "ExecReload")))
	assert.Equal(t, "SIGTERM", u.one(t, "KillSignal"))
	assert.Equal(t, "30", u.one(t, "TimeoutStopSec"))
	assert.Equal(t, "on-failure", u.one(t, "Restart"))
	// A configuration the runner cannot use is not retried in a loop.
	assert.Equal(t, strconv.Itoa(exitConfig), u.one(t, "RestartPreventExitStatus"))

	// A dedicated user, its state directory, the session dir writable and
	// the rest of the file system not.
	assert.Equal(t, "qqgate", u.one(t, "User"))
	assert.Contains(t, strings.Fields(u.one(t, "StateDirectory")), "qqgate")
	assert.Contains(t, u["Service"]["Environment"], "QQBOT_SESSION_DIR=/var/lib/qqgate/sessions")
	assert.Contains(t, strings.Fields(u.one(t, "ReadWritePaths")), "/var/lib/qqgate/sessions")
	assert.Equal(t, "yes", u.one(t, "NoNewPrivileges"))
	assert.Equal(t, "strict", u.one(t, "ProtectSystem"))
	assert.Equal(t, "yes", u.one(t, "PrivateTmp"))
	assert.Equal(t, "yes", u.one(t, "ProtectHome"))

	// No secret in the unit.
	for k, vs := range u["Service"] {
		for _, v := range vs {
			assert.NotContains(t, strings.ToUpper(v), "SECRET=", "%s=%s", k, v)
		}
	}
}

// TestDeployUnitAgreesWithConfig checks that the example config and the
// unit name the same session directory and ops address. That the config
// parses is the runner's test.
func TestDeployUnitAgreesWithConfig(t *testing.T) {
	t.Parallel()
	u := parseUnit(t, deployFile(t, "qqgate.service"))
	var cfg struct {
		SessionDir string `yaml:"session_dir"`
		Listen     string `yaml:"listen"`
	}
	require.NoError(t, yaml.Unmarshal(deployFile(t, "config.example.yaml"), &cfg))
	assert.Equal(t, "/var/lib/qqgate/sessions", cfg.SessionDir)
	assert.Contains(t, u["Service"]["Environment"], "QQBOT_SESSION_DIR="+cfg.SessionDir)
	assert.Contains(t, strings.Fields(u.one(t, "ExecStart")), cfg.Listen)
	assert.Equal(t, defaultListen, cfg.Listen, "qqgate status reads the default address")
}

// TestDeployUnitFlagsExist checks that `qqgate run` knows the flags the
// unit passes.
func TestDeployUnitFlagsExist(t *testing.T) {
	t.Parallel()
	e, out, errb := sessionEnv(cliNow, nil)
	run(context.Background(), []string{"run", "-h"}, e)
	help := out.String() + errb.String()
	require.Contains(t, help, "-app-id", "run -h prints the flags")
	for _, f := range []string{"-config", "-listen"} {
		assert.Contains(t, help, "  "+f+" ", "qqgate run lacks %s", f)
	}
}

// TestDeployClusterExample checks deploy/cluster: the config is a valid
// cluster configuration and the compose file runs three etcd members and
// three runners on it.
func TestDeployClusterExample(t *testing.T) {
	env := map[string]string{"SHOP_BOT_SECRET": "a", "SUPPORT_BOT_SECRET": "b", "NEWS_BOT_SECRET": "c"}
	cfg, err := runner.ParseConfig("config.yaml", deployFile(t, "cluster/config.yaml"), func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NotNil(t, cfg.Cluster)
	assert.Len(t, cfg.Cluster.Endpoints, 3)
	assert.Len(t, cfg.Accounts, 3)

	var compose struct {
		Services map[string]struct {
			Image    string   `yaml:"image"`
			Command  []string `yaml:"command"`
			Hostname string   `yaml:"hostname"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(deployFile(t, "cluster/docker-compose.yaml"), &compose))
	var etcds, runners int
	for name, s := range compose.Services {
		switch {
		case strings.HasPrefix(name, "etcd-"):
			etcds++
			assert.Contains(t, s.Image, "etcd")
		case strings.HasPrefix(name, "qqgate-"):
			runners++
			assert.Equal(t, []string{"run", "--config", "/etc/qqgate/config.yaml"}, s.Command)
			assert.Equal(t, name, s.Hostname)
		}
	}
	assert.Equal(t, 3, etcds)
	assert.Equal(t, 3, runners)
}
