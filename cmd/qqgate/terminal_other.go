//go:build !linux

package main

import "io"

// isTerminal reports whether w is a terminal; where the terminal ioctl is
// not at hand, any character device counts as one.
func isTerminal(w io.Writer) bool { return isCharDevice(w) }
