package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func hash(i int) [32]byte { return sha256.Sum256(fmt.Append(nil, i)) }

func TestUpdateCompareAndSwap(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if created, err := s.AddLog(ctx, "o", "k1"); err != nil || !created {
		t.Fatalf("AddLog = %v, %v", created, err)
	}
	up := Update{Origin: "o", OldSize: 0, OldHash: EmptyTreeHash, NewSize: 5, NewHash: hash(5), SignedCheckpoint: []byte("cp5")}
	if err := s.Update(ctx, up); err != nil {
		t.Fatalf("Update(0→5) = %v", err)
	}
	if err := s.Update(ctx, up); !errors.Is(err, ErrConflict) {
		t.Fatalf("Update(0→5) again = %v, want ErrConflict", err)
	}
	// Right size, wrong hash: also a conflict.
	if err := s.Update(ctx, Update{Origin: "o", OldSize: 5, OldHash: hash(6), NewSize: 7, NewHash: hash(7)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("Update with a wrong old hash = %v, want ErrConflict", err)
	}
	if err := s.Update(ctx, Update{Origin: "nope", OldSize: 0, OldHash: EmptyTreeHash, NewSize: 1, NewHash: hash(1)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("Update of an unknown origin = %v, want ErrConflict", err)
	}
	l, err := s.Log(ctx, "o")
	if err != nil || l.Size != 5 || l.Hash != hash(5) || string(l.Checkpoint) != "cp5" || len(l.Keys) != 1 {
		t.Fatalf("Log = %+v, %v", l, err)
	}
	cp, err := s.CheckpointByOriginHash(ctx, originSHA("o"))
	if err != nil || string(cp) != "cp5" {
		t.Fatalf("CheckpointByOriginHash = %q, %v", cp, err)
	}
}

// TestGroupCommitOneWinner races many updates from the same old tree head;
// however the committer batches them, exactly one wins.
func TestGroupCommitOneWinner(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	s.AddLog(ctx, "o", "k")
	var batches []int
	var mu sync.Mutex
	s.AfterCommit = nil
	s.BeforeCommit = func(n int) { mu.Lock(); batches = append(batches, n); mu.Unlock() }
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, Update{Origin: "o", OldSize: 0, OldHash: EmptyTreeHash, NewSize: uint64(i + 1), NewHash: hash(i + 1)})
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("updates %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, ErrConflict):
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no update won")
	}
	l, _ := s.Log(ctx, "o")
	if l.Size != uint64(winner+1) || l.Hash != hash(winner+1) {
		t.Fatalf("state %d %x, winner %d", l.Size, l.Hash, winner+1)
	}
	t.Logf("%d updates in %d transactions: %v", n, len(batches), batches)
}

func TestAddRemoveLog(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	s.AddLog(ctx, "o", "k1")
	if created, err := s.AddLog(ctx, "o", "k2"); err != nil || created {
		t.Fatalf("AddLog(second key) = %v, %v; want not created", created, err)
	}
	if l, _ := s.Log(ctx, "o"); len(l.Keys) != 2 {
		t.Fatalf("keys = %v", l.Keys)
	}
	if err := s.RemoveLog(ctx, "o", "k1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveLog(ctx, "o", "k1"); !errors.Is(err, ErrUnknownLog) {
		t.Fatalf("RemoveLog(k1) twice = %v", err)
	}
	if err := s.RemoveLog(ctx, "o", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Log(ctx, "o"); !errors.Is(err, ErrUnknownLog) {
		t.Fatalf("Log of a removed log = %v, want ErrUnknownLog", err)
	}
	logs, err := s.Logs(ctx)
	if err != nil || len(logs) != 1 || len(logs[0].Keys) != 0 {
		t.Fatalf("Logs = %+v, %v; want the removed log without keys", logs, err)
	}
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, Update{Origin: "o"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close = %v, want ErrClosed", err)
	}
}

func TestEvidenceBoundPerKind(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for i := range MaxEvidencePerKind + 5 {
		if err := s.AddEvidence(ctx, Evidence{Origin: "o", Kind: "bad-proof", Request: fmt.Append(nil, i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddEvidence(ctx, Evidence{Origin: "o", Kind: "split-view", Request: []byte("x"), Cosigned: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Evidence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != MaxEvidencePerKind+1 || ev[len(ev)-1].Kind != "split-view" {
		t.Fatalf("%d evidence rows, last %+v; want %d, the split view kept", len(ev), ev[len(ev)-1], MaxEvidencePerKind+1)
	}
}
