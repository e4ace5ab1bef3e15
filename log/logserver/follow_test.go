package logserver

import (
	"reflect"
	"sync"
	"testing"
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
	tl.pendingMu.Lock()
	left, parsed := len(tl.appended), len(tl.parsed)
	tl.pendingMu.Unlock()
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
