//go:build !linux

package main

// hideProcess does nothing on this platform: there is no portable way to
// close a process's memory and environment to its own user.
func hideProcess() error { return nil }
