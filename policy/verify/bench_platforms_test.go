package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	epb "github.com/google/gce-tcb-verifier/proto/endorsement"
	gceverify "github.com/google/gce-tcb-verifier/verify"
	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
	sevabi "github.com/google/go-sev-guest/abi"
	sevverify "github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	tabi "github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	tpb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtest "github.com/google/go-tdx-guest/testing"
	tverify "github.com/google/go-tdx-guest/verify"
	"google.golang.org/protobuf/proto"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/evidence"
)

// BenchmarkVerifyPlatforms is the cold client decision (nothing
// remembered from an earlier one: parse, hardware chain, TCB, vTPM,
// event log, endorsement, proof, checkpoint, 2-of-3 witness quorum,
// operator, measurement, revocations) on the demo evidence of every
// platform 'attestlog up --platform' plays, next to the bare library
// checks of the same evidence, timed alternately in the same run
// (x-bare = ours / bare; the goal is ≤ 1.5):
//
//	go test ./policy/verify -run '^$' -bench VerifyPlatforms -benchtime 2s
//
// The bare checks are what a user of the libraries would glue together:
// go-sev-guest's verify.SnpAttestation (Turin: its
// verify.SnpReportSignature and the x509 chain, as go-sev-guest v0.15.0
// cannot read a Turin VCEK); go-tdx-guest's verify.TdxQuote with the same
// Intel collateral (served by its own test getter); go-tpm-tools'
// quote.Verify and go-eventlog's replay for the vTPM; gce-tcb-verifier's
// verify.EndorsementProto for Google's endorsement; go-eventlog's replay
// of the CC event log.
func BenchmarkVerifyPlatforms(b *testing.B) {
	for _, p := range []string{"sev-snp", "aws", "turin", "gcp-sev-snp", "azure-sev-snp", "tdx", "tdx15", "gcp-tdx", "azure-tdx"} {
		b.Run(p, func(b *testing.B) {
			v, in, bare := platformBench(b, p)
			if vd := v.Verify(in); !vd.OK() {
				b.Fatalf("does not verify:\n%s", vd.Checks)
			}
			bare()
			interleaveCold(b, func() { v.cache.reset(); v.Verify(in) }, bare)
		})
	}
}

// interleaveCold times ours and bare alternately and reports both
// (ns/decision, ns/bare) and their ratio (x-bare).
func interleaveCold(b *testing.B, ours, bare func()) {
	var to, tb time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		ours()
		t1 := time.Now()
		bare()
		to += t1.Sub(t0)
		tb += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(to.Nanoseconds())/float64(n), "ns/decision")
	b.ReportMetric(float64(tb.Nanoseconds())/float64(n), "ns/bare")
	b.ReportMetric(float64(to)/float64(tb), "x-bare")
}

// platformBench sets up the demo enclave of platform p, a logged release
// of its measurements, a policy for it and nonce-bound evidence with the
// release's proof stapled; bare is the libraries' checks of that evidence.
func platformBench(b *testing.B, p string) (*Verifier, Input, func()) {
	t := &testing.T{}
	f := newFixture(t)
	m := mustHex(f.m)
	ctx := context.Background()
	n := nonce()
	var enc *fakeenclave.Enclave
	var err error
	var extra string
	var rel []byte
	switch p {
	case "sev-snp":
		enc, err = fakeenclave.NewSNP(m)
	case "aws":
		enc, err = fakeenclave.NewAWS(m)
		extra = "snp-allow-provisional-firmware\n"
	case "turin":
		enc, err = fakeenclave.NewTurin(m)
		extra = "snp-min-tcb turin fmc=1 snp=4\n"
	case "gcp-sev-snp":
		enc, err = fakeenclave.NewGCPSNP(m)
		extra = "trust-root gce-tcb gce.pem\n"
		rel = snpReleaseOf(t, f, &statement.SNPMeasurements{LaunchDigest: f.m, FirmwareEndorsement: statement.FirmwareEndorsedByGoogle})
	case "azure-sev-snp":
		enc, err = fakeenclave.NewAzureSNP(m)
		extra = "platform azure-sev-snp\n"
	case "tdx":
		enc, err = fakeenclave.NewTDX(m)
	case "tdx15":
		enc, err = fakeenclave.NewTDX15(m, fakeenclave.TDX15{})
	case "gcp-tdx":
		enc, err = fakeenclave.NewGCPTDX(m, fakeenclave.GCPWorkload{Kernel: []byte("vmlinuz"), Cmdline: "console=ttyS0"})
		extra = "trust-root gce-tcb gce.pem\n"
	case "azure-tdx":
		enc, err = fakeenclave.NewAzureTDX(m)
		extra = "platform azure-tdx\n"
	}
	if err != nil {
		b.Fatal(err)
	}
	tdx := statement.HardwarePlatform(enc.Platform()) == statement.PlatformTDX
	if tdx {
		stapleCollateral(b, enc)
		writeFile(b, f.dir, "tdxroot.pem", enc.RootPEM())
		extra += "trust-root tdx tdxroot.pem\n"
	} else {
		f.enclave = enc
		writeFile(b, f.dir, "root.pem", enc.RootPEM())
	}
	if g := enc.EndorsementRootPEM(); g != nil {
		writeFile(b, f.dir, "gce.pem", g)
	}
	if pcrs := enc.PCRs(); pcrs != nil {
		rel = azureRelease(t, f, enc.Platform(), f.m, map[int]string{4: pcrs[4], 9: pcrs[9], 11: pcrs[11]}, "1.0.0")
	}
	if rel == nil && tdx {
		tm := &statement.TDXMeasurements{MRTD: f.m}
		if p == "gcp-tdx" {
			r := enc.RTMRs()
			tm.RTMR0, tm.RTMR1, tm.RTMR2 = hex.EncodeToString(r[0]), hex.EncodeToString(r[1]), hex.EncodeToString(r[2])
			tm.FirmwareEndorsement = statement.FirmwareEndorsedByGoogle
		}
		rel = signedRelease(t, f, tm)
	}
	if rel == nil {
		rel = f.release(t, f.operator, f.m)
	}
	idx := f.log.add(rel)
	v := f.policy(t, extra)
	ev, err := enc.Evidence(ctx, n)
	if err != nil {
		b.Fatal(err)
	}
	ev.Proof = string(f.log.proof(idx, 2).Marshal())
	in := Input{Evidence: ev, Nonce: n}

	var bare func()
	switch p {
	case "sev-snp", "aws":
		bare = snpBare(b, f, ev)
	case "turin":
		bare = turinBare(b, enc, ev)
	case "gcp-sev-snp":
		hw, end := snpBare(b, f, ev), endorsementBare(b, enc, ev, m)
		bare = func() { hw(); end() }
	case "azure-sev-snp":
		bare = azureBare(b, ev, n, &sevverify.Options{DisableCertFetching: true, TrustedRoots: demoAMDRoots(b, enc)})
	case "tdx", "tdx15":
		bare = tdxBare(b, enc, ev, ev.Quote)
	case "gcp-tdx":
		hw, el, end := tdxBare(b, enc, ev, ev.Quote), ccelBare(b, ev), endorsementBare(b, enc, ev, nil)
		bare = func() { hw(); el(); end() }
	case "azure-tdx":
		bare = azureTDXBare(b, enc, ev, n)
	}
	return v, in, bare
}

// snpReleaseOf is an SEV-SNP release of the given measurements.
func snpReleaseOf(t *testing.T, f *fixture, m *statement.SNPMeasurements) []byte {
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("ab", 32)}}},
		&statement.Release{Version: "1.0.0", Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: m},
			Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}}})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := statement.Sign(payload, f.operator)
	return e
}

// turinBare is go-sev-guest's report signature check with the VCEK's
// chain to the demo ARK-Turin verified by crypto/x509 (go-sev-guest
// v0.15.0 refuses a Turin VCEK's extensions: policy/attest/amdkds.go).
func turinBare(b *testing.B, enc *fakeenclave.Enclave, ev *evidence.Bundle) func() {
	ask, ark := pemCerts(b, enc.RootPEM())
	vcekDER := enc.EndorsementKeyCert().Raw
	return func() {
		report, err := sevabi.ReportToProto(ev.Report)
		if err != nil {
			b.Fatal(err)
		}
		vcek, err := x509.ParseCertificate(vcekDER)
		if err != nil {
			b.Fatal(err)
		}
		if err := ask.CheckSignatureFrom(ark); err != nil {
			b.Fatal(err)
		}
		if err := vcek.CheckSignatureFrom(ask); err != nil {
			b.Fatal(err)
		}
		if err := sevverify.SnpReportSignature(ev.Report, vcek); err != nil {
			b.Fatal(err)
		}
		_ = report
	}
}

// endorsementBare is gce-tcb-verifier's check of the stapled
// endorsement against the demo root, and (TDX, snpMeasurement nil) the
// MRTD among its TDX measurements.
func endorsementBare(b *testing.B, enc *fakeenclave.Enclave, ev *evidence.Bundle, snpMeasurement []byte) func() {
	root, _ := pemCerts(b, enc.EndorsementRootPEM())
	pool := x509.NewCertPool()
	pool.AddCert(root)
	var mrtd []byte
	if snpMeasurement == nil {
		mrtd = tdxBody(b, ev.Quote).GetMrTd()
	}
	return func() {
		var end epb.VMLaunchEndorsement
		if err := proto.Unmarshal(ev.FirmwareEndorsement, &end); err != nil {
			b.Fatal(err)
		}
		opts := &gceverify.Options{RootsOfTrust: pool, Now: time.Now()}
		if snpMeasurement != nil {
			opts.SNP = &gceverify.SNPOptions{Measurement: snpMeasurement}
		}
		if err := gceverify.EndorsementProto(&end, opts); err != nil {
			b.Fatal(err)
		}
		if mrtd == nil {
			return
		}
		var golden epb.VMGoldenMeasurement
		if err := proto.Unmarshal(end.GetSerializedUefiGolden(), &golden); err != nil {
			b.Fatal(err)
		}
		for _, m := range golden.GetTdx().GetMeasurements() {
			if bytes.Equal(m.GetMrtd(), mrtd) {
				return
			}
		}
		b.Fatal("MRTD not endorsed")
	}
}

func tdxBody(b testing.TB, quote []byte) interface{ GetMrTd() []byte } {
	q, err := tabi.QuoteToProto(quote)
	if err != nil {
		b.Fatal(err)
	}
	switch q := q.(type) {
	case *tpb.QuoteV4:
		return q.GetTdQuoteBody()
	case *tpb.QuoteV5:
		return q.GetTdQuoteBodyDescriptor().GetTdQuoteBodyV5()
	}
	b.Fatalf("quote %T", q)
	return nil
}

// tdxBare is go-tdx-guest's verification of quote with the bundle's
// stapled collateral, served by its test getter, and revocation checks.
func tdxBare(b *testing.B, enc *fakeenclave.Enclave, ev *evidence.Bundle, quote []byte) func() {
	root, _ := pemCerts(b, enc.RootPEM())
	pool := x509.NewCertPool()
	pool.AddCert(root)
	c := ev.TDXCollateral
	chain := func(s string) []string { return []string{url.QueryEscape(s)} }
	// The demo platform's FMSPC (its PCK certificate's).
	getter := &tdxtest.Getter{Responses: map[string]tdxtest.HTTPResponse{
		pcs.TcbInfoURL("00906ed50000"): {Header: map[string][]string{pcs.TcbInfoIssuerChainPhrase: chain(c.TCBInfoIssuerChain)}, Body: c.TCBInfo},
		pcs.QeIdentityURL():            {Header: map[string][]string{pcs.SgxQeIdentityIssuerChainPhrase: chain(c.QEIdentityIssuerChain)}, Body: c.QEIdentity},
		pcs.PckCrlURL("platform"):      {Header: map[string][]string{pcs.SgxPckCrlIssuerChainPhrase: chain(c.PCKCRLIssuerChain)}, Body: c.PCKCRL},
		root.CRLDistributionPoints[0]:  {Body: c.RootCACRL},
	}}
	return func() {
		q, err := tabi.QuoteToProto(quote)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		ts := &tverify.TimeSet{PckCertChain: now, TcbInfo: now, QeIdentity: now, PckCrl: now, RootCaCrl: now}
		if err := tverify.TdxQuote(q, &tverify.Options{TrustedRoots: pool, Now: ts, Getter: getter, GetCollateral: true, CheckRevocations: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// ccelBare is go-eventlog's replay of the stapled CC event log to the
// quote's RTMRs.
func ccelBare(b *testing.B, ev *evidence.Bundle) func() {
	return func() {
		q, err := tabi.QuoteToProto(ev.Quote)
		if err != nil {
			b.Fatal(err)
		}
		var bank register.RTMRBank
		for i, r := range q.(*tpb.QuoteV4).GetTdQuoteBody().GetRtmrs() {
			bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: r})
		}
		if _, err := tcg.ParseAndReplay(ev.EventLog, bank.MRs(), tcg.ParseOpts{}); err != nil {
			b.Fatal(err)
		}
	}
}

// demoAMDRoots are the demo enclave's ARK and ASK as go-sev-guest's
// trusted roots.
func demoAMDRoots(b *testing.B, enc *fakeenclave.Enclave) map[string][]*trust.AMDRootCerts {
	ask, ark := pemCerts(b, enc.RootPEM())
	return map[string][]*trust.AMDRootCerts{"Milan": {{ProductLine: "Milan", ProductCerts: &trust.ProductCerts{Ask: ask, Ark: ark}}}}
}

// azureTDXBare is go-tdx-guest's verification of the TD quote (with its
// collateral), its REPORT_DATA against SHA-256 of the HCL report's
// runtime claims, and the vTPM half as azureBare checks it.
func azureTDXBare(b *testing.B, enc *fakeenclave.Enclave, ev *evidence.Bundle, nonce []byte) func() {
	hw := tdxBare(b, enc, ev, ev.Quote)
	return func() {
		hw()
		q, err := tabi.QuoteToProto(ev.Quote)
		if err != nil {
			b.Fatal(err)
		}
		vtpmBare(b, ev, nonce, q.(*tpb.QuoteV4).GetTdQuoteBody().GetReportData())
	}
}
