package sessionstore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Subprocess roles: the test binary re-executes itself with
// SESSIONSTORE_TEST_ROLE set to act as another process.
const (
	envRole    = "SESSIONSTORE_TEST_ROLE"
	envDir     = "SESSIONSTORE_TEST_DIR"
	envAccount = "SESSIONSTORE_TEST_ACCOUNT"
	envBase    = "SESSIONSTORE_TEST_BASE"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "":
		goleak.VerifyTestMain(m)
	case "lock":
		os.Exit(roleLock())
	case "writer":
		os.Exit(roleWriter())
	default:
		fmt.Fprintln(os.Stderr, "unknown role")
		os.Exit(2)
	}
}

// roleLock holds the account's lock until stdin closes.
func roleLock() int {
	s, err := NewFileStore(FileStoreConfig{Dir: os.Getenv(envDir)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	u, err := s.Lock(os.Getenv(envAccount))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = u.Unlock()
	return 0
}

// roleWriter writes the record with SaveNow in a tight loop, printing the
// seq of each completed (durable) write, until killed.
func roleWriter() int {
	s, err := NewFileStore(FileStoreConfig{Dir: os.Getenv(envDir)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	base, _ := strconv.ParseUint(os.Getenv(envBase), 10, 64)
	out := bufio.NewWriter(os.Stdout)
	for seq := base; ; seq++ {
		r := Record{
			AccountID: os.Getenv(envAccount), SessionID: "writer-session",
			LastSeq: seq, HasSeq: true, AppID: "app",
			// Vary the size so that a torn write would show.
			Extra: map[string]json.RawMessage{"pad": json.RawMessage(`"` + strings.Repeat("x", int(seq%300)) + `"`)},
		}
		if err := s.SaveNow(context.Background(), r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(out, seq)
		out.Flush()
	}
}
