// Package ohttp is Oblivious HTTP ([RFC 9458]): a client encapsulates a
// Binary HTTP request (channel/bhttp) with HPKE to a gateway's key
// configuration; the gateway decapsulates it and encapsulates the
// response under a key derived from the same HPKE context. A relay in
// between sees ciphertext only.
//
// Both the whole-message form of RFC 9458 (message/ohttp-req,
// message/ohttp-res) and the chunked form of [draft-ietf-ohai-chunked-ohttp]
// (message/ohttp-chunked-req, message/ohttp-chunked-res: a response
// streamed as a sequence of sealed chunks, the last marked "final" in
// its additional data so that truncation is detected) are implemented.
//
// Key configurations are keyset.KeyConfig (RFC 9458 §3). The KEMs are
// DHKEM(X25519, HKDF-SHA256) (0x0020) and MLKEM768-X25519 (0x647a, the
// post-quantum hybrid), from crypto/hpke; KDFs HKDF-SHA256/384/512;
// AEADs AES-128-GCM, AES-256-GCM and ChaCha20Poly1305.
//
// [RFC 9458]: https://www.rfc-editor.org/rfc/rfc9458.html
// [draft-ietf-ohai-chunked-ohttp]: https://datatracker.ietf.org/doc/draft-ietf-ohai-chunked-ohttp/
package ohttp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/attestlog/attestlog/channel/keyset"
)

// Media types (RFC 9458 §9, the chunked draft §7).
const (
	ContentTypeKeys            = "application/ohttp-keys"
	ContentTypeRequest         = "message/ohttp-req"
	ContentTypeResponse        = "message/ohttp-res"
	ContentTypeChunkedRequest  = "message/ohttp-chunked-req"
	ContentTypeChunkedResponse = "message/ohttp-chunked-res"
)

// A gateway's refusal of a request whose key configuration it does not
// hold (RFC 9458 §5.3): an RFC 9457 problem of type ProblemTypeKey, which
// tells the client to fetch the key configurations again. It cannot be
// encapsulated, so the relay sees it.
const (
	ContentTypeProblem = "application/problem+json"
	ProblemTypeKey     = "https://iana.org/assignments/http-problem-types#ohttp-key"
)

// Labels of RFC 9458 §4.3/§4.4 and the chunked draft §6.
const (
	labelRequest         = "message/bhttp request"
	labelResponse        = "message/bhttp response"
	labelChunkedRequest  = "message/bhttp chunked request"
	labelChunkedResponse = "message/bhttp chunked response"
)

// headerSize is the size of hdr (key id, KEM, KDF, AEAD).
const headerSize = 7

var (
	// ErrMalformed wraps errors about an encapsulated message that does
	// not parse.
	ErrMalformed = errors.New("malformed encapsulated message")
	// ErrUnknownKey is returned when a request names a key identifier or
	// algorithms the gateway does not have.
	ErrUnknownKey = errors.New("the request names no key configuration of this gateway")
	// ErrDecrypt is returned when a message does not decrypt: it was
	// made for another key, tampered with, reordered or truncated.
	ErrDecrypt = errors.New("encapsulated message does not decrypt")
	// ErrUnsupported is returned when a key configuration offers no
	// algorithms this package implements.
	ErrUnsupported = errors.New("no supported HPKE algorithms in the key configuration")
)

// Suite is the HPKE ciphersuite of one message.
type Suite struct {
	KEM, KDF, AEAD uint16
}

// Nk and Nn of the AEADs this package implements.
func aeadSizes(id uint16) (nk, nn int, ok bool) {
	switch id {
	case keyset.AEADAES128GCM:
		return 16, 12, true
	case keyset.AEADAES256GCM:
		return 32, 12, true
	case keyset.AEADChaCha20Poly1305:
		return 32, 12, true
	}
	return 0, 0, false
}

func newAEAD(id uint16, key []byte) (cipher.AEAD, error) {
	switch id {
	case keyset.AEADAES128GCM, keyset.AEADAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case keyset.AEADChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("AEAD 0x%04x unsupported", id)
}

func kdfHash(id uint16) (func() hash.Hash, bool) {
	switch id {
	case keyset.KDFHKDFSHA256:
		return sha256.New, true
	case keyset.KDFHKDFSHA384:
		return sha512.New384, true
	case keyset.KDFHKDFSHA512:
		return sha512.New, true
	}
	return nil, false
}

// supported reports whether this package implements s.
func supported(s Suite) bool {
	_, _, ok := aeadSizes(s.AEAD)
	_, ok2 := kdfHash(s.KDF)
	return ok && ok2 && (s.KEM == keyset.KEMX25519 || s.KEM == keyset.KEMMLKEM768X25519)
}

// Choose picks the first key configuration of cs (most preferred first)
// with a supported KEM, and its first supported symmetric pair.
func Choose(cs []keyset.KeyConfig) (keyset.KeyConfig, Suite, error) {
	for _, c := range cs {
		for _, s := range c.Symmetric {
			su := Suite{KEM: c.KEM, KDF: s.KDF, AEAD: s.AEAD}
			if supported(su) {
				return c, su, nil
			}
		}
	}
	return keyset.KeyConfig{}, Suite{}, ErrUnsupported
}

// ChooseKEM is Choose restricted to one KEM (for clients without the
// hybrid, or benchmarks).
func ChooseKEM(cs []keyset.KeyConfig, kem uint16) (keyset.KeyConfig, Suite, error) {
	var only []keyset.KeyConfig
	for _, c := range cs {
		if c.KEM == kem {
			only = append(only, c)
		}
	}
	return Choose(only)
}

func header(keyID uint8, s Suite) []byte {
	b := []byte{keyID}
	b = binary.BigEndian.AppendUint16(b, s.KEM)
	b = binary.BigEndian.AppendUint16(b, s.KDF)
	return binary.BigEndian.AppendUint16(b, s.AEAD)
}

// info is encode_str(label) ‖ 0x00 ‖ hdr (RFC 9458 §4.3).
func info(label string, hdr []byte) []byte {
	b := append([]byte(label), 0)
	return append(b, hdr...)
}

func hpkeSuite(s Suite) (hpke.KEM, hpke.KDF, hpke.AEAD, error) {
	kem, err := hpke.NewKEM(s.KEM)
	if err != nil {
		return nil, nil, nil, err
	}
	kdf, err := hpke.NewKDF(s.KDF)
	if err != nil {
		return nil, nil, nil, err
	}
	aead, err := hpke.NewAEAD(s.AEAD)
	if err != nil {
		return nil, nil, nil, err
	}
	return kem, kdf, aead, nil
}

// encSize is Nenc of a KEM.
func encSize(kem uint16) int {
	switch kem {
	case keyset.KEMX25519:
		return 32
	case keyset.KEMMLKEM768X25519:
		return 1120
	}
	return 0
}

// exporter is an HPKE context's Export.
type exporter interface {
	Export(exporterContext string, length int) ([]byte, error)
}

// responseAEAD derives the AEAD and base nonce of a response (RFC 9458
// §4.4): secret = Export(label, max(Nn, Nk)); prk = Extract(enc ‖
// response_nonce, secret); key = Expand(prk, "key", Nk); nonce =
// Expand(prk, "nonce", Nn).
func responseAEAD(ctx exporter, label string, s Suite, enc, responseNonce []byte) (cipher.AEAD, []byte, error) {
	nk, nn, _ := aeadSizes(s.AEAD)
	h, _ := kdfHash(s.KDF)
	secret, err := ctx.Export(label, max(nk, nn))
	if err != nil {
		return nil, nil, err
	}
	salt := append(append([]byte{}, enc...), responseNonce...)
	prk, err := hkdf.Extract(h, secret, salt)
	if err != nil {
		return nil, nil, err
	}
	key, err := hkdf.Expand(h, prk, "key", nk)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := hkdf.Expand(h, prk, "nonce", nn)
	if err != nil {
		return nil, nil, err
	}
	a, err := newAEAD(s.AEAD, key)
	return a, nonce, err
}

func responseNonceSize(s Suite) int {
	nk, nn, _ := aeadSizes(s.AEAD)
	return max(nk, nn)
}

// ClientRequest is the client's side of one request: it opens the
// response.
type ClientRequest struct {
	suite  Suite
	enc    []byte
	sender *hpke.Sender
	label  string
}

// EncapsulateRequest encapsulates the Binary HTTP request msg to the key
// configuration cfg with suite s (RFC 9458 §4.3), returning the
// message/ohttp-req body and the context that opens the response.
func EncapsulateRequest(cfg keyset.KeyConfig, s Suite, msg []byte) ([]byte, *ClientRequest, error) {
	k, err := NewSealer(cfg, s)
	if err != nil {
		return nil, nil, err
	}
	return k.EncapsulateRequest(msg)
}

// Sealer seals requests to one key configuration with one suite: the
// configuration is checked (the suite is one it offers, and one this
// package implements) and its public key parsed once, when the Sealer
// is made, not for every request. A client that verified a gateway's
// key configuration makes one Sealer of it and uses it for as long as
// that verification holds. Each request still has an encapsulation of
// its own (a fresh HPKE context). Safe for concurrent use.
type Sealer struct {
	cfg   keyset.KeyConfig
	suite Suite
	pk    hpke.PublicKey
	kdf   hpke.KDF
	aead  hpke.AEAD
}

// NewSealer checks cfg and s and parses cfg's public key.
func NewSealer(cfg keyset.KeyConfig, s Suite) (*Sealer, error) {
	if s.KEM != cfg.KEM || !supported(s) {
		return nil, ErrUnsupported
	}
	found := false
	for _, p := range cfg.Symmetric {
		found = found || p.KDF == s.KDF && p.AEAD == s.AEAD
	}
	if !found {
		return nil, fmt.Errorf("%w: KDF 0x%04x with AEAD 0x%04x is not in key configuration %d", ErrUnsupported, s.KDF, s.AEAD, cfg.ID)
	}
	kem, kdf, aead, err := hpkeSuite(s)
	if err != nil {
		return nil, err
	}
	pk, err := kem.NewPublicKey(cfg.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Sealer{cfg: cfg, suite: s, pk: pk, kdf: kdf, aead: aead}, nil
}

// Config is the key configuration requests are sealed to.
func (k *Sealer) Config() keyset.KeyConfig { return k.cfg }

// Suite is the suite requests are sealed with.
func (k *Sealer) Suite() Suite { return k.suite }

// EncapsulateRequest is the package's EncapsulateRequest to k's key.
func (k *Sealer) EncapsulateRequest(msg []byte) ([]byte, *ClientRequest, error) {
	out, cr, err := k.newSender(labelRequest, len(msg)+16)
	if err != nil {
		return nil, nil, err
	}
	ct, err := cr.sender.Seal(nil, msg)
	if err != nil {
		return nil, nil, err
	}
	cr.label = labelResponse
	return append(out, ct...), cr, nil
}

// newSender sets up a new HPKE context to k's key and returns hdr ‖ enc
// (with room for extra more bytes) and the context.
func (k *Sealer) newSender(label string, extra int) ([]byte, *ClientRequest, error) {
	hdr := header(k.cfg.ID, k.suite)
	enc, sender, err := hpke.NewSender(k.pk, k.kdf, k.aead, info(label, hdr))
	if err != nil {
		return nil, nil, err
	}
	out := append(append(make([]byte, 0, len(hdr)+len(enc)+extra), hdr...), enc...)
	return out, &ClientRequest{suite: k.suite, enc: enc, sender: sender}, nil
}

// OpenResponse decapsulates a message/ohttp-res body.
func (c *ClientRequest) OpenResponse(b []byte) ([]byte, error) {
	n := responseNonceSize(c.suite)
	if len(b) < n {
		return nil, fmt.Errorf("%w: a response of %d bytes, shorter than its nonce", ErrMalformed, len(b))
	}
	a, nonce, err := responseAEAD(c.sender, c.label, c.suite, c.enc, b[:n])
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, nonce, b[n:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Key is a gateway's key: its configuration and HPKE private key.
type Key struct {
	Config  keyset.KeyConfig
	Private hpke.PrivateKey
}

// Gateway decapsulates requests to its keys. It is safe for concurrent
// use.
type Gateway struct {
	keys map[uint8]Key
}

// NewGateway returns a gateway for keys (distinct identifiers, each
// private key matching its configuration's public key).
func NewGateway(keys ...Key) (*Gateway, error) {
	g := &Gateway{keys: map[uint8]Key{}}
	for _, k := range keys {
		if _, dup := g.keys[k.Config.ID]; dup {
			return nil, fmt.Errorf("key identifier %d twice", k.Config.ID)
		}
		if k.Private.KEM().ID() != k.Config.KEM || string(k.Private.PublicKey().Bytes()) != string(k.Config.PublicKey) {
			return nil, fmt.Errorf("key %d: the private key is not the configuration's", k.Config.ID)
		}
		g.keys[k.Config.ID] = k
	}
	return g, nil
}

// Configs returns the gateway's key configurations (application/ohttp-keys
// with keyset.MarshalKeyConfigs).
func (g *Gateway) Configs() []keyset.KeyConfig {
	var out []keyset.KeyConfig
	for i := range 256 {
		if k, ok := g.keys[uint8(i)]; ok {
			out = append(out, k.Config)
		}
	}
	return out
}

// GatewayResponse is the gateway's side of one request: it seals the
// response.
type GatewayResponse struct {
	suite     Suite
	enc       []byte
	recipient *hpke.Recipient
	label     string
}

// parseHeader reads hdr ‖ enc and finds the key.
func (g *Gateway) parseHeader(b []byte) (Key, Suite, []byte, []byte, error) {
	if len(b) < headerSize {
		return Key{}, Suite{}, nil, nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrMalformed, len(b))
	}
	id := b[0]
	s := Suite{KEM: binary.BigEndian.Uint16(b[1:]), KDF: binary.BigEndian.Uint16(b[3:]), AEAD: binary.BigEndian.Uint16(b[5:])}
	k, ok := g.keys[id]
	if !ok || k.Config.KEM != s.KEM {
		return Key{}, Suite{}, nil, nil, fmt.Errorf("%w: key %d with KEM 0x%04x", ErrUnknownKey, id, s.KEM)
	}
	found := false
	for _, p := range k.Config.Symmetric {
		found = found || p.KDF == s.KDF && p.AEAD == s.AEAD
	}
	if !found || !supported(s) {
		return Key{}, Suite{}, nil, nil, fmt.Errorf("%w: key %d does not offer KDF 0x%04x with AEAD 0x%04x", ErrUnknownKey, id, s.KDF, s.AEAD)
	}
	n := encSize(s.KEM)
	if len(b) < headerSize+n {
		return Key{}, Suite{}, nil, nil, fmt.Errorf("%w: %d bytes, shorter than the header and encapsulated key", ErrMalformed, len(b))
	}
	return k, s, b[:headerSize], b[headerSize : headerSize+n], nil
}

func (g *Gateway) recipient(b []byte, label string) (*GatewayResponse, []byte, error) {
	k, s, hdr, enc, err := g.parseHeader(b)
	if err != nil {
		return nil, nil, err
	}
	_, kdf, aead, err := hpkeSuite(s)
	if err != nil {
		return nil, nil, err
	}
	r, err := hpke.NewRecipient(enc, k.Private, kdf, aead, info(label, hdr))
	if err != nil {
		return nil, nil, ErrDecrypt
	}
	return &GatewayResponse{suite: s, enc: enc, recipient: r}, b[headerSize+len(enc):], nil
}

// DecapsulateRequest opens a message/ohttp-req body, returning the
// Binary HTTP request and the context that seals the response.
func (g *Gateway) DecapsulateRequest(b []byte) ([]byte, *GatewayResponse, error) {
	gr, ct, err := g.recipient(b, labelRequest)
	if err != nil {
		return nil, nil, err
	}
	pt, err := gr.recipient.Open(nil, ct)
	if err != nil {
		return nil, nil, ErrDecrypt
	}
	gr.label = labelResponse
	return pt, gr, nil
}

// SealResponse encapsulates the Binary HTTP response msg (a
// message/ohttp-res body).
func (gr *GatewayResponse) SealResponse(msg []byte) ([]byte, error) {
	nonce := make([]byte, responseNonceSize(gr.suite))
	rand.Read(nonce)
	return gr.sealResponse(msg, nonce)
}

func (gr *GatewayResponse) sealResponse(msg, responseNonce []byte) ([]byte, error) {
	a, nonce, err := responseAEAD(gr.recipient, gr.label, gr.suite, gr.enc, responseNonce)
	if err != nil {
		return nil, err
	}
	return a.Seal(append([]byte{}, responseNonce...), nonce, msg, nil), nil
}
