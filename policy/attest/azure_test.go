package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/channel/keyset"
	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/vtpm"
)

// Evidence recorded on Azure confidential VMs (policy/vtpm/testdata): a
// Milan and a Genoa SEV-SNP CVM, a Sapphire Rapids TDX CVM. All their
// certificates are valid on azureTime.
var azureTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

const (
	azureMilan = "../vtpm/testdata/azure-snp/evidence-v2.json"
	azureGenoa = "../vtpm/testdata/azure-snp/evidence-genoa.json"
	azureTDX   = "../vtpm/testdata/azure-tdx/evidence-v1.json"
)

func azureSample(t testing.TB, file string) *evidence.Bundle {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := evidence.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return b
}

// nonceOf is the extraData each sample's TPM quote answers.
func nonceOf(t testing.TB, b *evidence.Bundle) []byte {
	q, err := vtpm.ParseQuote(b.VTPM.Quote, b.VTPM.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return q.ExtraData
}

func TestAzureSamples(t *testing.T) {
	// The TDX sample comes with no Intel collateral.
	v := mustVerifier(t, "tdx-tcb-status unchecked", WithTime(azureTime))
	for _, tc := range []struct {
		file, measurement, ak, pcr7, line string
	}{
		{azureMilan, "5b0ce64ad1c1f637", "21cc573de727d7c6", "f014e5cbfa297ee787a976abc51bc1d67e23e1b9e4a60128a1106dd0adef0c5b", "Milan"},
		{azureGenoa, "f57dc09a507c6ecd", "470adc365b667e2d", "", "Genoa"},
		{azureTDX, "024a32b070383331", "b65400f6602deed0", "", ""},
	} {
		b := azureSample(t, tc.file)
		in := v.InspectNonce(b, evidence.KindAzureTrustee, nonceOf(t, b))
		if !in.OK() {
			t.Errorf("%s does not verify:\n%s", tc.file, in.Checks)
			continue
		}
		for _, name := range []string{VTPMFormat, check.HardwareChain, check.ReportConsistency, ClaimsBinding, QuoteSignature, QuoteFresh, PCRValues, EventLogReplay} {
			if _, ok := in.Checks.Find(name); !ok {
				t.Errorf("%s: no %q check in\n%s", tc.file, name, in.Checks)
			}
		}
		if !strings.HasPrefix(in.Measurement(), tc.measurement) || !strings.HasPrefix(in.VTPM.AK, tc.ak) || len(in.VTPM.PCRs) != 24 {
			t.Errorf("%s: measurement %s, AK %s, %d PCRs; want %s…, %s…, 24", tc.file, in.Measurement(), in.VTPM.AK, len(in.VTPM.PCRs), tc.measurement, tc.ak)
		}
		if tc.pcr7 != "" && in.VTPM.PCRs["7"] != tc.pcr7 {
			t.Errorf("%s: PCR 7 %s, want %s", tc.file, in.VTPM.PCRs["7"], tc.pcr7)
		}
		if tc.line != "" && in.SNP.ProductLine != tc.line {
			t.Errorf("%s: product line %q, want %q", tc.file, in.SNP.ProductLine, tc.line)
		}
		var out bytes.Buffer
		if err := in.WriteText(&out); err != nil || !strings.Contains(out.String(), "vtpm.pcr23") || !strings.Contains(out.String(), "vtpm.ak  ") {
			t.Errorf("%s: WriteText = %v\n%s", tc.file, err, out.String())
		}
	}
}

// TestAzureNegatives: each one-piece change to real evidence is refused
// by its own check, and the others still pass.
func TestAzureNegatives(t *testing.T) {
	v := mustVerifier(t, "", WithTime(azureTime))
	flip := func(b []byte, off int) []byte {
		out := bytes.Clone(b)
		out[off] ^= 1
		return out
	}
	claimsAt := func(b *evidence.Bundle, s string) int {
		return vtpm.RuntimeClaimsOffset + bytes.Index(b.VTPM.HCLReport[vtpm.RuntimeClaimsOffset:], []byte(s))
	}
	for _, tc := range []struct {
		name   string
		file   string
		change func(b *evidence.Bundle) []byte // returns the nonce to check
		fails  string
		reason string
	}{
		{"SNP report byte (MEASUREMENT)", azureMilan, func(b *evidence.Bundle) []byte {
			b.VTPM.HCLReport = flip(b.VTPM.HCLReport, vtpm.HCLHeaderSize+0x90)
			return nonceOf(t, b)
		}, check.HardwareChain, "signature"},
		{"runtime claims byte", azureMilan, func(b *evidence.Bundle) []byte {
			b.VTPM.HCLReport = flip(b.VTPM.HCLReport, claimsAt(b, "7DF7B373"))
			return nonceOf(t, b)
		}, ClaimsBinding, "not SHA-256 of the runtime claims"},
		{"TD quote byte (MRTD)", azureTDX, func(b *evidence.Bundle) []byte {
			b.Quote = flip(b.Quote, 48+136)
			return nonceOf(t, b)
		}, check.HardwareChain, ""},
		{"TDREPORT of another TD", azureTDX, func(b *evidence.Bundle) []byte {
			b.VTPM.HCLReport = flip(b.VTPM.HCLReport, vtpm.HCLHeaderSize+512+16)
			return nonceOf(t, b)
		}, ClaimsBinding, "mixes two TDs"},
		{"TPM quote byte (clock)", azureMilan, func(b *evidence.Bundle) []byte {
			n := nonceOf(t, b)
			b.VTPM.Quote = flip(b.VTPM.Quote, 95)
			return n
		}, QuoteSignature, "does not verify"},
		{"TPM signature byte", azureGenoa, func(b *evidence.Bundle) []byte {
			b.VTPM.Signature = flip(b.VTPM.Signature, 100)
			return nonceOf(t, b)
		}, QuoteSignature, "does not verify"},
		{"wrong nonce", azureTDX, func(b *evidence.Bundle) []byte {
			return []byte("challengf")
		}, QuoteFresh, "not made for this request"},
		{"quote by another AK", azureMilan, func(b *evidence.Bundle) []byte {
			o := azureSample(t, azureGenoa)
			b.VTPM.Quote, b.VTPM.Signature, b.VTPM.PCRs = o.VTPM.Quote, o.VTPM.Signature, o.VTPM.PCRs
			return nonceOf(t, b)
		}, QuoteSignature, "does not verify with the attestation key"},
		{"PCR value", azureGenoa, func(b *evidence.Bundle) []byte {
			b.VTPM.PCRs[11] = flip(b.VTPM.PCRs[11], 0)
			return nonceOf(t, b)
		}, PCRValues, "not the quote's pcrDigest"},
		{"no VCEK", azureMilan, func(b *evidence.Bundle) []byte {
			b.VCEK = nil
			return nonceOf(t, b)
		}, check.HardwareChain, "no VCEK certificate"},
		{"a PCR missing", azureMilan, func(b *evidence.Bundle) []byte {
			b.VTPM.PCRs = b.VTPM.PCRs[:23]
			return nonceOf(t, b)
		}, VTPMFormat, "23 PCR values for the 24 PCRs"},
		{"event log that does not replay", azureMilan, func(b *evidence.Bundle) []byte {
			b.VTPM.EventLog = []byte{0, 0, 0, 0, 3, 0, 0, 0}
			return nonceOf(t, b)
		}, EventLogReplay, "event log"},
		{"HCL report of the other platform", azureMilan, func(b *evidence.Bundle) []byte {
			b.VTPM.HCLReport = azureSample(t, azureTDX).VTPM.HCLReport
			return nonceOf(t, b)
		}, VTPMFormat, "holds a TDX report"},
	} {
		b := azureSample(t, tc.file)
		nonce := tc.change(b)
		in := v.InspectNonce(b, evidence.KindAzureTrustee, nonce)
		c, ok := in.Checks.Find(tc.fails)
		if !ok || c.OK || !strings.Contains(c.Reason, tc.reason) {
			t.Errorf("%s: check %q = %+v, want a failure containing %q\n%s", tc.name, tc.fails, c, tc.reason, in.Checks)
		}
		if _, ok := in.Checks.Find(QuoteLibrary); ok {
			t.Errorf("%s: go-tpm-tools disagrees with the separate checks:\n%s", tc.name, in.Checks)
		}
	}
	// A bundle missing its vtpm object, or a TD quote, does not parse.
	b := azureSample(t, azureTDX)
	b.Quote = nil
	if err := b.Check(); err == nil || !strings.Contains(err.Error(), "TD quote") {
		t.Errorf("azure-tdx without its TD quote: Check = %v", err)
	}
	b = azureSample(t, azureMilan)
	b.VTPM = nil
	if err := b.Check(); err == nil || !strings.Contains(err.Error(), "without its vtpm object") {
		t.Errorf("azure-sev-snp without vtpm: Check = %v", err)
	}
}

// TestAzurePolicy: the client decision refuses Azure evidence unless the
// policy names the platform, and refuses the recorded samples' user data
// (it binds the recording tool's data, not attestlog's REPORT_DATA).
func TestAzurePolicy(t *testing.T) {
	b := azureSample(t, azureMilan)
	nonce := nonceOf(t, b)
	r := mustVerifier(t, "", WithTime(azureTime)).Verify(b, nonce)
	want(t, r, check.PlatformAllowed, false, "add a 'platform azure-sev-snp' line")
	want(t, r, QuoteFresh, true, "")
	want(t, r, check.NonceBinding, false, "does not bind the nonce")
	r = mustVerifier(t, "platform azure-sev-snp", WithTime(azureTime)).Verify(b, nonce)
	want(t, r, check.PlatformAllowed, true, "paravisor")
	want(t, r, check.GuestPolicy, true, "")
	want(t, r, check.NonceBinding, false, "user-data 982f5c6e45df0ed3")
	if n := len(r.Checks.Failed()); n != 1 {
		t.Errorf("%d checks failed, want only the nonce binding:\n%s", n, r.Checks)
	}
	r = mustVerifier(t, "platform sev-snp tdx azure-tdx", WithTime(azureTime)).Verify(b, []byte("a different nonce, 32 bytes long"))
	want(t, r, check.PlatformAllowed, false, "not azure-sev-snp")
	want(t, r, QuoteFresh, false, hex.EncodeToString(nonce[:8]))
}

// TestAzureKeySetQuoteFresh: in an attestation document (a key set, no
// per-request nonce) the vTPM quote must answer SHA-256 of the document's
// REPORT_DATA: a quote made for another key set, for no nonce, or for
// the key set without the challenge's nonce is refused by the quote
// freshness check, the rest of the evidence being good.
func TestAzureKeySetQuoteFresh(t *testing.T) {
	enc, err := fakeenclave.NewAzureSNP(bytes.Repeat([]byte{0x5a}, 48))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), enc.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v := mustVerifier(t, "platform azure-sev-snp\ntrust-root sev-snp root.pem\n", WithBaseDir(dir), WithTime(now))
	keySet := func(spki string) []byte {
		ks := &keyset.KeySet{NotBefore: now.Add(-time.Minute).Truncate(time.Second), NotAfter: now.Add(time.Hour).Truncate(time.Second),
			TLSSPKIHash: sha256.Sum256([]byte(spki)),
			HPKE:        []keyset.KeyConfig{{ID: 1, KEM: keyset.KEMX25519, PublicKey: bytes.Repeat([]byte{9}, 32), Symmetric: []keyset.Symmetric{{KDF: 1, AEAD: 1}}}}}
		b, err := ks.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ks, other := keySet("ours"), keySet("another")
	challenge := bytes.Repeat([]byte{7}, 32)
	rd := func(ks, nonce []byte) [64]byte {
		r, err := evidence.KeySetReportData(ks, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	doc := func(extra []byte, userData [64]byte) *evidence.Bundle {
		b, err := enc.AzureEvidence(extra, userData)
		if err != nil {
			t.Fatal(err)
		}
		b.Format, b.KeySet = evidence.FormatKeySet, ks
		return b
	}
	for _, tc := range []struct {
		name   string
		b      *evidence.Bundle
		nonce  []byte
		ok     bool
		reason string
	}{
		{"the document's own", doc(evidence.KeySetQuoteData(rd(ks, nil)), rd(ks, nil)), nil, true, "as fresh as the key set"},
		{"a challenge's", doc(evidence.KeySetQuoteData(rd(ks, challenge)), rd(ks, challenge)), challenge, true, "the nonce and the key set"},
		{"a quote of another key set", doc(evidence.KeySetQuoteData(rd(other, nil)), rd(ks, nil)), nil, false, "not made for this key set"},
		{"a quote of no extraData", doc(nil, rd(ks, nil)), nil, false, "not made for this key set"},
		{"a quote of the nonce itself", doc(challenge, rd(ks, challenge)), challenge, false, "not made for this key set"},
		{"a challenge answered with the document's quote", doc(evidence.KeySetQuoteData(rd(ks, nil)), rd(ks, challenge)), challenge, false, "not made for this key set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := v.Verify(tc.b, tc.nonce)
			want(t, r, QuoteFresh, tc.ok, tc.reason)
			want(t, r, check.NonceBinding, true, "")
			if r.OK() != tc.ok {
				t.Errorf("verdict OK = %v, want %v:\n%s", r.OK(), tc.ok, r.Checks)
			}
		})
	}
}
