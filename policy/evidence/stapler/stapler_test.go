package stapler

import (
	"context"
	"errors"
	"github.com/attestlog/attestlog/policy/evidence"
	"sync/atomic"
	"testing"
	"time"
)

// TestStapler: bundles carry nothing until the first refresh, then the
// latest staple; a failed refresh keeps the previous one; Run refreshes
// on its own and backs off while the log fails.
func TestStapler(t *testing.T) {
	src := evidence.SourceFunc(func(ctx context.Context, nonce []byte) (*evidence.Bundle, error) {
		return &evidence.Bundle{Format: evidence.Format, Platform: evidence.SEVSNP, Proof: "from the source"}, nil
	})
	var calls, fail atomic.Int64
	s := &Stapler{Source: src, Interval: 10 * time.Millisecond, Fetch: func(ctx context.Context) (Staple, error) {
		n := calls.Add(1)
		if fail.Load() != 0 {
			return Staple{}, errors.New("log down")
		}
		return Staple{Proof: "proof", IndexProof: "index " + string(rune('0'+n%10))}, nil
	}}
	b, _ := s.Evidence(context.Background(), nil)
	if b.Proof != "" || b.IndexProof != "" {
		t.Fatalf("before any refresh the bundle carries %q, %q; want nothing (not the source's)", b.Proof, b.IndexProof)
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ = s.Evidence(context.Background(), nil)
	first := b.IndexProof
	if b.Proof != "proof" || first == "" {
		t.Fatalf("after a refresh: %q %q", b.Proof, b.IndexProof)
	}
	fail.Store(1)
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("a failed fetch refreshed")
	}
	if b, _ = s.Evidence(context.Background(), nil); b.IndexProof != first {
		t.Errorf("a failed refresh changed the staple to %q", b.IndexProof)
	}
	// Run refreshes on its own once the log is back.
	fail.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ = s.Evidence(context.Background(), nil); b.IndexProof != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not refresh the staple")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestStapleBackoff(t *testing.T) {
	const iv = time.Second
	w := iv
	var got []time.Duration
	for range 5 {
		w = nextWait(w, iv, true)
		got = append(got, w)
	}
	want := []time.Duration{2 * iv, 4 * iv, 8 * iv, 8 * iv, 8 * iv}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff after failures = %v, want %v", got, want)
		}
	}
	if nextWait(8*iv, iv, false) != iv {
		t.Error("a success does not reset the wait")
	}
}
