//go:build !attestlog_nosigstore

package statement

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// parseBundle parses a Sigstore bundle entry as the protobuf message it
// is (see ParseEntry).
func parseBundle(entry []byte) (*Parsed, error) {
	var bn protobundle.Bundle
	if err := (protojson.UnmarshalOptions{}).Unmarshal(entry, &bn); err != nil {
		return nil, fmt.Errorf("%w: not a Sigstore bundle: %s", ErrMalformed, protoErr(err))
	}
	env := bn.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: a keyless statement must be a Sigstore bundle with a dsseEnvelope", ErrMalformed)
	}
	if env.GetPayloadType() != PayloadType {
		return nil, fieldErr("dsseEnvelope.payloadType", "must be %q", PayloadType)
	}
	canon, err := CanonicalBundle(&bn)
	if err != nil {
		return nil, err
	}
	if len(canon) > MaxEntrySize {
		// The canonical form can be a few bytes longer than a compact
		// submission (base64 padding): the stored entry must fit too.
		return nil, fmt.Errorf("%w: bundle is %d bytes once canonically encoded, the limit is %d", ErrMalformed, len(canon), MaxEntrySize)
	}
	p, err := ParseStatement(env.GetPayload())
	if err != nil {
		return nil, err
	}
	p.Bundle = canon
	return p, nil
}

// CanonicalBundle is the encoding of a Sigstore bundle the log stores:
// protojson's encoding (fields in declaration order, camelCase keys,
// padded standard base64) with insignificant whitespace removed — protojson
// varies its whitespace on purpose, so its raw output is not stable.
func CanonicalBundle(bn *protobundle.Bundle) ([]byte, error) {
	b, err := (protojson.MarshalOptions{}).Marshal(bn)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the bundle: %v", ErrMalformed, err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("%w: encoding the bundle: %v", ErrMalformed, err)
	}
	return out.Bytes(), nil
}

// protoErr shortens protojson's messages ("proto: (line 1:2): unknown
// field …") to what a submitter needs.
func protoErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "proto:")
	s = strings.TrimPrefix(s, "\u00a0") // protojson's non-breaking space
	return strings.TrimSpace(s)
}
