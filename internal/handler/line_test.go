package handler_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/internal/testutil"
)

// TestLineMatchesSharedSchema ties the tests' copy of the line schema
// (testutil.Line) to the handler's encoding: every field the handler writes
// has a field there, and re-encoding gives the same line back.
func TestLineMatchesSharedSchema(t *testing.T) {
	ev := testEvent(7)
	b, err := handler.Line(ev)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var l testutil.Line
	require.NoError(t, dec.Decode(&l), "a field testutil.Line lacks: %s", b)
	assert.Equal(t, testutil.Line{Account: ev.AccountID, Seq: ev.Seq, Type: ev.Type, ID: ev.ID, Data: ev.Data}, l)
	again, err := json.Marshal(l)
	require.NoError(t, err)
	assert.JSONEq(t, string(b), string(again), "a field the handler does not write")
}
