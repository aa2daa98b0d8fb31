package fsutil

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDescribeMode(t *testing.T) {
	assert.Equal(t, "is a named pipe", DescribeMode(fs.ModeNamedPipe))
	assert.Equal(t, "is a symbolic link", DescribeMode(fs.ModeSymlink))
	assert.Equal(t, "is a socket", DescribeMode(fs.ModeSocket))
	assert.Equal(t, "is a device", DescribeMode(fs.ModeDevice|fs.ModeCharDevice))
	assert.Equal(t, "is a directory", DescribeMode(fs.ModeDir))
	assert.Equal(t, "is not a regular file", DescribeMode(fs.ModeIrregular))
}
