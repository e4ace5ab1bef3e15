//go:build !attestlog_nosigstore

package statement

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// TestParseEntryKeylessSpellings: every spelling protojson accepts parses
// to the same statement and the same canonical bundle.
func TestParseEntryKeylessSpellings(t *testing.T) {
	subj, rel := testRelease()
	payload, _ := EncodeRelease(subj, rel)
	b64 := base64.StdEncoding.EncodeToString(payload)
	raw := base64.RawURLEncoding.EncodeToString(payload)
	var first *Parsed
	for _, b := range []string{
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"` + b64 + `","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsse_envelope":{"payload":"` + b64 + `","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA"}]}}`,
		"{\n  \"dsseEnvelope\": {\"signatures\":[{\"sig\":\"AA==\"}], \"payloadType\":\"application/vnd.in-toto+json\", \"payload\":\"" + raw + "\"},\n  \"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\"\n}",
	} {
		p, err := ParseEntry([]byte(b))
		if err != nil {
			t.Fatalf("ParseEntry(%.80s…) = %v", b, err)
		}
		if first == nil {
			first = p
			continue
		}
		if p.PayloadHash != first.PayloadHash || !bytes.Equal(p.Bundle, first.Bundle) {
			t.Errorf("spelling %.80s… gives another statement or canonical bundle:\n%s\n%s", b, p.Bundle, first.Bundle)
		}
	}
	if bytes.ContainsAny(first.Bundle, " \n") || !bytes.Contains(first.Bundle, []byte(`"dsseEnvelope"`)) {
		t.Errorf("canonical bundle is not compact camelCase JSON: %s", first.Bundle)
	}
}
