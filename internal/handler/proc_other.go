//go:build !unix

package handler

import "os/exec"

// setProcessGroup keeps exec.CommandContext's default: the cancellation
// kills the process alone.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills cmd's process, if it was started.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
