package statement

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"strings"
)

// BundleMediaTypePrefix starts the mediaType of a Sigstore bundle.
const BundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"

// IsBundle reports whether an entry is a Sigstore bundle — a statement
// signed keylessly by a CI identity — rather than a DSSE envelope.
func IsBundle(entry []byte) bool {
	b := bytes.TrimLeft(entry, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	// Unknown members are skipped, not decoded.
	return jsonv2.Unmarshal(b, &probe) == nil && strings.HasPrefix(probe.MediaType, BundleMediaTypePrefix)
}

// ParseEntry parses a log entry: a DSSE envelope (see Parse) or a Sigstore
// bundle whose DSSE payload is one of our statements. For a bundle only
// the statement is parsed; its Sigstore signature is NOT verified here
// (policy/provenance.VerifyKeylessStatement does that) and Envelope is nil.
func ParseEntry(entry []byte) (*Parsed, error) {
	p, err := Parse(entry)
	if err == nil || !IsBundle(entry) {
		return p, err
	}
	if len(entry) > MaxEntrySize {
		return nil, fmt.Errorf("%w: bundle is %d bytes, the limit is %d", ErrMalformed, len(entry), MaxEntrySize)
	}
	var bn struct {
		DSSE *struct {
			Payload     string `json:"payload"`
			PayloadType string `json:"payloadType"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(entry, &bn); err != nil || bn.DSSE == nil {
		return nil, fmt.Errorf("%w: a keyless statement must be a Sigstore bundle with a dsseEnvelope", ErrMalformed)
	}
	if bn.DSSE.PayloadType != PayloadType {
		return nil, fieldErr("dsseEnvelope.payloadType", "must be %q", PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(bn.DSSE.Payload)
	if err != nil {
		return nil, fieldErr("dsseEnvelope.payload", "bad base64: %v", err)
	}
	p, err = ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	p.Bundle = entry
	return p, nil
}
