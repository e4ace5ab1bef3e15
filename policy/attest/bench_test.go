package attest

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	tabi "github.com/google/go-tdx-guest/abi"
	tvalidate "github.com/google/go-tdx-guest/validate"
	tverify "github.com/google/go-tdx-guest/verify"

	"github.com/attestlog/attestlog/internal/fakeenclave"
)

// Our whole attestation decision (parse, chain, consistency, TCB floors,
// guest policy, nonce binding) next to the libraries' own verification
// alone, on the same evidence in the same run:
//
//	go test ./policy/attest -run '^$' -bench . -benchtime 2s
func BenchmarkSNP(b *testing.B) {
	nonce := bytes.Repeat([]byte{1}, 32)
	e, err := fakeenclave.NewSNP(measurement(1))
	if err != nil {
		b.Fatal(err)
	}
	ev, _ := e.Evidence(context.Background(), nonce)
	v := fakeVerifier(b, e, "snp-min-tcb snp=1")
	if r := v.Verify(ev, nonce); !r.OK() {
		b.Fatalf("evidence does not verify:\n%s", r.Checks)
	}
	b.Run("attestlog", func(b *testing.B) {
		for b.Loop() {
			if !v.Verify(ev, nonce).OK() {
				b.Fatal("failed")
			}
		}
	})
	b.Run("go-sev-guest-verify", func(b *testing.B) {
		roots := v.amdRoots()
		for b.Loop() {
			att, err := abi.ReportCertsToProto(append(bytes.Clone(ev.Report), ev.CertTable...))
			if err != nil {
				b.Fatal(err)
			}
			if err := verify.SnpAttestation(att, &verify.Options{DisableCertFetching: true, TrustedRoots: roots}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-sev-guest-verify+validate", func(b *testing.B) {
		roots := v.amdRoots()
		for b.Loop() {
			att, err := abi.ReportCertsToProto(append(bytes.Clone(ev.Report), ev.CertTable...))
			if err != nil {
				b.Fatal(err)
			}
			if err := verify.SnpAttestation(att, &verify.Options{DisableCertFetching: true, TrustedRoots: roots}); err != nil {
				b.Fatal(err)
			}
			if err := validate.SnpAttestation(att, &validate.Options{GuestPolicy: abi.SnpPolicy{SMT: true}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTDX(b *testing.B) {
	nonce := bytes.Repeat([]byte{1}, 32)
	e, err := fakeenclave.NewTDX(measurement(2))
	if err != nil {
		b.Fatal(err)
	}
	ev, _ := e.Evidence(context.Background(), nonce)
	v := fakeVerifier(b, e, "tdx-min-tee-tcb-svn 03000000000000000000000000000000")
	if r := v.Verify(ev, nonce); !r.OK() {
		b.Fatalf("evidence does not verify:\n%s", r.Checks)
	}
	b.Run("attestlog", func(b *testing.B) {
		for b.Loop() {
			if !v.Verify(ev, nonce).OK() {
				b.Fatal("failed")
			}
		}
	})
	b.Run("go-tdx-guest-verify", func(b *testing.B) {
		for b.Loop() {
			q, err := tabi.QuoteToProto(ev.Quote)
			if err != nil {
				b.Fatal(err)
			}
			if err := tverify.TdxQuote(q, &tverify.Options{TrustedRoots: v.tdxRoots}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-tdx-guest-verify+validate", func(b *testing.B) {
		for b.Loop() {
			q, err := tabi.QuoteToProto(ev.Quote)
			if err != nil {
				b.Fatal(err)
			}
			if err := tverify.TdxQuote(q, &tverify.Options{TrustedRoots: v.tdxRoots}); err != nil {
				b.Fatal(err)
			}
			if err := tvalidate.TdxQuote(q, &tvalidate.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
