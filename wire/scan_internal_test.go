package wire

import (
	"encoding/binary"
	"testing"
)

// special8 never misses a special byte, wherever it sits among plain ones
// (and among other special ones).
func TestSpecial8(t *testing.T) {
	for _, fill := range []byte{'a', 0x7f, 0xe4, '"', 0x1f} {
		for pos := range 8 {
			for c := range 256 {
				var w [8]byte
				for k := range w {
					w[k] = fill
				}
				w[pos] = byte(c)
				x := binary.LittleEndian.Uint64(w[:])
				for _, also := range []uint64{0, highBits} {
					want := false
					for _, b := range w {
						want = want || !strSafe[b] || (also != 0 && b >= 0x80)
					}
					if got := special8(x, also); got != want {
						t.Fatalf("special8(%q, %#x) = %v, want %v", w, also, got, want)
					}
				}
			}
		}
	}
}
