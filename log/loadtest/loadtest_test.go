package loadtest

import (
	"context"
	"testing"
	"time"

	"github.com/attestlog/attestlog/log/statement"
)

func TestGeneratorSizesAndUniqueness(t *testing.T) {
	s, _ := statement.GenerateSigner(statement.AlgEd25519)
	g := NewGenerator(s)
	seen := map[[32]byte]bool{}
	for range 200 {
		e, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(e) < 4<<10 || len(e) > 8<<10 {
			t.Errorf("entry of %d bytes, want 4-8 KiB", len(e))
		}
		p, err := statement.Parse(e)
		if err != nil {
			t.Fatalf("generated entry does not parse: %v", err)
		}
		if seen[p.PayloadHash] {
			t.Fatal("generator repeated a statement")
		}
		seen[p.PayloadHash] = true
	}
}

// BenchmarkParseGenerated is the log's admission parse (decode, validate,
// canonical-form check; no signature check) of the entries 'bench append'
// sends.
func BenchmarkParseGenerated(b *testing.B) {
	s, _ := statement.GenerateSigner(statement.AlgEd25519)
	g := NewGenerator(s)
	entries := make([][]byte, 64)
	var n int64
	for i := range entries {
		entries[i], _ = g.Next()
		n += int64(len(entries[i]))
	}
	b.SetBytes(n / int64(len(entries)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := statement.Parse(entries[i%len(entries)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestRunRate: a paced run never offers more than rate entries per
// second however many writers wait (the pacer hands out only what is
// due), and an unpaced one is not held to it.
func TestRunRate(t *testing.T) {
	entries := make([][]byte, 100000)
	for i := range entries {
		entries[i] = []byte{byte(i)}
	}
	add := func(context.Context, []byte) error { return nil }
	r := RunRate(context.Background(), "paced", 64, time.Second, 200, entries, true, add)
	if limit := int(200*r.Duration.Seconds()) + 1; r.Entries > limit || r.Entries == 0 {
		t.Errorf("200/s for %v sent %d entries, want 1 to %d", r.Duration, r.Entries, limit)
	}
	// A no-op add unpaced runs millions a second; being held to the
	// paced bound would mean the pacer leaked into Run.
	if u := Run(context.Background(), "unpaced", 64, time.Second, entries, true, add); u.Entries <= int(200*u.Duration.Seconds())+1 {
		t.Errorf("unpaced: %d entries in %v, no more than the paced bound", u.Entries, u.Duration)
	}
}
