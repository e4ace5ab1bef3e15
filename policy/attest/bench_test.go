package attest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	tabi "github.com/google/go-tdx-guest/abi"
	tvalidate "github.com/google/go-tdx-guest/validate"
	tverify "github.com/google/go-tdx-guest/verify"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/evidence"
)

// Our whole attestation decision (parse, chain, consistency, TCB floors,
// guest policy, nonce binding) next to the libraries' own verification
// alone, on the same evidence in the same run:
//
//	go test ./policy/attest -run '^$' -bench . -benchtime 2s
func BenchmarkSNP(b *testing.B) {
	e, err := fakeenclave.NewSNP(measurement(1))
	if err != nil {
		b.Fatal(err)
	}
	v, ev, nonce := benchSetup(b, e, "snp-min-tcb snp=1")
	roots := v.amdRoots()
	snp := func(b *testing.B, validateToo bool) {
		for b.Loop() {
			att, err := abi.ReportCertsToProto(append(bytes.Clone(ev.Report), ev.CertTable...))
			if err != nil {
				b.Fatal(err)
			}
			if err := verify.SnpAttestation(att, &verify.Options{DisableCertFetching: true, TrustedRoots: roots}); err != nil {
				b.Fatal(err)
			}
			if !validateToo {
				continue
			}
			if err := validate.SnpAttestation(att, &validate.Options{GuestPolicy: abi.SnpPolicy{SMT: true}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("attestlog", func(b *testing.B) { benchVerify(b, v, ev, nonce) })
	b.Run("go-sev-guest-verify", func(b *testing.B) { snp(b, false) })
	b.Run("go-sev-guest-verify+validate", func(b *testing.B) { snp(b, true) })
}

// BenchmarkAWSSample is the attestation decision on the real AWS EC2
// report (VLEK-signed, provisional firmware; the nonce binding aside: its
// REPORT_DATA is not ours) — every decision cold, as this package
// remembers nothing between them — next to go-sev-guest's verification
// of the same evidence alone, and the two interleaved (x-bare):
//
//	go test ./policy/attest -run '^$' -bench AWSSample -benchtime 2s
func BenchmarkAWSSample(b *testing.B) {
	ev := awsSample(b)
	v := mustVerifier(b, "snp-allow-provisional-firmware\nsnp-policy vmpl=1\nsnp-min-tcb milan snp=24", WithTime(awsTime))
	ours := func() {
		r := v.Verify(ev, make([]byte, 32))
		if f := r.Checks.Failed(); len(f) != 1 || f[0].Name != "nonce binding" {
			b.Fatalf("failed %v", f)
		}
	}
	roots := embeddedSNPRoots()
	amd := map[string][]*trust.AMDRootCerts{"Milan": {{ProductLine: "Milan", ProductCerts: roots["Milan"][0].certs}}}
	bare := func() {
		report, err := abi.ReportToProto(ev.Report)
		if err != nil {
			b.Fatal(err)
		}
		att := &spb.Attestation{Report: report, CertificateChain: &spb.CertificateChain{VlekCert: ev.VCEK}}
		if err := verify.SnpAttestation(att, &verify.Options{DisableCertFetching: true, Now: awsTime, TrustedRoots: amd}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("attestlog", func(b *testing.B) {
		for b.Loop() {
			ours()
		}
	})
	b.Run("go-sev-guest-verify", func(b *testing.B) {
		for b.Loop() {
			bare()
		}
	})
	b.Run("ratio", func(b *testing.B) {
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
	})
}

func BenchmarkTDX(b *testing.B) {
	e, err := fakeenclave.NewTDX(measurement(2))
	if err != nil {
		b.Fatal(err)
	}
	v, ev, nonce := benchSetup(b, e, "tdx-min-tee-tcb-svn 03000000000000000000000000000000")
	tdx := func(b *testing.B, validateToo bool) {
		for b.Loop() {
			q, err := tabi.QuoteToProto(ev.Quote)
			if err != nil {
				b.Fatal(err)
			}
			if err := tverify.TdxQuote(q, &tverify.Options{TrustedRoots: v.tdxRoots}); err != nil {
				b.Fatal(err)
			}
			if !validateToo {
				continue
			}
			if err := tvalidate.TdxQuote(q, &tvalidate.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("attestlog", func(b *testing.B) { benchVerify(b, v, ev, nonce) })
	b.Run("go-tdx-guest-verify", func(b *testing.B) { tdx(b, false) })
	b.Run("go-tdx-guest-verify+validate", func(b *testing.B) { tdx(b, true) })
}

// benchSetup returns a verifier with policy text for e's evidence, the
// evidence and its nonce, checking once that it verifies.
func benchSetup(b *testing.B, e *fakeenclave.Enclave, text string) (*Verifier, *evidence.Bundle, []byte) {
	nonce := bytes.Repeat([]byte{1}, 32)
	ev, err := e.Evidence(context.Background(), nonce)
	if err != nil {
		b.Fatal(err)
	}
	v := fakeVerifier(b, e, text)
	if r := v.Verify(ev, nonce); !r.OK() {
		b.Fatalf("evidence does not verify:\n%s", r.Checks)
	}
	return v, ev, nonce
}

func benchVerify(b *testing.B, v *Verifier, ev *evidence.Bundle, nonce []byte) {
	for b.Loop() {
		if !v.Verify(ev, nonce).OK() {
			b.Fatal("failed")
		}
	}
}
