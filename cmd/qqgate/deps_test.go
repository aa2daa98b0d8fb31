package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The production binary links no testing package: the demo's fake gateway
// (gatewaytest) takes its own TB interface, not testing.TB.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "../../gatewaytest").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	for _, pkg := range strings.Fields(string(out)) {
		require.NotEqual(t, "testing", pkg, "a dependency of qqgate or gatewaytest imports testing")
	}
}
