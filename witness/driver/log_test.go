package driver

import (
	"encoding/base64"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestLog checks what a witness relies on: checkpoints open under the
// log's key and name its root, consistency proofs verify between every
// pair of sizes (and fail for another root), and a fork is a split view
// (same key, same prefix, different roots after it).
func TestLog(t *testing.T) {
	l, err := NewLog("example.com/driver")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(l.VKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := map[uint64]tlog.Hash{0: l.Root(0)}
	for size := uint64(1); size <= 9; size++ {
		if got := l.Append(1); got != size {
			t.Fatalf("Append = %d, want %d", got, size)
		}
		roots[size] = l.Root(size)
		n, err := note.Open(l.Checkpoint(size), note.VerifierList(v))
		if err != nil {
			t.Fatalf("checkpoint %d does not open under the log's key: %v", size, err)
		}
		root := roots[size]
		want := fmt.Sprintf("%s\n%d\n%s\n", l.Origin, size, base64.StdEncoding.EncodeToString(root[:]))
		if n.Text != want {
			t.Errorf("checkpoint %d is %q, want %q", size, n.Text, want)
		}
	}
	for old := uint64(1); old <= 9; old++ {
		for size := old + 1; size <= 9; size++ {
			var p tlog.TreeProof
			for _, h := range l.Proof(old, size) {
				p = append(p, h)
			}
			if err := tlog.CheckTree(p, int64(size), roots[size], int64(old), roots[old]); err != nil {
				t.Errorf("Proof(%d, %d) does not verify: %v", old, size, err)
			}
			if err := tlog.CheckTree(p, int64(size), roots[size], int64(old), roots[old^1]); err == nil && roots[old] != roots[old^1] {
				t.Errorf("Proof(%d, %d) verifies against another old root", old, size)
			}
		}
	}
	f := l.Fork(4)
	if f.Root(4) != l.Root(4) {
		t.Error("a fork at 4 has a different root at 4")
	}
	f.Append(5)
	if f.Root(9) == l.Root(9) {
		t.Error("a fork's later leaves are the original's: not a split view")
	}
	if _, err := note.Open(f.Checkpoint(9), note.VerifierList(v)); err != nil {
		t.Errorf("a fork's checkpoint does not open under the same key: %v", err)
	}
}

func TestFreeAddr(t *testing.T) {
	a, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if a == "" || a[:10] != "127.0.0.1:" {
		t.Errorf("FreeAddr = %q, want 127.0.0.1:port", a)
	}
}
