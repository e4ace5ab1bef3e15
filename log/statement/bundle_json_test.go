//go:build attestlog_nosigstore

package statement

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// TestParseBundleWithoutSigstore: the build without Sigstore reads the
// statement of a bundle in the spelling the log stores, and refuses one
// without a DSSE envelope or with another payload type.
func TestParseBundleWithoutSigstore(t *testing.T) {
	subj, rel := testRelease()
	payload, _ := EncodeRelease(subj, rel)
	b64 := base64.StdEncoding.EncodeToString(payload)
	entry := `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"` + b64 + `","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`
	p, err := ParseEntry([]byte(entry))
	if err != nil {
		t.Fatal(err)
	}
	if p.PayloadHash != sha256.Sum256(payload) || p.Kind != KindRelease || p.Release.Version != rel.Version || p.Envelope != nil {
		t.Errorf("ParseEntry read %+v", p)
	}
	for _, bad := range []string{
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{}}`,
		strings.Replace(entry, "application/vnd.in-toto+json", "text/plain", 1),
	} {
		if _, err := ParseEntry([]byte(bad)); err == nil {
			t.Errorf("ParseEntry(%.80s…) accepted", bad)
		}
	}
}
