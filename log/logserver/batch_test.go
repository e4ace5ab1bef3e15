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
	run := func(items []int) ([]error, error) {
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
		return errs, nil
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
	if err := g.do(1, func([]int) ([]error, error) { return nil, nil }); !errors.Is(err, errBatchShort) {
		t.Errorf("a run that answered nothing: %v, want errBatchShort", err)
	}
}

// TestGroupOutageFailsFast: a run that fails as a whole (the database
// did not answer) answers its items and every item queued behind it
// with its error at once, without running them: under an outage callers
// wait one run's timeout, not one per batch ahead of them.
func TestGroupOutageFailsFast(t *testing.T) {
	var g group[int]
	down := errors.New("database unreachable")
	started := make(chan struct{})
	release := make(chan struct{})
	var ran atomic.Int64
	run := func(items []int) ([]error, error) {
		if ran.Add(int64(len(items))) == int64(len(items)) {
			close(started)
		}
		<-release // a run waiting on a database that does not answer
		return nil, down
	}
	var wg sync.WaitGroup
	errs := make([]error, 2000)
	wg.Go(func() { errs[0] = g.do(0, run) })
	<-started
	for i := 1; i < len(errs); i++ {
		wg.Go(func() { errs[i] = g.do(i, run) })
	}
	// Every caller queued behind the first run (they cannot have run:
	// the first has not returned).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		n := len(g.queue)
		g.mu.Unlock()
		if n == len(errs)-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callers queued", n, len(errs)-1)
		}
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, down) {
			t.Fatalf("item %d answered %v, want the run's error", i, err)
		}
	}
	if n := ran.Load(); n != 1 {
		t.Errorf("%d items ran: the queue behind a failed run should fail without running", n)
	}
	// The group works again afterwards.
	if err := g.do(7, func(items []int) ([]error, error) { return make([]error, len(items)), nil }); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}
