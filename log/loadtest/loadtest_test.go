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

// TestRunRate: a paced run offers about rate entries per second however
// many writers wait, and an unpaced one is not held to it.
func TestRunRate(t *testing.T) {
	entries := make([][]byte, 100000)
	for i := range entries {
		entries[i] = []byte{byte(i)}
	}
	add := func(context.Context, []byte) error { return nil }
	r := RunRate(context.Background(), "paced", 64, time.Second, 200, entries, true, add)
	if r.Entries < 150 || r.Entries > 250 {
		t.Errorf("200/s for 1 s sent %d entries", r.Entries)
	}
	if u := Run(context.Background(), "unpaced", 64, 200*time.Millisecond, entries, true, add); u.Entries < 1000 {
		t.Errorf("unpaced: %d entries in 200 ms", u.Entries)
	}
}
