package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	epb "github.com/google/gce-tcb-verifier/proto/endorsement"
	"github.com/google/gce-tcb-verifier/testing/devkeys"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
)

// gcpVerifier trusts e's hardware root and, when gceRoot is set, that
// file as the endorsement root.
func gcpVerifier(t *testing.T, e *fakeenclave.Enclave, gceRoot []byte, text string, opts ...Option) *Verifier {
	t.Helper()
	if gceRoot != nil {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "gce.pem"), gceRoot, 0o644); err != nil {
			t.Fatal(err)
		}
		text += "\ntrust-root gce-tcb " + filepath.Join(dir, "gce.pem")
	}
	return fakeVerifier(t, e, text, opts...)
}

// TestFakeGCPTDX: the demo's Google Cloud TD verifies with its event log
// and endorsement; each broken piece is refused with its own reason.
func TestFakeGCPTDX(t *testing.T) {
	w := fakeenclave.GCPWorkload{Kernel: []byte("vmlinuz"), Cmdline: "console=ttyS0"}
	e, err := fakeenclave.NewGCPTDX(measurement(6), w)
	if err != nil {
		t.Fatal(err)
	}
	stapleCollateral(t, e)
	nonce := bytes.Repeat([]byte{6}, 32)
	b, err := e.Evidence(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	v := gcpVerifier(t, e, e.EndorsementRootPEM(), "")
	r := v.Verify(b, nonce)
	if !r.OK() {
		t.Fatalf("does not verify:\n%s", r.Checks)
	}
	want(t, r, check.EventLog, true, "the 4 events of the stapled CC event log replay to the quote's RTMR0-3 (2, 1, 1 and 0 events)")
	want(t, r, check.FirmwareEndorsement, true, "endorses the firmware: MRTD 0606060606060606… for 8 GiB RAM, svn 2")
	if r.Endorsement == nil || r.Endorsement.Signer != "GCE-uefi-signer" {
		t.Errorf("endorsement = %+v", r.Endorsement)
	}

	other, err := fakeenclave.NewGCPTDX(measurement(7), w)
	if err != nil {
		t.Fatal(err)
	}
	otherEv, _ := other.Evidence(context.Background(), nonce)
	for _, tc := range []struct {
		name   string
		mutate func(b *evidence.Bundle)
		v      *Verifier
		check  string
		reason string
	}{
		{"no endorsement root", nil, fakeVerifier(t, e, ""), check.FirmwareEndorsement, "the policy trusts no firmware-endorsement root"},
		{"another root", nil, gcpVerifier(t, e, other.EndorsementRootPEM(), ""), check.FirmwareEndorsement, "endorsement certificate is invalid"},
		{"signature byte flipped", func(b *evidence.Bundle) { b.FirmwareEndorsement[len(b.FirmwareEndorsement)-1] ^= 1 }, v, check.FirmwareEndorsement, "endorsement signature is invalid"},
		{"another firmware's endorsement", func(b *evidence.Bundle) { b.FirmwareEndorsement = otherEv.FirmwareEndorsement }, gcpVerifier(t, e, other.EndorsementRootPEM(), ""), check.FirmwareEndorsement, "does not endorse MRTD 0606060606060606…"},
		{"not an endorsement", func(b *evidence.Bundle) { b.FirmwareEndorsement = []byte("\xff\xff") }, v, check.FirmwareEndorsement, "not a VMLaunchEndorsement"},
		{"expired signer", nil, gcpVerifier(t, e, e.EndorsementRootPEM(), "", WithTime(time.Now().AddDate(6, 0, 0))), check.FirmwareEndorsement, "expired"},
		{"event log of another workload", func(b *evidence.Bundle) {
			o, _ := fakeenclave.NewGCPTDX(measurement(6), fakeenclave.GCPWorkload{Kernel: []byte("vmlinuz"), Cmdline: "console=ttyS0 init=/bin/sh"})
			ob, _ := o.Evidence(context.Background(), nonce)
			b.EventLog = ob.EventLog
		}, v, check.EventLog, "RTMR2: replayed"},
		{"wrong nonce", func(b *evidence.Bundle) { b.Quote = otherEv.Quote }, v, check.HardwareChain, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *b
			c.FirmwareEndorsement = bytes.Clone(b.FirmwareEndorsement)
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			r := tc.v.Verify(&c, nonce)
			want(t, r, tc.check, false, tc.reason)
			if r.OK() {
				t.Error("verified")
			}
		})
	}
}

// TestFakeGCPSNP: the endorsement check on SEV-SNP evidence.
func TestFakeGCPSNP(t *testing.T) {
	e, err := fakeenclave.NewGCPSNP(measurement(8))
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{8}, 32)
	b, _ := e.Evidence(context.Background(), nonce)
	r := gcpVerifier(t, e, e.EndorsementRootPEM(), "").Verify(b, nonce)
	if !r.OK() {
		t.Fatalf("does not verify:\n%s", r.Checks)
	}
	want(t, r, check.FirmwareEndorsement, true, "MEASUREMENT 0808080808080808… for 4 vCPUs")
	o, _ := fakeenclave.NewGCPSNP(measurement(9))
	ob, _ := o.Evidence(context.Background(), nonce)
	b.FirmwareEndorsement = ob.FirmwareEndorsement
	want(t, gcpVerifier(t, e, o.EndorsementRootPEM(), "").Verify(b, nonce), check.FirmwareEndorsement, false, "does not match any golden measurement")
}

// TestEndorsementDevKeys: an endorsement of the real Google Cloud SEV-SNP
// sample's MEASUREMENT, signed with gce-tcb-verifier's own development
// keys (testing/devkeys: a GCE-cc-tcb-root and a GCE-uefi-signer it
// certifies, valid 2024-09-03 to 2029), verifies against that root, and
// its signature is what Google's documented openssl command accepts.
// No endorsement Google signed is published with a licence we can use, so
// Google's production root itself is not exercised here.
func TestEndorsementDevKeys(t *testing.T) {
	report := readCloud(t, "gcp-snp/sev-gcp.bin")
	blk, _ := pem.Decode(readCloud(t, "gcp-snp/sev-gcp-vcek.pem"))
	b := &evidence.Bundle{Format: evidence.Format, Platform: evidence.SEVSNP, Report: report, VCEK: blk.Bytes}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const gcpMeasurement = "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3"

	keyBlk, _ := pem.Decode(devkeys.PrimarySigningKeyPEM)
	k, err := x509.ParsePKCS8PrivateKey(keyBlk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	signerDER := devkeys.PrimarySigningKeyCert // DER, unlike RootCert
	m := report[0x90:0xC0]
	golden, err := proto.Marshal(&epb.VMGoldenMeasurement{
		Timestamp: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), Commit: bytes.Repeat([]byte{1}, 20),
		Cert: signerDER, Digest: bytes.Repeat([]byte{2}, 48),
		SevSnp: &epb.VMSevSnp{Svn: 1, Measurements: map[uint32][]byte{2: m}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(golden)
	sig, err := rsa.SignPSS(rand.Reader, k.(*rsa.PrivateKey), crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	b.FirmwareEndorsement, err = proto.Marshal(&epb.VMLaunchEndorsement{SerializedUefiGolden: golden, Signature: sig})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "root.crt"), devkeys.RootCert, 0o644)
	v := mustVerifier(t, "trust-root gce-tcb "+filepath.Join(dir, "root.crt"), WithTime(at))
	r := v.Inspect(b)
	if !r.OK() || r.Measurement() != gcpMeasurement {
		t.Fatalf("measurement %s; checks:\n%s", r.Measurement(), r.Checks)
	}
	want(t, r, check.FirmwareEndorsement, true, "MEASUREMENT b747d55452e0b9e9… for 2 vCPUs, svn 1")
	// One bit of the report's MEASUREMENT: the VCEK signature fails, and
	// the endorsement no longer names it.
	b.Report = bytes.Clone(report)
	b.Report[0x90] ^= 1
	r = v.Inspect(b)
	want(t, r, check.FirmwareEndorsement, false, "does not match any golden measurement")
	want(t, r, check.HardwareChain, false, "")

	// Google's documented check (gcetcbendorsement.OpensslVerifyShellCmd):
	// openssl pkeyutl -verify, RSA-PSS, salt 32, SHA-256 over the
	// serialized golden measurement.
	openssl := testenv.LookPath(t, "openssl")
	c, _ := x509.ParseCertificate(signerDER)
	pub, _ := x509.MarshalPKIXPublicKey(c.PublicKey)
	os.WriteFile(filepath.Join(dir, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
	os.WriteFile(filepath.Join(dir, "sig"), sig, 0o644)
	os.WriteFile(filepath.Join(dir, "digest"), h[:], 0o644)
	out, err := exec.Command(openssl, "pkeyutl", "-verify", "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32",
		"-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_mgf1_md:sha256", "-pubin", "-inkey", filepath.Join(dir, "pub.pem"),
		"-sigfile", filepath.Join(dir, "sig"), "-in", filepath.Join(dir, "digest")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Errorf("openssl: %v\n%s", err, out)
	}
}
