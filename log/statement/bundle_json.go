//go:build attestlog_nosigstore

package statement

import (
	"bytes"
	"fmt"

	jsonv2 "github.com/attestlog/attestlog/internal/jsonv2"
)

// parseBundle, in the build without Sigstore (the WebAssembly client),
// reads a bundle's DSSE envelope with the JSON spelling the log stores
// (CanonicalBundle's: camelCase keys, standard base64) instead of
// protojson, which with the bundle's protobuf types would be a twentieth
// of the module. It reads the statement only, so that a client can say
// what the entry is: this build verifies no Sigstore bundle
// (policy/provenance's nosigstore.go refuses every keyless signature), so
// nothing it reads here is ever trusted. Parsed.Bundle is the entry as
// given, not re-encoded.
func parseBundle(entry []byte) (*Parsed, error) {
	var bn struct {
		DSSEEnvelope *struct {
			Payload     []byte `json:"payload"`
			PayloadType string `json:"payloadType"`
		} `json:"dsseEnvelope"`
	}
	if err := jsonv2.Unmarshal(entry, &bn); err != nil {
		return nil, fmt.Errorf("%w: not a Sigstore bundle: %v", ErrMalformed, err)
	}
	env := bn.DSSEEnvelope
	if env == nil {
		return nil, fmt.Errorf("%w: a keyless statement must be a Sigstore bundle with a dsseEnvelope", ErrMalformed)
	}
	if env.PayloadType != PayloadType {
		return nil, fieldErr("dsseEnvelope.payloadType", "must be %q", PayloadType)
	}
	p, err := ParseStatement(env.Payload)
	if err != nil {
		return nil, err
	}
	p.Bundle = bytes.Clone(entry)
	return p, nil
}
