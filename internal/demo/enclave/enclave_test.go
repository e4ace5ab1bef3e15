package enclave

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/attestlog/attestlog/policy/evidence"
)

func TestEvidenceRoundTrip(t *testing.T) {
	m := bytes.Repeat([]byte{0xab}, MeasurementSize)
	snp, err := NewSNP(m, WithChannelKey([]byte("channel key")))
	if err != nil {
		t.Fatal(err)
	}
	tdx, err := NewTDX(m)
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{7}, 32)
	for _, e := range []*Enclave{snp, tdx} {
		e.SetProof("c2sp.org/tlog-proof@v1\n")
		b, err := e.Evidence(context.Background(), nonce)
		if err != nil {
			t.Fatalf("%s: Evidence: %v", e.Platform(), err)
		}
		j, err := b.Marshal()
		if err != nil {
			t.Fatalf("%s: Marshal: %v", e.Platform(), err)
		}
		got, err := evidence.ParseBundle(j)
		if err != nil {
			t.Fatalf("%s: ParseBundle(Marshal(b)) = %v", e.Platform(), err)
		}
		if got.Platform != e.Platform() || got.Proof != "c2sp.org/tlog-proof@v1\n" {
			t.Errorf("%s: round trip = platform %q proof %q", e.Platform(), got.Platform, got.Proof)
		}
		// The root PEM holds only CA certificates (what a trust-root
		// line names), never the leaf.
		rest := e.RootPEM()
		for {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil || !c.IsCA {
				t.Errorf("%s: RootPEM has a non-CA certificate (%v)", e.Platform(), err)
			}
		}
	}
	// The SNP report carries the measurement at MEASUREMENT (0x90).
	b, _ := snp.Evidence(context.Background(), nonce)
	if !bytes.Equal(b.Report[0x90:0xc0], m) {
		t.Errorf("SNP MEASUREMENT = %x, want %x", b.Report[0x90:0xc0], m)
	}
	rd, _ := evidence.ReportData(nonce, []byte("channel key"))
	if !bytes.Equal(b.Report[0x50:0x90], rd[:]) {
		t.Errorf("SNP REPORT_DATA = %x, want %x", b.Report[0x50:0x90], rd)
	}
}

func TestBadSizes(t *testing.T) {
	if _, err := NewSNP(make([]byte, 32)); err == nil {
		t.Error("NewSNP(32-byte measurement) succeeded")
	}
	if _, err := NewTDX(make([]byte, 48), WithRTMR(1, make([]byte, 47))); err == nil {
		t.Error("NewTDX with a 47-byte RTMR1 succeeded")
	}
	if _, err := NewSNP(make([]byte, 48), WithSNPProductLine("Naples")); err == nil {
		t.Error("NewSNP(Naples) succeeded")
	}
}
