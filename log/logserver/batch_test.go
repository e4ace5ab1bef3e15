package logserver

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupBatches: items submitted while a run is in flight go together
// into the next, at most maxBatch a run, each answered with its own
// result, none run twice; a run that answers too few items answers the
// rest with errBatchShort.
func TestGroupBatches(t *testing.T) {
	var g group[int]
	var runs, biggest atomic.Int64
	seen := make([]atomic.Int32, 1000)
	run := func(items []int) []error {
		runs.Add(1)
		if int64(len(items)) > biggest.Load() {
			biggest.Store(int64(len(items)))
		}
		if len(items) > maxBatch {
			t.Errorf("a run of %d items", len(items))
		}
		time.Sleep(2 * time.Millisecond) // a database round trip
		errs := make([]error, len(items))
		for i, it := range items {
			seen[it].Add(1)
			if it%3 == 0 {
				errs[i] = errors.New("odd one")
			}
		}
		return errs
	}
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			err := g.do(i, run)
			if (i%3 == 0) != (err != nil) {
				t.Errorf("item %d answered %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("item %d run %d times", i, n)
		}
	}
	if runs.Load() >= 1000 || biggest.Load() < 2 {
		t.Errorf("%d runs for 1000 items, the largest of %d: not batched", runs.Load(), biggest.Load())
	}
	if err := g.do(1, func([]int) []error { return nil }); !errors.Is(err, errBatchShort) {
		t.Errorf("a run that answered nothing: %v, want errBatchShort", err)
	}
}
