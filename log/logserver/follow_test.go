package logserver

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
)

// TestFollowerFromMemory: the follower takes the entries this log
// appended from memory (admission's parse, signer and hash), leaving
// nothing behind once they are indexed, and indexes them exactly as it
// does when it reads them back from storage (a reindex), index
// checkpoints in between.
func TestFollowerFromMemory(t *testing.T) {
	tl := newTestLogIndexed(t)
	ctx := t.Context()
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tl.Admit(ctx, release(t, tl.operator, measurement(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	size := tl.size(t)
	if size < n {
		t.Fatalf("log size %d after %d appends", size, n)
	}
	if err := tl.waitIndexed(ctx, size-1); err != nil {
		t.Fatal(err)
	}
	// An index checkpoint the follower appends is handed over in memory
	// too: one may be on its way (appended after size was read) until
	// the next pass indexes it.
	var left, parsed int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tl.pendingMu.Lock()
		left, parsed = len(tl.appended), len(tl.parsed)
		tl.pendingMu.Unlock()
		if left == 0 && parsed == 0 || time.Now().After(deadline) {
			break
		}
	}
	if left != 0 || parsed != 0 {
		t.Errorf("after indexing: %d appended and %d parsed entries left in memory, want none", left, parsed)
	}
	if m := tl.fromMemory.Load(); m == 0 {
		t.Errorf("the follower took none of the %d entries this process appended from memory", n)
	}
	var before []any
	for i := range size {
		e, err := tl.idx.Get(ctx, i)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		before = append(before, e)
	}
	// The log may have appended index checkpoints since: a reindex
	// covers them too.
	if got, err := tl.Reindex(ctx); err != nil || got < size {
		t.Fatalf("Reindex = %d, %v; want at least %d", got, err, size)
	}
	releases := 0
	for i := range size {
		e, err := tl.idx.Get(ctx, i)
		if err != nil {
			t.Fatalf("entry %d after reindex: %v", i, err)
		}
		if !reflect.DeepEqual(any(e), before[i]) {
			t.Errorf("entry %d: indexed from memory as %+v, read back as %+v", i, before[i], e)
		}
		if e.Kind == "release" && e.SignerName != "" && e.EntrySHA256 != "" {
			releases++
		}
	}
	if releases != n {
		t.Errorf("%d releases indexed with a signer and hash, want %d", releases, n)
	}
}

// TestTesseraIdentityIsSHA256 holds Tessera to what admission takes from
// it: an entry's identity is the SHA-256 of its data, which is the entry
// hash the index records and /entry answers (a Tessera that changed it
// would make the index disagree with the tree's bytes).
func TestTesseraIdentityIsSHA256(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("x"), make([]byte, 70000)} {
		got := tessera.NewEntry(data).Identity()
		want := sha256.Sum256(data)
		if !bytes.Equal(got, want[:]) {
			t.Fatalf("identity of %d bytes = %x, SHA-256 = %x", len(data), got, want)
		}
	}
}
