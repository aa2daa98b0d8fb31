//go:build linux

package main

import "syscall"

// hideProcess makes the process non-dumpable (prctl PR_SET_DUMPABLE 0): its
// /proc/<pid>/environ, mem and maps are then closed to other processes of
// the same user, such as the exec handlers it starts, and it leaves no core
// dump. The runner's environment holds the secrets it hides from those
// handlers (QQBOT_CLIENT_SECRET, every secret_env), and its memory holds
// the secrets and access tokens. The handlers themselves are dumpable again
// once they exec.
func hideProcess() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); errno != 0 {
		return errno
	}
	return nil
}
