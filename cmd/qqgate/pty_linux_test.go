package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/testutil"
)

// openPTY opens a pseudo-terminal: the controlling side the test reads and
// the terminal side a child writes. It skips the test when none can be
// opened.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("no pseudo-terminal: unlock: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("no pseudo-terminal: number: %v", e)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	return ptmx, pts
}

// runOnTerminal runs the command with its stdout on a pseudo-terminal (so
// the CLI takes it for a terminal) and returns what it printed there and
// its stderr. It skips the test when no pseudo-terminal can be opened.
func runOnTerminal(t *testing.T, cmd *exec.Cmd) (stdout []byte, stderr string, err error) {
	t.Helper()
	ptmx, pts := openPTY(t)
	var errb testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = pts, &errb
	err = cmd.Start()
	pts.Close() // the child holds its own copy
	require.NoError(t, err)
	// Reads end with EIO once the child, the last holder of the terminal,
	// exited.
	out, _ := io.ReadAll(ptmx)
	err = cmd.Wait()
	return out, errb.String(), err
}

// runStderrOnTerminal is runOnTerminal with stderr on the terminal and
// stdout collected.
func runStderrOnTerminal(t *testing.T, cmd *exec.Cmd) (stdout string, stderr []byte, err error) {
	t.Helper()
	ptmx, pts := openPTY(t)
	var outb testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &outb, pts
	err = cmd.Start()
	pts.Close()
	require.NoError(t, err)
	errOut, _ := io.ReadAll(ptmx)
	err = cmd.Wait()
	return outb.String(), errOut, err
}
