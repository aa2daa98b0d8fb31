package sessionstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/qqgate/qqgate/sessionstore"
)

// The main path of a gateway client: lock the account, try to resume,
// save as events are handled, write at once on READY and at shutdown.
func Example() {
	dir, _ := os.MkdirTemp("", "sessions")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer st.Close() // writes any pending save

	unlock, err := st.Lock("main")
	var locked *sessionstore.LockedError
	if errors.As(err, &locked) {
		fmt.Println("another process runs this account:", locked.PID)
		return
	}
	defer unlock.Unlock()

	rec, err := st.Load(ctx, "main", "102005678")
	if errors.Is(err, sessionstore.ErrNoSession) {
		fmt.Println("no session: IDENTIFY")
		// ... READY arrives:
		rec = sessionstore.Record{AccountID: "main", AppID: "102005678", SessionID: "abc", HasSeq: true}
		_ = st.SaveNow(ctx, rec)
	}
	for seq := uint64(1); seq <= 100; seq++ { // events handled
		rec.LastSeq = seq
		_ = st.Save(ctx, rec) // throttled to one write a second
	}
	_ = st.Flush(ctx)

	rec, err = st.Load(ctx, "main", "102005678")
	fmt.Println(err, rec.SessionID, rec.LastSeq, rec.Resumable(rec.SavedAt, "102005678"))
	// Output:
	// no session: IDENTIFY
	// <nil> abc 100 true
}
