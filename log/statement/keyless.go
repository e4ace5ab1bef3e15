package statement

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"

	jsonv2 "github.com/attestlog/attestlog/internal/jsonv2"
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
// bundle whose DSSE payload is one of our statements. It is the one parser
// of entries: the log admits what it returns and every reader reads it
// back with it.
//
// A bundle is decoded as the Sigstore protobuf message it is, whatever
// JSON spelling it came in (protojson accepts snake_case keys, unpadded
// and URL-safe base64), and Parsed.Bundle is its canonical encoding:
// CanonicalBundle of the message. That is what the log stores, so the
// stored bytes do not depend on how a submitter spelled them, and parsing
// them again gives them back unchanged. For a bundle only the statement is
// parsed; its Sigstore signature is NOT verified here
// (policy/provenance.VerifyKeylessEntry does that) and Envelope is nil.
//
// An index checkpoint (IsIndexCheckpoint) parses to KindIndexCheckpoint
// with neither Envelope nor Statement; its signature is the log's
// (VerifyIndexCheckpoint).
func ParseEntry(entry []byte) (*Parsed, error) {
	if IsIndexCheckpoint(entry) {
		c, err := ParseIndexCheckpoint(entry)
		if err != nil {
			return nil, err
		}
		return &Parsed{Kind: KindIndexCheckpoint, IndexCheckpoint: c, PayloadHash: sha256.Sum256(entry)}, nil
	}
	p, err := Parse(entry)
	if err == nil || !IsBundle(entry) {
		return p, err
	}
	if len(entry) > MaxEntrySize {
		return nil, fmt.Errorf("%w: bundle is %d bytes, the limit is %d", ErrMalformed, len(entry), MaxEntrySize)
	}
	return parseBundle(entry)
}

// PayloadHashOf is the SHA-256 of the statement payload a submission
// carries — a DSSE envelope's payload, or the payload of a Sigstore
// bundle's DSSE envelope — read without checking anything else: enough to
// look for a statement already logged (whose entry was checked when it
// was admitted), nothing more. A submission it finds no payload in is
// for ParseEntry to refuse.
func PayloadHashOf(body []byte) ([32]byte, bool) {
	if len(body) > MaxEntrySize {
		return [32]byte{}, false
	}
	var probe struct {
		Payload      []byte `json:"payload"`
		DSSEEnvelope *struct {
			Payload []byte `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if jsonv2.Unmarshal(body, &probe) != nil {
		return [32]byte{}, false
	}
	p := probe.Payload
	if probe.DSSEEnvelope != nil {
		if p != nil {
			return [32]byte{}, false
		}
		p = probe.DSSEEnvelope.Payload
	}
	if len(p) == 0 {
		return [32]byte{}, false
	}
	return sha256.Sum256(p), true
}
