package statement

import (
	"bytes"
	"encoding/base64"
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
	c := e.sorted()
	if !plainJSONString(c.PayloadType) {
		return json.Marshal(c)
	}
	for _, sg := range c.Signatures {
		if !plainJSONString(sg.KeyID) {
			return json.Marshal(c)
		}
	}
	// What json.Marshal writes for these fields, without its reflection:
	// admission encodes every envelope it appends. Strings that would
	// need escaping took json.Marshal above.
	n := 64 + len(c.PayloadType) + base64.StdEncoding.EncodedLen(len(c.Payload))
	for _, sg := range c.Signatures {
		n += 24 + len(sg.KeyID) + base64.StdEncoding.EncodedLen(len(sg.Sig))
	}
	b := make([]byte, 0, n)
	b = append(b, `{"payloadType":"`...)
	b = append(b, c.PayloadType...)
	b = append(b, `","payload":`...)
	b = appendBase64(b, c.Payload)
	b = append(b, `,"signatures":`...)
	if c.Signatures == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, sg := range c.Signatures {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"keyid":"`...)
			b = append(b, sg.KeyID...)
			b = append(b, `","sig":`...)
			b = appendBase64(b, sg.Sig)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// sorted is a copy of e with its signatures sorted by key ID, then
// signature.
func (e *Envelope) sorted() Envelope {
	c := *e
	c.Signatures = slices.Clone(e.Signatures)
	slices.SortFunc(c.Signatures, func(a, b Signature) int {
		if r := bytes.Compare([]byte(a.KeyID), []byte(b.KeyID)); r != 0 {
			return r
		}
		return bytes.Compare(a.Sig, b.Sig)
	})
	return c
}

// appendBase64 appends v as encoding/json writes a []byte: null when
// nil, else its standard base64 in quotes.
func appendBase64(b, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// plainJSONString reports whether encoding/json writes s as itself
// between quotes: printable ASCII with no quote, backslash or character
// it escapes for HTML.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
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
