package loadtest

import (
	"testing"

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
