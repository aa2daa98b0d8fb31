package sessionstore

import (
	"context"
	"testing"
)

// BenchmarkSaveThrottled measures Save through the throttle on the real
// clock: nearly every call only replaces the pending state.
func BenchmarkSaveThrottled(b *testing.B) {
	s, err := NewFileStore(FileStoreConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	r := rec("bench", 0)
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		r.LastSeq = n
		n++
		if err := s.Save(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
}

// BenchmarkDurableWrite measures one SaveNow: encode, temp file, fsync,
// rename, fsync of the directory.
func BenchmarkDurableWrite(b *testing.B) {
	s, err := NewFileStore(FileStoreConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	r := rec("bench", 0)
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		r.LastSeq = n
		n++
		if err := s.SaveNow(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
