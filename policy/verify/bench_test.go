package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	sevverify "github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	tabi "github.com/google/go-tdx-guest/abi"
	tverify "github.com/google/go-tdx-guest/verify"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/evidence"
)

// The whole offline decision (hardware, proof, checkpoint, quorum of 2
// cosignatures, operator, measurement, revocations, reproductions) next to
// go-sev-guest's / go-tdx-guest's verification alone, in the same run:
//
//	go test ./policy/verify -run '^$' -bench . -benchtime 2s
func BenchmarkVerifySNP(b *testing.B) {
	t := &testing.T{}
	benchSNPDecision(b, t, newFixture(t), "")
}

// benchSNPDecision runs the benchmarks on f's enclave's evidence for a
// release of its measurement, under f's policy with extra lines.
func benchSNPDecision(b *testing.B, t *testing.T, f *fixture, extra string) {
	idx := f.log.add(f.release(t, f.operator, f.m))
	v := f.policy(t, extra)
	n := nonce()
	ev := f.evidence(t, n)
	ev.Proof = string(f.log.proof(idx, 2).Marshal())
	if vd := v.Verify(Input{Evidence: ev, Nonce: n}); !vd.OK() {
		b.Fatalf("does not verify:\n%s", vd.Checks)
	}
	runVerifyBenchmarks(b, v, Input{Evidence: ev, Nonce: n}, "go-sev-guest-verify", snpBare(b, f, ev))
}

// BenchmarkVerifySNPRevocationProof is BenchmarkVerifySNP under
// 'revocation-proof required': the decision also verifies the stapled
// index proof (its checkpoint, the index checkpoint's signature and
// inclusion, the map proof) in a log of 1000 releases.
//
//	go test ./policy/verify -run '^$' -bench RevocationProof -benchtime 2s
func BenchmarkVerifySNPRevocationProof(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t)
	for i := range 999 {
		f.log.add(f.release(t, f.operator, fmt.Sprintf("%096x", i+1)))
	}
	idx := f.log.add(f.release(t, f.operator, f.m))
	v := f.policy(t, "revocation-proof required\n")
	n := nonce()
	ev := f.evidence(t, n)
	// As an enclave staples them: both proofs under the log's latest
	// checkpoint, the same signed bytes.
	ip := f.log.indexProof(t, f.m, 2)
	rp := f.log.proof(idx, 2)
	rp.Checkpoint = ip.Commit.Checkpoint
	ev.Proof = string(rp.Marshal())
	ev.IndexProof = string(ip.Marshal())
	if vd := v.Verify(Input{Evidence: ev, Nonce: n}); !vd.OK() {
		b.Fatalf("does not verify:\n%s", vd.Checks)
	}
	b.Logf("stapled index proof: %d bytes (release proof %d bytes)", len(ev.IndexProof), len(ev.Proof))
	runVerifyBenchmarks(b, v, Input{Evidence: ev, Nonce: n}, "go-sev-guest-verify", snpBare(b, f, ev))
}

// BenchmarkVerifySNPAWS is BenchmarkVerifySNP on evidence shaped as AWS
// EC2's: signed by a VLEK under an ARK → ASVK chain, firmware provisional
// (the demo signer's NewAWS; a real AWS report cannot bind our nonce),
// under 'snp-allow-provisional-firmware'.
//
//	go test ./policy/verify -run '^$' -bench VerifySNPAWS -benchtime 2s
func BenchmarkVerifySNPAWS(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t)
	e, err := fakeenclave.NewAWS(mustHex(f.m))
	if err != nil {
		b.Fatal(err)
	}
	f.enclave = e
	writeFile(b, f.dir, "root.pem", e.RootPEM())
	benchSNPDecision(b, t, f, "snp-allow-provisional-firmware\n")
}

// snpBare is go-sev-guest's verification of ev alone, against the
// fixture's demo root (its intermediate is an ASVK for a VLEK enclave).
func snpBare(b *testing.B, f *fixture, ev *evidence.Bundle) func() {
	ask, ark := pemCerts(b, f.enclave.RootPEM())
	pc := &trust.ProductCerts{Ask: ask, Ark: ark}
	if strings.HasPrefix(ask.Subject.CommonName, "SEV-VLEK-") {
		pc = &trust.ProductCerts{Asvk: ask, Ark: ark}
	}
	roots := map[string][]*trust.AMDRootCerts{"Milan": {{ProductLine: "Milan", ProductCerts: pc}}}
	return func() {
		att, err := abi.ReportCertsToProto(append(bytes.Clone(ev.Report), ev.CertTable...))
		if err != nil {
			b.Fatal(err)
		}
		if err := sevverify.SnpAttestation(att, &sevverify.Options{DisableCertFetching: true, TrustedRoots: roots}); err != nil {
			b.Fatal(err)
		}
	}
}

// runVerifyBenchmarks runs our whole decision on in, the library's
// verification alone (bare, named bareName), and the warm and cold ratios
// of the two.
func runVerifyBenchmarks(b *testing.B, v *Verifier, in Input, bareName string, bare func()) {
	b.Run("attestlog-full-decision", func(b *testing.B) {
		for b.Loop() {
			if !v.Verify(in).OK() {
				b.Fatal("failed")
			}
		}
	})
	b.Run(bareName, func(b *testing.B) {
		for b.Loop() {
			bare()
		}
	})
	b.Run("ratio", func(b *testing.B) {
		interleave(b, func() { v.Verify(in) }, bare)
	})
	// Cold: nothing remembered from an earlier verification.
	b.Run("ratio-cold", func(b *testing.B) {
		interleave(b, func() { v.cache.reset(); v.Verify(in) }, bare)
	})
}

// interleave times ours and bare alternately, so that both see the same
// machine, and reports ours/bare as the "x-bare" metric.
func interleave(b *testing.B, ours, bare func()) {
	var to, tb time.Duration
	for b.Loop() {
		t0 := time.Now()
		ours()
		t1 := time.Now()
		bare()
		to += t1.Sub(t0)
		tb += time.Since(t1)
	}
	b.ReportMetric(float64(to)/float64(tb), "x-bare")
}

func BenchmarkVerifyTDX(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t)
	enc, err := fakeenclave.NewTDX(mustHex(f.m))
	if err != nil {
		b.Fatal(err)
	}
	stapleCollateral(b, enc)
	root, _ := pemCerts(b, enc.RootPEM())
	writeFile(b, f.dir, "tdxroot.pem", enc.RootPEM())
	payload := tdxRelease(t, f)
	idx := f.log.add(payload)
	v := f.policy(t, "trust-root tdx tdxroot.pem\n")
	n := nonce()
	ev, _ := enc.Evidence(b.Context(), n)
	ev.Proof = string(f.log.proof(idx, 2).Marshal())
	if vd := v.Verify(Input{Evidence: ev, Nonce: n}); !vd.OK() {
		b.Fatalf("does not verify:\n%s", vd.Checks)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	bare := func() {
		q, err := tabi.QuoteToProto(ev.Quote)
		if err != nil {
			b.Fatal(err)
		}
		now := v.now()
		ts := &tverify.TimeSet{PckCertChain: now, TcbInfo: now, QeIdentity: now, PckCrl: now, RootCaCrl: now}
		if err := tverify.TdxQuote(q, &tverify.Options{TrustedRoots: pool, Now: ts}); err != nil {
			b.Fatal(err)
		}
	}
	runVerifyBenchmarks(b, v, Input{Evidence: ev, Nonce: n}, "go-tdx-guest-verify", bare)
}

// pemCerts returns the first two certificates of a PEM bundle (the second
// is nil when there is one).
func pemCerts(b testing.TB, p []byte) (*x509.Certificate, *x509.Certificate) {
	var cs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, p = pem.Decode(p)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	cs = append(cs, nil)
	return cs[0], cs[1]
}
