package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "qqgate-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(leakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// qqgateBinary builds the real qqgate binary once per test run.
func qqgateBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "qqgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: time.Now}
	require.Equal(t, 0, run(context.Background(), []string{"version"}, e))
	assert.Regexp(t, `^qqgate \S+ \(commit \S+, go1\.\d+`, out.String())
	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"help"}, e))
	for _, cmd := range []string{"run", "demo", "session", "status", "version"} {
		assert.Contains(t, out.String(), "  "+cmd+" ")
	}
	assert.Equal(t, 2, run(context.Background(), []string{"frobnicate"}, e))
	assert.Contains(t, errb.String(), `unknown command "frobnicate"`)
	assert.Equal(t, 2, run(context.Background(), nil, e))
}
