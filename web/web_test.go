package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestTextParts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"disk.img", "disk.img"},
		{hostile, hostile},
		{"a b", "a b"},
		{"innocent\u202egpj.exe", "innocent[U+202E]gpj.exe"},
		{"tab\there\n", "tab[U+0009]here[U+000A]"},
		{"zero\u200bwidth", "zero[U+200B]width"},
		{"nb\u00a0sp", "nb[U+00A0]sp"},
		{"", ""},
	} {
		var b strings.Builder
		for _, p := range textParts(tc.in) {
			if p.Special {
				fmt.Fprintf(&b, "[%s]", p.Text)
			} else {
				b.WriteString(p.Text)
			}
		}
		if b.String() != tc.want {
			t.Errorf("textParts(%q) = %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}

func TestShortHex(t *testing.T) {
	for in, want := range map[string]string{
		"abcd":                             "abcd",
		strings.Repeat("ab", 10):           strings.Repeat("ab", 10),
		"0123456789abcdef0123456789abcdef": "01234567…89abcdef",
	} {
		if got := shortHex(in); got != want {
			t.Errorf("shortHex(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSourceLinks(t *testing.T) {
	c := strings.Repeat("a", 40)
	for _, tc := range []struct{ repo, web, commit string }{
		{"https://github.com/acme/enclave", "https://github.com/acme/enclave", "https://github.com/acme/enclave/commit/" + c},
		{"https://github.com/acme/enclave.git", "https://github.com/acme/enclave.git", "https://github.com/acme/enclave/commit/" + c},
		{"https://codeberg.org/acme/enclave/", "https://codeberg.org/acme/enclave/", "https://codeberg.org/acme/enclave/commit/" + c},
		{"https://git.example.com/enclave", "https://git.example.com/enclave", ""},
		{"git+https://github.com/acme/enclave", "", ""},
		{"javascript:alert(1)", "", ""},
		{"file:///src/enclave", "", ""},
		{"https:///nohost", "", ""},
	} {
		if got := webURL(tc.repo); got != tc.web {
			t.Errorf("webURL(%q) = %q, want %q", tc.repo, got, tc.web)
		}
		if got := commitURL(tc.repo, c); got != tc.commit {
			t.Errorf("commitURL(%q) = %q, want %q", tc.repo, got, tc.commit)
		}
	}
}

// fulcioLike returns a bundle whose certificate carries Fulcio's
// extensions (issuer v1 raw and v2 DER) and an email subject.
func fulcioLike(t testing.TB, v1Issuer, v2Issuer string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		EmailAddresses: []string{"builder@example.com"}}
	if v1Issuer != "" {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidIssuerV1, Value: []byte(v1Issuer)})
	}
	if v2Issuer != "" {
		der, _ := asn1.MarshalWithParams(v2Issuer, "utf8")
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidIssuerV2, Value: der})
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	st := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}},{"name":"b","digest":{"sha256":"11"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://example.com/bt"},"runDetails":{"builder":{"id":"https://example.com/builder"}}}}`
	b, _ := json.Marshal(map[string]any{
		"mediaType":            "application/vnd.dev.sigstore.bundle.v0.3+json",
		"verificationMaterial": map[string]any{"x509CertificateChain": map[string]any{"certificates": []any{map[string]any{"rawBytes": base64.StdEncoding.EncodeToString(der)}}}},
		"dsseEnvelope":         map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte(st)), "payloadType": "application/vnd.in-toto+json"},
	})
	return b
}

func TestDecodeProvenance(t *testing.T) {
	v := decodeProvenance(fulcioLike(t, "https://v1.example", "https://v2.example"))
	if v.Subject != "builder@example.com" || v.Issuer != "https://v2.example" || v.BuilderID != "https://example.com/builder" ||
		v.BuildType != "https://example.com/bt" || v.Subjects != 2 || len(v.Problems) != 0 {
		t.Errorf("decodeProvenance = %+v", v)
	}
	// Any spelling sigstore-go reads decodes the same.
	for _, r := range []provenancetest.Respelling{provenancetest.SnakeCaseDSSE, provenancetest.UnpaddedPayload, provenancetest.URLSafePayload} {
		b, err := provenancetest.Reencode(fulcioLike(t, "https://v1.example", "https://v2.example"), r)
		if err != nil {
			t.Fatal(err)
		}
		if w := decodeProvenance(b); w.Subject != v.Subject || w.BuilderID != v.BuilderID || w.Subjects != v.Subjects || len(w.Problems) != 0 {
			t.Errorf("respelling %d: decodeProvenance = %+v, want %+v", r, w, v)
		}
	}
	if v := decodeProvenance(fulcioLike(t, "https://v1.example", "")); v.Issuer != "https://v1.example" {
		t.Errorf("issuer from the v1 extension = %q", v.Issuer)
	}
	for _, tc := range []struct{ in, problem string }{
		{`{"mediaType":"x"`, "not valid JSON"},
		{`[]`, "not a Sigstore bundle"},
		{`{}`, "no signing certificate"},
		{`{"verificationMaterial":{"certificate":{"rawBytes":"!!"}}}`, "invalid value for bytes field rawBytes"},
		{`{"verificationMaterial":{"certificate":{"rawBytes":"AAAA"}}}`, "does not parse"},
		{`{"dsseEnvelope":{"payload":"e30="}}`, "no signing certificate"},
		{`{"dsseEnvelope":{"payload":"bm90IGpzb24="}}`, "not an in-toto statement"},
	} {
		v := decodeProvenance([]byte(tc.in))
		if !strings.Contains(strings.Join(v.Problems, "; "), tc.problem) {
			t.Errorf("decodeProvenance(%s) problems = %q, want %q", tc.in, v.Problems, tc.problem)
		}
	}
}

// FuzzDecodeProvenance: bundles are untrusted input; decoding never
// panics and its JSON twin always encodes.
func FuzzDecodeProvenance(f *testing.F) {
	f.Add(fulcioLike(f, "https://v1.example", "https://v2.example"))
	f.Add([]byte(`{"verificationMaterial":{"certificate":{"rawBytes":"AAAA"}},"dsseEnvelope":{"payload":"e30="}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := decodeProvenance(b)
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("JSON twin of %q: %v", b, err)
		}
	})
}
