package ohttp

import (
	"testing"
	"time"

	"github.com/attestlog/attestlog/channel/keyset"
)

// BenchmarkKEMCost: the cryptographic cost of one OHTTP exchange (the
// client seals a 1 KiB request, the gateway opens it and seals a 1 KiB
// response, the client opens it) with the post-quantum hybrid
// MLKEM768-X25519 against X25519, the baseline, interleaved in one run.
// It reports each per exchange and the ratio hybrid/x25519, and the
// extra cost of the hybrid per request in microseconds.
func BenchmarkKEMCost(b *testing.B) {
	g, cs := newKeys(b)
	msg := make([]byte, 1024)
	round := func(kem uint16) time.Duration {
		cfg, s, err := ChooseKEM(cs, kem)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		enc, cr, err := EncapsulateRequest(cfg, s, msg)
		if err != nil {
			b.Fatal(err)
		}
		_, gr, err := g.DecapsulateRequest(enc)
		if err != nil {
			b.Fatal(err)
		}
		resp, _ := gr.SealResponse(msg)
		if _, err := cr.OpenResponse(resp); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var x, h time.Duration
	n := 0
	for b.Loop() {
		x += round(keyset.KEMX25519)
		h += round(keyset.KEMMLKEM768X25519)
		n++
	}
	b.ReportMetric(float64(x.Microseconds())/float64(n), "x25519-µs/req")
	b.ReportMetric(float64(h.Microseconds())/float64(n), "hybrid-µs/req")
	b.ReportMetric(float64(h)/float64(x), "hybrid/x25519")
	b.ReportMetric(float64((h-x).Microseconds())/float64(n), "extra-µs/req")
}
