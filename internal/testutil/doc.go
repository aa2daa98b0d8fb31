// Package testutil holds the helpers the tests of several qqgate packages
// share, so each is written once: a goroutine-safe buffer, the schema of a
// stdout event line, an HTTP GET helper, a clock set by hand and a
// subprocess runner that reads the child's stdout line by line.
//
// It is imported only by _test.go files; nothing in a production binary
// links it.
package testutil

import "time"

// Wait bounds every wait of this package: an HTTP request, the next line of
// a subprocess, the subprocess's exit.
const Wait = 20 * time.Second
