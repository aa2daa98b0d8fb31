package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On a terminal the log reads like a person's log; --log-format json
// keeps it JSON there too.
func TestDemoLogsOnATerminal(t *testing.T) {
	bin := qqgateBinary(t)
	t.Run("auto", func(t *testing.T) {
		_, stderr, err := runStderrOnTerminal(t, exec.Command(bin, "demo", "--timeout", procWait.String(), "--log-level", "info"))
		require.NoError(t, err, "stderr:\n%s", stderr)
		text := strings.ReplaceAll(string(stderr), "\r\n", "\n")
		assert.NotContains(t, text, `{"level"`)
		assert.Contains(t, text, "IDENTIFY sent")
		assert.Regexp(t, `(?m)^\S+ \x1b\[\d+mINF\x1b\[0m `, text, "coloured levels on a terminal")
	})
	t.Run("json", func(t *testing.T) {
		_, stderr, err := runStderrOnTerminal(t, exec.Command(bin, "demo", "--timeout", procWait.String(), "--log-format", "json"))
		require.NoError(t, err, "stderr:\n%s", stderr)
		var logs []string
		for _, l := range strings.Split(strings.ReplaceAll(string(stderr), "\r\n", "\n"), "\n") {
			if l != "" && !strings.HasPrefix(l, "demo: ") { // the demo's narration is not a log
				logs = append(logs, l)
			}
		}
		assertJSONLogs(t, strings.Join(logs, "\n"))
	})
}
