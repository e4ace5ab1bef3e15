package evidence

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
	sevtd "github.com/google/go-sev-guest/verify/testdata"
	tdxtd "github.com/google/go-tdx-guest/testing/testdata"
)

// certTable builds a GHCB certificate table holding blobs, with
// go-sev-guest's own marshaller.
func certTable(blobs ...[]byte) []byte {
	t := &abi.CertTable{}
	for i, b := range blobs {
		var e abi.CertTableEntry
		e.GUID[0] = byte(i + 1)
		e.RawCert = b
		t.Entries = append(t.Entries, e)
	}
	return t.Marshal()
}

func TestParseDetectsRawForms(t *testing.T) {
	table := certTable([]byte("vcek der"), []byte("ask der"))
	for _, tc := range []struct {
		name string
		in   []byte
		kind Kind
		plat string
	}{
		{"Milan report", sevtd.AttestationBytes, KindSNPReport, SEVSNP},
		{"report + cert table", append(bytes.Clone(sevtd.AttestationBytes), table...), KindSNPExtReport, SEVSNP},
		{"SPR quote", tdxtd.RawQuote, KindTDXQuote, TDX},
	} {
		b, kind, err := Parse(tc.in)
		if err != nil || kind != tc.kind || b.Platform != tc.plat {
			t.Errorf("Parse(%s) = %v, %q, %v; want %q on %s", tc.name, b, kind, err, tc.kind, tc.plat)
			continue
		}
		j, err := b.Marshal()
		if err != nil {
			t.Fatalf("Marshal(Parse(%s)) = %v", tc.name, err)
		}
		b2, kind, err := Parse(j)
		if err != nil || kind != KindBundle || !bytes.Equal(b2.Report, b.Report) || !bytes.Equal(b2.Quote, b.Quote) || !bytes.Equal(b2.CertTable, b.CertTable) {
			t.Errorf("Parse(Marshal(Parse(%s))) = %v, %q, %v; want the same evidence as a bundle", tc.name, b2, kind, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	snp := base64JSON(t, map[string]any{"format": Format, "platform": "sev-snp", "report": sevtd.AttestationBytes})
	overflow := make([]byte, 48)
	binary.LittleEndian.PutUint32(overflow[16:20], 0xffffff00) // offset
	binary.LittleEndian.PutUint32(overflow[20:24], 0x200)      // length: offset+length wraps in uint32
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not a JSON evidence bundle"},
		{"short report", sevtd.AttestationBytes[:1000], "not a JSON evidence bundle"},
		{"too big", make([]byte, MaxBundleSize+1), "the limit is"},
		{"unknown field", []byte(strings.Replace(string(snp), `"format"`, `"extra":1,"format"`, 1)), "unknown field"},
		{"trailing data", append(bytes.Clone(snp), []byte(` {}`)...), "trailing data"},
		{"wrong format", []byte(strings.Replace(string(snp), Format, "attestlog-evidence/v0", 1)), "format"},
		{"unknown platform", []byte(strings.Replace(string(snp), `"sev-snp"`, `"sgx"`, 1)), `platform "sgx"`},
		{"snp with quote", base64JSON(t, map[string]any{"format": Format, "platform": "sev-snp", "report": sevtd.AttestationBytes, "quote": tdxtd.RawQuote}), "TDX fields"},
		{"tdx with report", base64JSON(t, map[string]any{"format": Format, "platform": "tdx", "quote": tdxtd.RawQuote, "report": sevtd.AttestationBytes}), "SEV-SNP fields"},
		{"tdx without quote", base64JSON(t, map[string]any{"format": Format, "platform": "tdx"}), "not a TDX quote v4"},
		{"cert table overflow", append(bytes.Clone(sevtd.AttestationBytes), overflow...), "outside the table"},
		{"cert table unterminated", append(bytes.Clone(sevtd.AttestationBytes), certTable([]byte("x"))[:24]...), "outside the table"},
		{"huge proof", base64JSON(t, map[string]any{"format": Format, "platform": "sev-snp", "report": sevtd.AttestationBytes, "proof": strings.Repeat("a", MaxProofSize+1)}), "proof is"},
	} {
		_, _, err := Parse(tc.in)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want ErrMalformed containing %q", tc.name, err, tc.want)
		}
	}
}

func base64JSON(t *testing.T, m map[string]any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReportData(t *testing.T) {
	n := bytes.Repeat([]byte{1}, 32)
	a, err := ReportData(n, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		nonce, key []byte
	}{
		{"other nonce", bytes.Repeat([]byte{2}, 32), nil},
		{"with a key", n, []byte("k")},
		// The length prefix keeps the nonce/key boundary unambiguous.
		{"nonce byte moved into the key", n[:31], append([]byte{1}, nil...)},
	} {
		got, err := ReportData(tc.nonce, tc.key)
		if err == nil && got == a {
			t.Errorf("ReportData(%s) = ReportData(nonce, nil)", tc.name)
		}
	}
	// Independent recomputation of the documented formula.
	want := sha512Of(append(append([]byte("attestlog-evidence-v1\x00"), 32), n...))
	if !bytes.Equal(a[:], want) {
		t.Errorf("ReportData = %x, want SHA-512(domain || 32 || nonce) = %x", a, want)
	}
	for _, bad := range [][]byte{nil, make([]byte, MinNonceSize-1), make([]byte, MaxNonceSize+1)} {
		if _, err := ReportData(bad, nil); !errors.Is(err, ErrNonce) {
			t.Errorf("ReportData(%d-byte nonce) = %v, want ErrNonce", len(bad), err)
		}
	}
	for _, s := range []string{"", "zz", strings.Repeat("ab", MaxNonceSize+1), "abc"} {
		if _, err := ParseNonce(s); err == nil {
			t.Errorf("ParseNonce(%q) succeeded", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	// Small seeds: a raw SEV-SNP report is 1184 bytes whatever it says;
	// the TDX quote and a JSON bundle are cut to their first bytes (a
	// short run would otherwise spend its time minimising kilobytes).
	f.Add(sevtd.AttestationBytes)
	f.Add(tdxtd.RawQuote[:64])
	f.Add(append(bytes.Clone(sevtd.AttestationBytes), certTable([]byte("vcek"))...))
	f.Add([]byte(`{"format":"attestlog-evidence/v1","platform":"tdx","quote":"AAAA","proof":"p"}`))
	f.Add([]byte(`{"version":2,"tpm_quote":{"signature":"00","message":"ff544347","pcrs":["00"]},"hcl_report":"SENMQQ","vcek":"AA"}`))
	f.Add([]byte(`{"format":"attestlog-evidence/v1","platform":"azure-sev-snp","vtpm":{"version":1,"hcl_report":"SENMQQ==","quote":"AA==","signature":"AA==","pcrs":["AA=="]}}`))
	f.Add([]byte(`{"format":"attestlog-evidence/v3","platform":"tdx","quote":"AAAA","key_set":"AQAAAABpVbkAAAAAAGlXCoA="}`))
	f.Add([]byte(`{"format":"attestlog-evidence/v1","platform":"tdx","quote":"BQACAIEAAAA=","event_log":"AAAA","firmware_endorsement":"CgA=","tdx_collateral":{"tcb_info":"e30=","tcb_info_issuer_chain":"x","qe_identity":"e30=","qe_identity_issuer_chain":"x","pck_crl":"MAA=","pck_crl_issuer_chain":"x","root_ca_crl":"MAA="}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, _, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := b.Check(); err != nil {
			t.Fatalf("Parse accepted evidence that Check rejects: %v", err)
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("Marshal(Parse(x)) = %v", err)
		}
		b2, err := ParseBundle(out)
		if err != nil {
			t.Fatalf("ParseBundle(Marshal(Parse(x))) = %v", err)
		}
		if b2.Platform != b.Platform || !bytes.Equal(b2.Report, b.Report) || !bytes.Equal(b2.Quote, b.Quote) || b2.Proof != b.Proof {
			t.Fatal("bundle does not survive a round trip")
		}
	})
}

func sha512Of(b []byte) []byte {
	h := sha512.Sum512(b)
	return h[:]
}

// FuzzParseNonce: the nonce query parameter is client input. What parses
// is within the size bounds and is the hex it came from.
func FuzzParseNonce(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add("00")
	f.Add("zz")
	f.Add(strings.Repeat("AB", 16))
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNonce(s)
		if err != nil {
			return
		}
		if len(n) < MinNonceSize || len(n) > MaxNonceSize || !strings.EqualFold(hex.EncodeToString(n), s) {
			t.Fatalf("ParseNonce(%q) = %x", s, n)
		}
	})
}

// TestParseBundleMemberNames: a member given twice, or in another case,
// is refused at every level of the bundle. encoding/json alone keeps the
// last of two members and matches names case-insensitively, so before
// this check two readers could see two bundles in the same bytes.
func TestParseBundleMemberNames(t *testing.T) {
	b64 := func(b []byte) string { s, _ := json.Marshal(b); return string(s) }
	snp := `"format":"attestlog-evidence/v1","platform":"sev-snp","report":` + b64(sevtd.AttestationBytes)
	tdx := `"format":"attestlog-evidence/v1","platform":"tdx","quote":` + b64(tdxtd.RawQuote)
	coll := `"tcb_info":"AQ==","tcb_info_issuer_chain":"x","qe_identity":"AQ==","qe_identity_issuer_chain":"x","pck_crl":"AQ==","pck_crl_issuer_chain":"x","root_ca_crl":"AQ=="`
	good := []string{
		`{` + snp + `,"vcek":"AQ=="}`,
		`{` + tdx + `,"tdx_collateral":{` + coll + `}}`,
	}
	for _, in := range good {
		if _, err := ParseBundle([]byte(in)); err != nil {
			t.Fatalf("ParseBundle(%.80s…) = %v, want a bundle", in, err)
		}
	}
	for name, in := range map[string]string{
		"top-level duplicate":     `{` + snp + `,"vcek":"AQ==","vcek":"Ag=="}`,
		"top-level case":          `{` + snp + `,"VCEK":"AQ=="}`,
		"duplicate format":        `{` + snp + `,"format":"attestlog-evidence/v1"}`,
		"nested duplicate":        `{` + tdx + `,"tdx_collateral":{` + coll + `,"pck_crl":"Ag=="}}`,
		"nested case":             `{` + tdx + `,"tdx_collateral":{` + strings.Replace(coll, `"root_ca_crl"`, `"Root_CA_CRL"`, 1) + `}}`,
		"gpu member duplicate":    `{"format":"attestlog-evidence/v2","platform":"sev-snp","report":` + b64(sevtd.AttestationBytes) + `,"gpus":[{"arch":"HOPPER","arch":"BLACKWELL","report":"AQ==","cert_chain":"x"}]}`,
		"vtpm member in any case": `{"format":"attestlog-evidence/v1","platform":"azure-tdx","quote":` + b64(tdxtd.RawQuote) + `,"vtpm":{"Version":1,"hcl_report":"AQ==","quote":"AQ==","signature":"AQ==","pcrs":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}}`,
	} {
		_, err := ParseBundle([]byte(in))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseBundle = %v, want ErrMalformed", name, err)
		}
	}
}
