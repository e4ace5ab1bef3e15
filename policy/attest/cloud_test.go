package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// Real cloud samples, copied with their README, manifest and licences
// into testdata/cloud (from the project's shared/testdata/cloud): an AWS
// EC2 report signed by a VLEK, a Google Cloud report with its VCEK, and a
// Turin VCEK with AMD's Turin ASK/ARK. The facts asserted here are the
// README's, read there from the files' own byte offsets.

func cloudFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cloud", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func awsSample(t testing.TB) *evidence.Bundle {
	return &evidence.Bundle{Format: evidence.Format, Platform: evidence.SEVSNP,
		Report: cloudFile(t, "aws-snp/test-vlek-report.bin"), VCEK: cloudFile(t, "aws-snp/test-vlek.der")}
}

func gcpSample(t testing.TB) *evidence.Bundle {
	return &evidence.Bundle{Format: evidence.Format, Platform: evidence.SEVSNP,
		Report: cloudFile(t, "gcp-snp/sev-gcp.bin"), VCEK: cloudFile(t, "gcp-snp/sev-gcp-vcek.pem")}
}

var (
	// Inside the AWS VLEK's validity (2024-12-10 … 2025-12-10).
	awsTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// Inside the GCP VCEK's (2025-12-05 … 2032-12-05).
	gcpTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Inside the Turin VCEK's (2024-11-06 … 2031-11-06).
	turinTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

func u8(v uint8) *uint8 { return &v }

func TestAWSVLEKSample(t *testing.T) {
	nonce := bytes.Repeat([]byte{1}, 32)
	v := mustVerifier(t, "snp-allow-provisional-firmware", WithTime(awsTime))
	r := v.Inspect(awsSample(t))
	if !r.OK() {
		t.Fatalf("Inspect(AWS sample) with snp-allow-provisional-firmware failed:\n%s", r.Checks)
	}
	want(t, r, check.EvidenceFormat, true, "signed by its VLEK")
	want(t, r, check.HardwareChain, true, "VLEK certified by ARK-Milan (embedded AMD root)")
	want(t, r, check.FirmwareCommitted, true, "accepted by snp-allow-provisional-firmware")
	rep := cloudFile(t, "aws-snp/test-vlek-report.bin")
	f := r.SNP
	if f.LaunchDigest != hex.EncodeToString(rep[0x90:0xc0]) || !strings.HasPrefix(f.LaunchDigest, "8922ebbdd00ec2c5") {
		t.Errorf("launch digest = %s", f.LaunchDigest)
	}
	if f.Signer != "vlek" || f.ProductLine != "Milan" || f.CSPID != "CN=cc-us-east-2.amazonaws.com" || f.VMPL != 1 || !f.ProvisionalFirmware {
		t.Errorf("signer %q, line %q, CSP_ID %q, VMPL %d, provisional %v; want vlek, Milan, CN=cc-us-east-2.amazonaws.com, 1, true", f.Signer, f.ProductLine, f.CSPID, f.VMPL, f.ProvisionalFirmware)
	}
	if got, want := f.ReportedTCB, (TCB{Raw: "d918000000000004", Bootloader: 4, TEE: 0, SNP: 24, Microcode: 217}); got != want {
		t.Errorf("REPORTED_TCB = %+v, want %+v", got, want)
	}
	if f.CommittedTCB.Raw != "db18000000000004" || f.CurrentTCB.Raw != "dc18000000000004" || f.ReportedTCB.FMC != nil {
		t.Errorf("COMMITTED_TCB %s, CURRENT_TCB %s, FMC %v", f.CommittedTCB.Raw, f.CurrentTCB.Raw, f.ReportedTCB.FMC)
	}

	// Everything but the nonce: the sample's REPORT_DATA was not made
	// for our nonce, and the client's decision says so.
	full := mustVerifier(t, "snp-allow-provisional-firmware\nsnp-policy vmpl=1\nsnp-min-tcb milan bootloader=4 snp=24 microcode=217", WithTime(awsTime)).Verify(awsSample(t), nonce)
	if failed := full.Checks.Failed(); len(failed) != 1 || failed[0].Name != check.NonceBinding {
		t.Errorf("Verify(AWS sample) failed %v, want only the nonce binding", failed)
	}
	want(t, full, check.NonceBinding, false, "not produced for this request")
	want(t, full, check.TCBFloors, true, "snp-min-tcb milan")
	want(t, full, check.GuestPolicy, true, "VMPL 1")

	for _, tc := range []sampleCase{
		{"provisional firmware without the policy line", "", awsTime, nil, check.FirmwareCommitted, "add 'snp-allow-provisional-firmware'"},
		{"flipped signed byte", "snp-allow-provisional-firmware", awsTime, func(b *evidence.Bundle) { b.Report[0x90] ^= 1 }, check.HardwareChain, "signature"},
		{"flipped VLEK byte", "snp-allow-provisional-firmware", awsTime, func(b *evidence.Bundle) { b.VCEK[len(b.VCEK)-10] ^= 1 }, check.HardwareChain, "VLEK"},
		{"VLEK expired", "snp-allow-provisional-firmware", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil, check.HardwareChain, "expired"},
		{"VLEK not yet valid", "snp-allow-provisional-firmware", time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), nil, check.HardwareChain, "expired or is not yet valid"},
		{"no VLEK", "snp-allow-provisional-firmware", awsTime, func(b *evidence.Bundle) { b.VCEK = nil }, check.HardwareChain, "no VLEK certificate"},
		{"another chip's certificate", "snp-allow-provisional-firmware", awsTime, func(b *evidence.Bundle) { b.VCEK = cloudFile(t, "gcp-snp/sev-gcp-vcek.pem") }, check.HardwareChain, ""},
		{"VMPL limit", "snp-allow-provisional-firmware\nsnp-policy vmpl=0", awsTime, nil, check.GuestPolicy, "VMPL 1 is not 0"},
		{"below the Milan floor", "snp-allow-provisional-firmware\nsnp-min-tcb milan snp=25", awsTime, nil, check.TCBFloors, "snp 24 < 25"},
		{"floor on CURRENT_TCB's microcode is not REPORTED_TCB's", "snp-allow-provisional-firmware\nsnp-min-tcb microcode=220", awsTime, nil, check.TCBFloors, "microcode 217 < 220"},
		{"floors for Turin only", "snp-allow-provisional-firmware\nsnp-min-tcb turin snp=1", awsTime, nil, check.TCBFloors, "none for Milan"},
		{"only a VCEK CRL", "snp-allow-provisional-firmware\ncrl milan.crl", awsTime, nil, check.Revocation, "names no VLEK CRL issued by ARK-Milan; add 'crl vlek FILE' with the CRL from https://kdsintf.amd.com/vlek/v1/Milan/crl"},
	} {
		// milan.crl, for the crl lines: a CRL of another ARK (a demo
		// ARK-Milan); the AWS report is signed by a VLEK, whose CRL AMD
		// publishes apart.
		refuse(t, awsSample, tc)
	}
}

// sampleCase is a real sample changed, or verified under a policy or at a
// time, so that one check fails with a reason containing reason.
type sampleCase struct {
	name   string
	policy string
	at     time.Time
	mutate func(*evidence.Bundle)
	check  string
	reason string
}

// refuse runs tc on a fresh copy of a sample, with a demo ARK-Milan's
// CRL as milan.crl beside the policy.
func refuse(t *testing.T, sample func(testing.TB) *evidence.Bundle, tc sampleCase) {
	t.Run(tc.name, func(t *testing.T) {
		dir := t.TempDir()
		writeForeignMilanCRL(t, filepath.Join(dir, "milan.crl"))
		b := sample(t)
		if tc.mutate != nil {
			tc.mutate(b)
		}
		r := mustVerifier(t, tc.policy, WithTime(tc.at), WithBaseDir(dir)).Verify(b, bytes.Repeat([]byte{1}, 32))
		want(t, r, tc.check, false, tc.reason)
	})
}

// writeForeignMilanCRL writes a CRL signed by a demo ARK-Milan (not
// AMD's: its name carries a serial number AMD's does not).
func writeForeignMilanCRL(t *testing.T, path string) {
	t.Helper()
	e, err := fakeenclave.NewSNP(measurement(9))
	if err != nil {
		t.Fatal(err)
	}
	der, err := e.SNPCRL(awsTime.Add(-time.Hour), awsTime.Add(24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, der, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGCPSample(t *testing.T) {
	v := mustVerifier(t, "snp-policy vmpl=0", WithTime(gcpTime))
	r := v.Inspect(gcpSample(t))
	if !r.OK() {
		t.Fatalf("Inspect(GCP sample) failed:\n%s", r.Checks)
	}
	want(t, r, check.HardwareChain, true, "VCEK certified by ARK-Milan (embedded AMD root)")
	want(t, r, check.FirmwareCommitted, true, "1.55.35 is committed")
	f := r.SNP
	if f.LaunchDigest != "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3" {
		t.Errorf("launch digest = %s", f.LaunchDigest)
	}
	if got, want := f.ReportedTCB, (TCB{Raw: "de1b000000000004", Bootloader: 4, TEE: 0, SNP: 27, Microcode: 222}); got != want {
		t.Errorf("REPORTED_TCB = %+v, want %+v", got, want)
	}
	if f.Version != 5 || f.VMPL != 0 || f.ProductLine != "Milan" || f.Signer != "vcek" || f.ProvisionalFirmware || f.CurrentFirmware != "1.55.35" {
		t.Errorf("version %d VMPL %d line %s signer %s provisional %v firmware %s", f.Version, f.VMPL, f.ProductLine, f.Signer, f.ProvisionalFirmware, f.CurrentFirmware)
	}
	full := mustVerifier(t, "snp-policy vmpl=0\nsnp-min-tcb snp=27 microcode=222", WithTime(gcpTime)).Verify(gcpSample(t), bytes.Repeat([]byte{1}, 32))
	if failed := full.Checks.Failed(); len(failed) != 1 || failed[0].Name != check.NonceBinding {
		t.Errorf("Verify(GCP sample) failed %v, want only the nonce binding", failed)
	}

	// The chain Google publishes beside the sample is AMD's, byte for byte
	// the one attestlog embeds.
	pc := &trust.ProductCerts{}
	if err := pc.FromKDSCertBytes(cloudFile(t, "gcp-snp/sev-gcp-cert-chain.pem")); err != nil {
		t.Fatal(err)
	}
	emb := embeddedSNPRoots()["Milan"][0].certs
	if !pc.Ask.Equal(emb.Ask) || !pc.Ark.Equal(emb.Ark) {
		t.Error("the GCP sample's ASK/ARK differ from the embedded Milan ones")
	}

	for _, tc := range []sampleCase{
		{"flipped signed byte", "", gcpTime, func(b *evidence.Bundle) { b.Report[0x50] ^= 0x80 }, check.HardwareChain, "signature"},
		{"VCEK expired", "", time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC), nil, check.HardwareChain, "expired"},
		{"no VCEK", "", gcpTime, func(b *evidence.Bundle) { b.VCEK = nil }, check.HardwareChain, "no VCEK certificate"},
		{"another chip's VCEK", "", gcpTime, func(b *evidence.Bundle) { b.VCEK = snpSample().VCEK }, check.HardwareChain, ""},
		{"VMPL limit", "snp-policy vmpl=1", gcpTime, nil, check.GuestPolicy, "VMPL 0 is not 1"},
		{"TCB floor", "snp-min-tcb snp=28", gcpTime, nil, check.TCBFloors, "snp 27 < 28"},
		{"only another ARK's CRL", "crl milan.crl", gcpTime, nil, check.Revocation, "names no VCEK CRL issued by ARK-Milan"},
	} {
		refuse(t, gcpSample, tc)
	}
}

func turinVCEK(t testing.TB) *x509.Certificate {
	c, err := x509.ParseCertificate(cloudFile(t, "turin/vcek_turin.der"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTurinVCEK holds AMD's Turin VCEK (struct version 1) to the README's
// facts, and its chain to AMD's Turin ASK/ARK, which attestlog embeds.
func TestTurinVCEK(t *testing.T) {
	c := turinVCEK(t)
	// Why amdkds.go exists: go-sev-guest v0.15.0 cannot read it.
	if _, err := kds.VcekCertificateExtensions(c); err == nil || !strings.Contains(err.Error(), "1.3.6.1.4.1.3704.1.3.9") {
		t.Errorf("go-sev-guest reads the Turin VCEK (%v): amdkds.go may no longer be needed", err)
	}
	if kdsStructVersion(c) != 1 {
		t.Fatalf("struct version = %d, want 1", kdsStructVersion(c))
	}
	if err := checkKDSCert(c, abi.VcekReportSigner); err != nil {
		t.Errorf("checkKDSCert = %v", err)
	}
	ext, err := parseKDSv1(c, abi.VcekReportSigner)
	if err != nil {
		t.Fatal(err)
	}
	tcb := layoutTurin.decode(ext.TCB)
	if ext.ProductName != "Turin" || ext.ProductLine != "Turin" || hex.EncodeToString(ext.HWID) != "1e550a8ee5cf9f4d" ||
		tcb != (TCB{Raw: "0900000000000000", FMC: tcb.FMC, Microcode: 9}) || tcb.FMC == nil || *tcb.FMC != 0 {
		t.Errorf("Turin VCEK = %+v (TCB %+v), want Turin, hwID 1e550a8ee5cf9f4d, FMC=0 BL=0 TEE=0 SNP=0 ucode=9", ext, tcb)
	}
	if _, err := parseKDSv1(c, abi.VlekReportSigner); err == nil {
		t.Error("parseKDSv1(VCEK as a VLEK) succeeded")
	}

	// AMD's Turin ASK/ARK as published beside it are the embedded ones,
	// and certify it.
	pc := &trust.ProductCerts{}
	if err := pc.FromKDSCertBytes(cloudFile(t, "turin/cert_chain_turin")); err != nil {
		t.Fatal(err)
	}
	emb := embeddedSNPRoots()["Turin"][0].certs
	if !pc.Ask.Equal(emb.Ask) || !pc.Ark.Equal(emb.Ark) {
		t.Error("the sample's Turin ASK/ARK differ from the embedded ones")
	}
	if _, err := c.Verify(*emb.X509Options(turinTime, abi.VcekReportSigner)); err != nil {
		t.Errorf("Turin VCEK does not chain to the embedded ARK-Turin: %v", err)
	}
	if _, err := c.Verify(*emb.X509Options(time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC), abi.VcekReportSigner)); err == nil {
		t.Error("Turin VCEK verifies after it expired")
	}
	if _, err := c.Verify(*embeddedSNPRoots()["Milan"][0].certs.X509Options(turinTime, abi.VcekReportSigner)); err == nil {
		t.Error("Turin VCEK chains to ARK-Milan")
	}

	// The struct-version-0 view go-sev-guest's validate reads carries the
	// same TCB bytes and the hwID as a 64-byte CHIP_ID.
	rep := make([]byte, abi.ReportSize)
	rep[0x0a] = 0x02 // POLICY bit 17, reserved, must be 1
	att, _, err := snpAttestation(&evidence.Bundle{Format: evidence.Format, Platform: evidence.SEVSNP, Report: rep, VCEK: c.Raw})
	if err != nil {
		t.Fatal(err)
	}
	view, err := v0View(att, ext, abi.VcekReportSigner)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := x509.ParseCertificate(view.GetCertificateChain().GetVcekCert())
	if err != nil {
		t.Fatal(err)
	}
	vext, err := kds.VcekCertificateExtensions(vc)
	if err != nil {
		t.Fatal(err)
	}
	wantHW := append(bytes.Clone(ext.HWID), make([]byte, 56)...)
	if uint64(vext.TCBVersion) != ext.TCB || !bytes.Equal(vext.HWID, wantHW) {
		t.Errorf("view: TCB %x hwID %x, want %x %x", vext.TCBVersion, vext.HWID, ext.TCB, wantHW)
	}
}

// TestTurinLayout reads TCB_VERSION values with each line's layout
// against the byte positions AMD documents (SEV-SNP ABI; KDS 57230).
func TestTurinLayout(t *testing.T) {
	// bytes 0..7 = 01 02 03 04 05 06 07 08 (little-endian uint64).
	const v = 0x0807060504030201
	if got, want := layoutTurin.decode(v), (TCB{Raw: "0807060504030201", FMC: u8(1), Bootloader: 2, TEE: 3, SNP: 4, Microcode: 8}); got.String() != want.String() || got.Raw != want.Raw {
		t.Errorf("Turin decode = %s, want %s", got, want)
	}
	if got := layoutMilan.decode(v); got.String() != "bootloader=1 tee=2 snp=7 microcode=8" {
		t.Errorf("Milan decode = %s", got)
	}
	if layoutOf("Genoa") != layoutMilan || layoutOf("Turin") != layoutTurin {
		t.Error("layoutOf")
	}
}

func turinEnclave(t testing.TB, opts ...fakeenclave.Option) (*fakeenclave.Enclave, *evidence.Bundle, []byte) {
	t.Helper()
	e, err := fakeenclave.NewTurin(measurement(7), opts...)
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{3}, 32)
	b, err := e.Evidence(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	return e, b, nonce
}

// TestSyntheticTurin runs the Turin path end to end on evidence the demo
// signer makes under a TEST root (no Turin report with its VCEK is
// public): a struct-version-1 VCEK shaped as AMD's sample, the report's
// TCB in Turin's layout.
func TestSyntheticTurin(t *testing.T) {
	e, b, nonce := turinEnclave(t)
	// The demo VCEK reads as AMD's does.
	c := e.EndorsementKeyCert()
	if kdsStructVersion(c) != 1 {
		t.Fatal("demo Turin VCEK is not struct version 1")
	}
	r := fakeVerifier(t, e, "snp-min-tcb turin fmc=1 bootloader=2 tee=3 snp=4 microcode=5").Verify(b, nonce)
	if !r.OK() {
		t.Fatalf("Verify(synthetic Turin) failed:\n%s", r.Checks)
	}
	want(t, r, check.HardwareChain, true, "KDS struct version 1: Turin, TCB fmc=1 bootloader=2 tee=3 snp=4 microcode=5")
	want(t, r, check.TCBFloors, true, "snp-min-tcb turin")
	f := r.SNP
	// Turin: byte 0 FMC, 1 bootloader, 2 TEE, 3 SNP, 7 microcode.
	if f.ProductLine != "Turin" || f.ReportedTCB.Raw != "0500000004030201" || f.ReportedTCB.String() != "fmc=1 bootloader=2 tee=3 snp=4 microcode=5" {
		t.Errorf("line %s REPORTED_TCB %s (%s)", f.ProductLine, f.ReportedTCB.Raw, f.ReportedTCB)
	}
	if rep := b.Report; hex.EncodeToString(rep[0x180:0x188]) != "0102030400000005" {
		t.Errorf("REPORTED_TCB bytes %x", rep[0x180:0x188])
	}

	for _, tc := range []struct {
		name   string
		opts   []fakeenclave.Option
		policy string
		mutate func(*evidence.Bundle)
		nonce  []byte
		check  string
		reason string
	}{
		{"FMC below floor", nil, "snp-min-tcb turin fmc=2", nil, nil, check.TCBFloors, "fmc 1 < 2"},
		// Milan's layout would read snp from byte 6 (0) and pass this.
		{"SNP below floor, Turin's byte 3", nil, "snp-min-tcb turin snp=5", nil, nil, check.TCBFloors, "snp 4 < 5"},
		{"Milan floor only", nil, "snp-min-tcb milan snp=1", nil, nil, check.TCBFloors, "none for Turin"},
		{"flipped signed byte", nil, "", func(b *evidence.Bundle) { b.Report[0x95] ^= 4 }, nil, check.HardwareChain, "signature"},
		{"wrong nonce", nil, "", nil, bytes.Repeat([]byte{4}, 32), check.NonceBinding, "not produced for this request"},
		{"REPORTED_TCB not the VCEK's", []fakeenclave.Option{fakeenclave.WithSNPReportedTCB(fakeenclave.SNPTCB{FMC: 1, Bootloader: 2, TEE: 3, SNP: 5, Microcode: 5})}, "", nil, nil, check.ReportConsistency, "does not match"},
		{"CHIP_ID not the VCEK's hwID", []fakeenclave.Option{fakeenclave.WithSNPChipID(bytes.Repeat([]byte{1}, 64))}, "", nil, nil, check.ReportConsistency, "CHIP_ID"},
		{"provisional firmware", []fakeenclave.Option{fakeenclave.WithSNPCurrentTCB(fakeenclave.SNPTCB{FMC: 1, Bootloader: 2, TEE: 3, SNP: 5, Microcode: 5})}, "", nil, nil, check.FirmwareCommitted, "fmc=1 bootloader=2 tee=3 snp=5"},
		{"committed above current", []fakeenclave.Option{fakeenclave.WithSNPCommittedTCB(fakeenclave.SNPTCB{FMC: 2, Bootloader: 2, TEE: 3, SNP: 4, Microcode: 5})}, "snp-allow-provisional-firmware", nil, nil, check.ReportConsistency, "COMMITTED_TCB"},
		{"no VCEK", nil, "", func(b *evidence.Bundle) { b.CertTable = nil }, nil, check.HardwareChain, "no VCEK certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, b, n := turinEnclave(t, tc.opts...)
			if tc.mutate != nil {
				tc.mutate(b)
			}
			if tc.nonce != nil {
				n = tc.nonce
			}
			r := fakeVerifier(t, e, tc.policy).Verify(b, n)
			want(t, r, tc.check, false, tc.reason)
		})
	}
	t.Run("expired VCEK", func(t *testing.T) {
		late := fakeVerifier(t, e, "", WithTime(c.NotAfter.Add(time.Hour)))
		want(t, late.Verify(b, nonce), check.HardwareChain, false, "expired")
	})
	t.Run("Turin VCEK on a Milan CPU", func(t *testing.T) {
		b2 := *b
		b2.Report = bytes.Clone(b.Report)
		// CPUID_FAM_ID/MOD_ID at 0x188: a Milan's. Signed, so the
		// signature fails too; the product check comes first.
		b2.Report[0x188], b2.Report[0x189] = 0x19, 0x01
		want(t, fakeVerifier(t, e, "").Verify(&b2, nonce), check.HardwareChain, false, "Milan CPU")
	})
	t.Run("root of another product line", func(t *testing.T) {
		// The demo enclaves share their keys: this ARK-Milan and ASK
		// hold the keys that signed the Turin VCEK, under Milan's names.
		m, _ := fakeenclave.NewSNP(measurement(7))
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "root.pem"), m.RootPEM(), 0o644)
		want(t, mustVerifier(t, "trust-root sev-snp root.pem", WithBaseDir(dir)).Verify(b, nonce), check.HardwareChain, false, "unknown authority")
	})
}

// TestSyntheticAWS: the demo signer playing AWS (VLEK under a test ASVK,
// provisional firmware), through the same checks as the real sample, and
// the VLEK CRL, which no real sample carries.
func TestSyntheticAWS(t *testing.T) {
	nonce := bytes.Repeat([]byte{6}, 32)
	e, err := fakeenclave.NewAWS(measurement(8))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Evidence(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	v := fakeVerifier(t, e, "snp-allow-provisional-firmware")
	r := v.Verify(b, nonce)
	if !r.OK() {
		t.Fatalf("Verify(demo AWS) failed:\n%s", r.Checks)
	}
	if r.SNP.Signer != "vlek" || r.SNP.CSPID != fakeenclave.AWSCSPID || !r.SNP.ProvisionalFirmware {
		t.Errorf("signer %s CSP_ID %s provisional %v", r.SNP.Signer, r.SNP.CSPID, r.SNP.ProvisionalFirmware)
	}
	want(t, fakeVerifier(t, e, "").Verify(b, nonce), check.FirmwareCommitted, false, "snp-allow-provisional-firmware")
	want(t, v.Verify(b, bytes.Repeat([]byte{7}, 32)), check.NonceBinding, false, "not produced for this request")

	now := time.Now()
	for _, tc := range []struct {
		name   string
		crl    string // policy line, FILE = the CRL
		next   time.Time
		revoke bool
		ok     bool
		reason string
	}{
		{"fresh VLEK CRL", "crl vlek FILE", now.Add(24 * time.Hour), false, true, "VLEK CRL FILE (signed by ARK-Milan"},
		{"VLEK revoked", "crl vlek FILE", now.Add(24 * time.Hour), true, false, "revokes SEV-VLEK"},
		{"stale VLEK CRL", "crl vlek FILE", now.Add(-time.Hour), false, false, "VLEK CRL FILE expired"},
		{"VLEK CRL named as a VCEK CRL", "crl FILE", now.Add(24 * time.Hour), false, false, "names no VLEK CRL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := crlVerifier(t, e, now.Add(-48*time.Hour), tc.next, tc.revoke, tc.crl, "FILE")
			want(t, v.Verify(b, nonce), check.Revocation, tc.ok, tc.reason)
		})
	}
	t.Run("committed above current", func(t *testing.T) {
		e, _ := fakeenclave.NewAWS(measurement(8), fakeenclave.WithSNPCommittedTCB(fakeenclave.SNPTCB{Bootloader: 3, SNP: 20, Microcode: 213}))
		b, _ := e.Evidence(context.Background(), nonce)
		r := fakeVerifier(t, e, "snp-allow-provisional-firmware").Verify(b, nonce)
		want(t, r, check.ReportConsistency, false, "COMMITTED_TCB")
		want(t, r, check.FirmwareCommitted, false, "not evaluated")
	})
}

// TestEmbeddedAMDRoots pins the AMD roots attestlog trusts without a
// policy line: go-sev-guest v0.15.0's verify/trust/*.pem, copies of AMD
// KDS's /vcek/v1/LINE/cert_chain and /vlek/v1/LINE/cert_chain. The Milan
// and Turin ones also equal what the cloud samples ship beside their
// evidence (TestGCPSample, TestTurinVCEK), and the AWS VLEK verifies
// under SEV-VLEK-Milan (TestAWSVLEKSample).
func TestEmbeddedAMDRoots(t *testing.T) {
	fp := func(c *x509.Certificate) string {
		if c == nil {
			return "none"
		}
		h := sha256.Sum256(c.Raw)
		return hex.EncodeToString(h[:])
	}
	for line, want := range map[string][3]string{
		"Milan": {"69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd", "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b", "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5"},
		"Genoa": {"4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1", "", "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372"},
		"Turin": {"1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a", "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185", "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c"},
	} {
		c := embeddedSNPRoots()[line][0].certs
		got := [3]string{fp(c.Ark), fp(c.Ask), fp(c.Asvk)}
		if want[1] == "" {
			got[1] = "" // the Genoa ASK: pinned by go-sev-guest only
		}
		if got != want {
			t.Errorf("%s ARK/ASK/ASVK = %v, want %v", line, got, want)
		}
		if c.Asvk.Subject.CommonName != "SEV-VLEK-"+line || c.Asvk.CheckSignatureFrom(c.Ark) != nil {
			t.Errorf("%s ASVK %q not issued by its ARK", line, c.Asvk.Subject.CommonName)
		}
	}
}

// FuzzKDSv1 feeds certificates (DER, at most evidence.MaxCertSize) to the
// struct-version-1 extension parser. What it accepts must read back the
// same through go-sev-guest's own parser of the struct-version-0 view
// that validate is handed: the TCB bytes and the hwID as CHIP_ID.
func FuzzKDSv1(f *testing.F) {
	f.Add(cloudFile(f, "turin/vcek_turin.der"))
	f.Add(cloudFile(f, "aws-snp/test-vlek.der"))
	// testdata/fuzz/FuzzKDSv1 holds a Turin VCEK and a Turin VLEK as the
	// demo signer makes them (its RSA keys are too slow to make in each
	// fuzz worker).
	rep := make([]byte, abi.ReportSize)
	rep[0x0a] = 0x02
	f.Fuzz(func(t *testing.T, der []byte) {
		if len(der) > evidence.MaxCertSize {
			return
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		kdsStructVersion(c)
		for _, key := range []abi.ReportSigner{abi.VcekReportSigner, abi.VlekReportSigner, abi.NoneReportSigner} {
			ext, err := parseKDSv1(c, key)
			if err != nil {
				continue
			}
			if ext.ProductLine != "Turin" || (key == abi.VcekReportSigner) != (len(ext.HWID) == TurinHWIDSize) || (key == abi.VlekReportSigner) != (ext.CSPID != "") {
				t.Fatalf("parseKDSv1(%v) accepted %+v", key, ext)
			}
			att, _, err := snpAttestation(&evidence.Bundle{Format: evidence.Format, Platform: evidence.SEVSNP, Report: rep, VCEK: der})
			if err != nil {
				t.Fatal(err)
			}
			view, err := v0View(att, ext, key)
			if err != nil {
				// A fmc/bootloader/tee/snp above 127 cannot be written in
				// Milan's positions; validate then refuses the report.
				continue
			}
			vc, err := x509.ParseCertificate(append(view.GetCertificateChain().GetVcekCert(), view.GetCertificateChain().GetVlekCert()...))
			if err != nil {
				t.Fatal(err)
			}
			vext, err := kds.CertificateExtensions(vc, key)
			if err != nil {
				if tcb := ext.TCB; tcbByte(tcb, 0) > 127 || tcbByte(tcb, 1) > 127 || tcbByte(tcb, 2) > 127 || tcbByte(tcb, 3) > 127 {
					continue // go-sev-guest refuses SPLs above 127 but microcode's
				}
				t.Fatalf("go-sev-guest cannot read the view of %+v: %v", ext, err)
			}
			if uint64(vext.TCBVersion) != ext.TCB || vext.CspID != ext.CSPID || (key == abi.VcekReportSigner && !bytes.Equal(vext.HWID[:TurinHWIDSize], ext.HWID)) {
				t.Fatalf("view reads TCB %x hwID %x CSP_ID %q, want %x %x %q", vext.TCBVersion, vext.HWID, vext.CspID, ext.TCB, ext.HWID, ext.CSPID)
			}
		}
	})
}
