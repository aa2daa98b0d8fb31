// Package fsutil holds small file-system helpers shared by the session
// store and the runner.
package fsutil

import "io/fs"

// DescribeMode says what a file that is not a regular file is, as the
// end of a sentence naming it: "is a named pipe", "is a directory".
func DescribeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "is a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "is a named pipe"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	case m&fs.ModeDevice != 0:
		return "is a device"
	case m.IsDir():
		return "is a directory"
	}
	return "is not a regular file"
}
