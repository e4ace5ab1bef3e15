package index

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

func TestPayloadFilter(t *testing.T) {
	f := newPayloadFilter(50000)
	h := func(i int) []byte {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		s := sha256.Sum256(b[:])
		return s[:]
	}
	for i := range 50000 {
		f.add(h(i))
	}
	for i := range 50000 {
		if !f.mayContain(h(i)) {
			t.Fatalf("false negative for %d", i)
		}
	}
	fp := 0
	for i := 50000; i < 150000; i++ {
		if f.mayContain(h(i)) {
			fp++
		}
	}
	if rate := float64(fp) / 100000; rate > 0.01 {
		t.Errorf("false positive rate %.4f, want < 1%%", rate)
	}
	if f.full() {
		t.Error("filter full at its capacity")
	}
}
