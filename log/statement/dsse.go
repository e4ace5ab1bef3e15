package statement

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Envelope is a DSSE envelope (github.com/secure-systems-lab/dsse,
// envelope.md). The payload is an in-toto Statement v1.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"` // base64 in JSON
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"` // base64 in JSON
}

// PAE is the DSSE pre-authentication encoding of a payload: what is signed.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// Marshal returns the canonical encoding of e: the envelope JSON with
// fields in a fixed order and signatures sorted by key ID.
func (e *Envelope) Marshal() ([]byte, error) {
	c := *e
	c.Signatures = slices.Clone(e.Signatures)
	slices.SortFunc(c.Signatures, func(a, b Signature) int {
		if r := bytes.Compare([]byte(a.KeyID), []byte(b.KeyID)); r != 0 {
			return r
		}
		return bytes.Compare(a.Sig, b.Sig)
	})
	return json.Marshal(c)
}

// SignEnvelope wraps payload in a DSSE envelope signed by s.
func SignEnvelope(payload []byte, s *Signer) (*Envelope, error) {
	sig, err := s.Sign(PAE(PayloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("signing envelope: %w", err)
	}
	return &Envelope{
		PayloadType: PayloadType,
		Payload:     payload,
		Signatures:  []Signature{{KeyID: s.Public().ID(), Sig: sig}},
	}, nil
}

// VerifiedAll returns every key of keys that produced a valid signature
// over e (each once, in the order of keys).
func (e *Envelope) VerifiedAll(keys []PublicKey) []PublicKey {
	var out []PublicKey
	for _, k := range keys {
		if _, ok := e.VerifiedBy([]PublicKey{k}); ok {
			out = append(out, k)
		}
	}
	return out
}

// VerifiedBy returns the first key of keys that produced a valid signature
// over e, or false if none did.
func (e *Envelope) VerifiedBy(keys []PublicKey) (PublicKey, bool) {
	msg := PAE(e.PayloadType, e.Payload)
	for _, s := range e.Signatures {
		for _, k := range keys {
			if s.KeyID != "" && s.KeyID != k.ID() {
				continue
			}
			if k.Verify(msg, s.Sig) {
				return k, true
			}
		}
	}
	return PublicKey{}, false
}
