package handler_test

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/handler"
)

func TestMetaValue(t *testing.T) {
	plain := []string{"", "C2C_MESSAGE_CREATE", "GROUP_AT_MESSAGE_CREATE:yit7pd0f", "ROBOT1.0_ab-c", "中文 id", `a"b`, `back\slash`}
	for _, s := range plain {
		assert.Equal(t, s, handler.MetaValue(s), "%q passed as it is", s)
	}
	quoted := map[string]string{
		"C2C:abc\x00def":        `"C2C:abc\x00def"`,
		"T\r\nX-Evil: 1":        `"T\r\nX-Evil: 1"`,
		"tab\there":             `"tab\there"`,
		"esc\x1b[2J":            `"esc\x1b[2J"`,
		"del\x7f":               `"del\x7f"`,
		"c1\u009b31m":           `"c1\u009b31m"`,
		"bad\xffutf8":           `"bad\xffutf8"`,
		`"starts with a quote"`: `"\"starts with a quote\""`,
	}
	for in, want := range quoted {
		got := handler.MetaValue(in)
		assert.Equal(t, want, got)
		back, err := strconv.Unquote(got)
		require.NoError(t, err, got)
		assert.Equal(t, in, back)
		assert.False(t, strings.ContainsAny(got, "\x00\r\n\x1b\x7f"), got)
	}

	// Over the bound: cut on a character boundary, quoted, then "...".
	long := strings.Repeat("a", handler.MaxMetaValue-1) + "é" + strings.Repeat("b", 1<<20)
	got := handler.MetaValue(long)
	require.True(t, strings.HasSuffix(got, `"...`), got[len(got)-10:])
	prefix, err := strconv.Unquote(strings.TrimSuffix(got, "..."))
	require.NoError(t, err)
	assert.True(t, utf8.ValidString(prefix))
	assert.True(t, strings.HasPrefix(long, prefix))
	assert.Equal(t, handler.MaxMetaValue-1, len(prefix), "the rune across the bound is left out whole")
	exact := strings.Repeat("x", handler.MaxMetaValue)
	assert.Equal(t, exact, handler.MetaValue(exact))
}
