package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevverify "github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	tpmpb "github.com/google/go-tpm-tools/proto/tpm"
	tpmquote "github.com/google/go-tpm-tools/quote"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// BenchmarkVerifyAzure is the client's cold decision on Azure SEV-SNP
// evidence — the Milan sample recorded on Azure (policy/vtpm/testdata),
// with a logged azure-sev-snp release naming its paravisor digest and 24
// PCRs, and the demo Azure CVM — next to the bare library checks of the
// same evidence: go-sev-guest's verify.SnpAttestation of the SNP report
// in the HCL report, SHA-256 of the runtime claims against REPORT_DATA,
// the AK decoded from the claims' JWK, go-tpm-tools' quote.Verify and
// (the demo's) go-eventlog's replay.
//
//	go test ./policy/verify -run '^$' -bench Azure -benchtime 2s
//
// The sample's user-data is the recording tool's, not attestlog's
// REPORT_DATA, so its decision fails (only) the nonce binding check,
// having done all the work.
func BenchmarkVerifyAzure(b *testing.B) {
	b.Run("sample", func(b *testing.B) {
		t := &testing.T{}
		f := newFixture(t)
		raw, err := os.ReadFile("../vtpm/testdata/azure-snp/evidence-v2.json")
		if err != nil {
			b.Fatal(err)
		}
		ev, _, err := evidence.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
		probe, _ := Parse([]byte("platform azure-sev-snp\n"), WithTime(at))
		hw := probe.Hardware(ev)
		pcrs := map[int]string{}
		for i := range 24 {
			pcrs[i] = hw.VTPM.PCRs[strconv.Itoa(i)]
		}
		idx := f.log.add(azureRelease(t, f, statement.PlatformAzureSNP, hw.SNP.LaunchDigest, pcrs, "1.0.0"))
		ev.Proof = string(f.log.proof(idx, 2).Marshal())
		// AMD's embedded roots only: the fixture's policy also names its
		// demo root, whose names are AMD's (one more RSA check to tell
		// which root certified the VCEK).
		f.policy(t, "platform azure-sev-snp\n")
		text, _ := os.ReadFile(filepath.Join(f.dir, "policy.txt"))
		v, err := Parse([]byte(strings.Replace(string(text), "trust-root sev-snp root.pem\n", "", 1)), WithTime(at))
		if err != nil {
			b.Fatal(err)
		}
		nonce, _ := new(big.Int).SetString(hw.VTPM.QuoteExtraData, 16)
		in := Input{Evidence: ev, Nonce: nonce.Bytes()}
		vd := v.Verify(in)
		if fl := vd.Checks.Failed(); len(fl) != 1 || fl[0].Name != check.NonceBinding {
			b.Fatalf("want only the nonce binding to fail:\n%s", vd.Checks)
		}
		runAzureBenchmarks(b, v, in, azureBare(b, ev, in.Nonce, &sevverify.Options{DisableCertFetching: true, Now: at}))
	})
	b.Run("demo", func(b *testing.B) {
		t := &testing.T{}
		f := newFixture(t)
		enc, err := fakeenclave.NewAzureSNP(mustHex(f.m))
		if err != nil {
			b.Fatal(err)
		}
		writeFile(b, f.dir, "hw.pem", enc.RootPEM())
		p := enc.PCRs()
		idx := f.log.add(azureRelease(t, f, statement.PlatformAzureSNP, f.m, map[int]string{4: p[4], 9: p[9], 11: p[11]}, "1.0.0"))
		v := f.policy(t, "trust-root sev-snp hw.pem\nplatform azure-sev-snp\n")
		n := nonce()
		ev, err := enc.Evidence(context.Background(), n)
		if err != nil {
			b.Fatal(err)
		}
		ev.Proof = string(f.log.proof(idx, 2).Marshal())
		in := Input{Evidence: ev, Nonce: n}
		if vd := v.Verify(in); !vd.OK() {
			b.Fatalf("does not verify:\n%s", vd.Checks)
		}
		ask, ark := pemCerts(b, enc.RootPEM())
		roots := map[string][]*trust.AMDRootCerts{"Milan": {{ProductLine: "Milan", ProductCerts: &trust.ProductCerts{Ask: ask, Ark: ark}}}}
		runAzureBenchmarks(b, v, in, azureBare(b, ev, n, &sevverify.Options{DisableCertFetching: true, TrustedRoots: roots}))
	})
}

// azureBare is the libraries' checks of ev, glued as a user of them
// would: the HCL report's offsets, REPORT_DATA, the JWK, the quote.
func azureBare(b *testing.B, ev *evidence.Bundle, nonce []byte, opts *sevverify.Options) func() {
	return func() {
		report, err := abi.ReportToProto(ev.VTPM.HCLReport[32:1216])
		if err != nil {
			b.Fatal(err)
		}
		att := &spb.Attestation{Report: report, CertificateChain: &spb.CertificateChain{VcekCert: ev.VCEK}}
		if err := sevverify.SnpAttestation(att, opts); err != nil {
			b.Fatal(err)
		}
		vtpmBare(b, ev, nonce, report.GetReportData())
	}
}

// vtpmBare checks the vTPM half of ev with the libraries, given the
// hardware-verified REPORT_DATA: SHA-256 of the HCL report's runtime
// claims, the AK of their JWK, go-tpm-tools' quote.Verify and go-eventlog's
// replay.
func vtpmBare(b *testing.B, ev *evidence.Bundle, nonce, reportData []byte) {
	{
		h := ev.VTPM.HCLReport
		n := binary.LittleEndian.Uint32(h[1232:])
		claims := h[1236 : 1236+n]
		d := sha256.Sum256(claims)
		if !bytes.Equal(reportData[:32], d[:]) {
			b.Fatal("REPORT_DATA")
		}
		var c struct {
			Keys []struct{ Kid, N, E string } `json:"keys"`
		}
		if err := json.Unmarshal(claims, &c); err != nil {
			b.Fatal(err)
		}
		var ak *rsa.PublicKey
		for _, k := range c.Keys {
			if k.Kid == "HCLAkPub" {
				nb, _ := base64.RawURLEncoding.DecodeString(k.N)
				eb, _ := base64.RawURLEncoding.DecodeString(k.E)
				ak = &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
			}
		}
		m := map[uint32][]byte{}
		for i, p := range ev.VTPM.PCRs {
			m[uint32(i)] = p
		}
		if err := tpmquote.Verify(&tpmpb.Quote{Quote: ev.VTPM.Quote, RawSig: ev.VTPM.Signature, Pcrs: &tpmpb.PCRs{Hash: tpmpb.HashAlgo_SHA256, Pcrs: m}}, ak, nonce); err != nil {
			b.Fatal(err)
		}
		if len(ev.VTPM.EventLog) > 0 {
			var mrs []register.MR
			for i, p := range ev.VTPM.PCRs {
				mrs = append(mrs, register.PCR{Index: i, Digest: p, DigestAlg: crypto.SHA256})
			}
			if _, err := tcg.ParseAndReplay(ev.VTPM.EventLog, mrs, tcg.ParseOpts{AllowPadding: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// runAzureBenchmarks is runVerifyBenchmarks for a decision that may fail
// one check by construction (the sample's nonce binding).
func runAzureBenchmarks(b *testing.B, v *Verifier, in Input, bare func()) {
	b.Run("attestlog-full-decision-cold", func(b *testing.B) {
		for b.Loop() {
			v.cache.reset()
			v.Verify(in)
		}
	})
	b.Run("go-sev-guest+go-tpm-tools", func(b *testing.B) {
		for b.Loop() {
			bare()
		}
	})
	b.Run("ratio", func(b *testing.B) { interleave(b, func() { v.Verify(in) }, bare) })
	b.Run("ratio-cold", func(b *testing.B) { interleave(b, func() { v.cache.reset(); v.Verify(in) }, bare) })
}
