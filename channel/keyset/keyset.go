// Package keyset is the attested key set: the keys an enclave agent
// (`attestlog enclave`) makes inside a confidential VM at each rotation,
// and that one hardware report commits to, so that a client verifies the
// report once and then pins the keys on every connection.
//
// A key set names the TLS key by the SHA-256 of its DER
// SubjectPublicKeyInfo, carries the HPKE key configurations of the
// enclave in the format of Oblivious HTTP ([RFC 9458] §3), commits to the
// evidence of the enclave's GPUs, and says from when until when it may be
// used. Its encoding is binary and canonical: one key set has exactly one
// encoding, and Parse accepts nothing else. The specification, with a
// worked example, is docs/spec/keyset.md.
//
//	struct {
//	    uint8  version = 1;
//	    uint64 not_before;              // Unix seconds
//	    uint64 not_after;               // Unix seconds, not_before < not_after <= not_before + 7 days
//	    opaque tls_spki_sha256[32];     // SHA-256 of the TLS key's DER SubjectPublicKeyInfo
//	    opaque hpke_key_configs<0..2^16-1>;  // RFC 9458 §3.2 application/ohttp-keys
//	    opaque gpu_digest<0..255>;      // empty (no GPU) or 48 bytes (evidence.GPUDigest)
//	} KeySet;
//
// Integers are big-endian; opaque<…> is a length prefix of the size its
// bound needs (2 bytes for hpke_key_configs, 1 for gpu_digest) followed by
// that many bytes. The GPU digest is last so that the GPUs can be asked
// to answer a nonce derived from everything before it (GPUNonceSeed):
// the GPU evidence is made after the keys, and the key set commits to it.
//
// [RFC 9458]: https://www.rfc-editor.org/rfc/rfc9458.html
package keyset

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Version is the only version this package reads and writes.
const Version = 1

// Limits. Parse refuses anything beyond them.
const (
	// MaxSize bounds an encoded key set.
	MaxSize = 16 << 10
	// MaxKeyConfigs bounds the HPKE key configurations of a key set.
	MaxKeyConfigs = 8
	// MaxSymmetric bounds the symmetric algorithm pairs of one
	// configuration.
	MaxSymmetric = 8
	// MaxLifetime bounds not_after - not_before.
	MaxLifetime = 7 * 24 * time.Hour
	// GPUDigestSize is the size of a non-empty gpu_digest.
	GPUDigestSize = 48
)

// HPKE algorithm identifiers ([RFC 9180] §7, draft-ietf-hpke-pq) that a key
// configuration may name.
const (
	KEMX25519         uint16 = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	KEMMLKEM768X25519 uint16 = 0x647a // MLKEM768-X25519 (X-Wing), post-quantum hybrid

	KDFHKDFSHA256 uint16 = 0x0001
	KDFHKDFSHA384 uint16 = 0x0002
	KDFHKDFSHA512 uint16 = 0x0003

	AEADAES128GCM        uint16 = 0x0001
	AEADAES256GCM        uint16 = 0x0002
	AEADChaCha20Poly1305 uint16 = 0x0003
)

// publicKeySize is Npk of each KEM a key configuration may name.
var publicKeySize = map[uint16]int{KEMX25519: 32, KEMMLKEM768X25519: 1216}

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed key set")

// ErrNotValid is wrapped by ValidAt when the key set may not be used at
// the time given.
var ErrNotValid = errors.New("key set not valid now")

// Symmetric is one HPKE symmetric algorithm pair of a key configuration.
type Symmetric struct{ KDF, AEAD uint16 }

// KeyConfig is an Oblivious HTTP key configuration ([RFC 9458] §3.1).
type KeyConfig struct {
	ID        uint8
	KEM       uint16
	PublicKey []byte
	Symmetric []Symmetric
}

// KeySet is an attested key set.
type KeySet struct {
	// NotBefore and NotAfter bound when the key set may be used (whole
	// seconds; the encoding has no finer unit).
	NotBefore, NotAfter time.Time
	// TLSSPKIHash is the SHA-256 of the TLS key's DER
	// SubjectPublicKeyInfo: a client accepts a TLS connection only from
	// a server whose certificate carries that key.
	TLSSPKIHash [32]byte
	// HPKE are the enclave's HPKE key configurations, most preferred
	// first (an Oblivious HTTP client picks the first it supports).
	HPKE []KeyConfig
	// GPUDigest commits to the GPUs' evidence (nil when the enclave has
	// none).
	GPUDigest []byte
}

// SPKIHash is the TLSSPKIHash of a certificate's key.
func SPKIHash(cert *x509.Certificate) [32]byte { return sha256.Sum256(cert.RawSubjectPublicKeyInfo) }

// MarshalKeyConfig encodes c as RFC 9458 §3.1 does.
func MarshalKeyConfig(c KeyConfig) []byte {
	b := []byte{c.ID}
	b = binary.BigEndian.AppendUint16(b, c.KEM)
	b = append(b, c.PublicKey...)
	b = binary.BigEndian.AppendUint16(b, uint16(4*len(c.Symmetric)))
	for _, s := range c.Symmetric {
		b = binary.BigEndian.AppendUint16(b, s.KDF)
		b = binary.BigEndian.AppendUint16(b, s.AEAD)
	}
	return b
}

// MarshalKeyConfigs encodes cs as an application/ohttp-keys body (RFC
// 9458 §3.2): each configuration prefixed by its 2-byte length.
func MarshalKeyConfigs(cs []KeyConfig) []byte {
	var b []byte
	for _, c := range cs {
		e := MarshalKeyConfig(c)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b
}

// ParseKeyConfigs reads an application/ohttp-keys body strictly: known
// KEMs with public keys of their size that crypto/hpke accepts, known
// KDFs and AEADs, at least one and at most MaxSymmetric distinct pairs,
// distinct key identifiers, at most MaxKeyConfigs, nothing left over.
func ParseKeyConfigs(b []byte) ([]KeyConfig, error) {
	var out []KeyConfig
	ids := map[uint8]bool{}
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: a truncated key configuration length", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n > len(b) {
			return nil, fmt.Errorf("%w: key configuration %d is %d bytes, %d remain", ErrMalformed, len(out), n, len(b))
		}
		c, err := parseKeyConfig(b[:n])
		if err != nil {
			return nil, fmt.Errorf("%w: key configuration %d: %v", ErrMalformed, len(out), err)
		}
		if ids[c.ID] {
			return nil, fmt.Errorf("%w: key identifier %d appears twice", ErrMalformed, c.ID)
		}
		ids[c.ID] = true
		out = append(out, c)
		if len(out) > MaxKeyConfigs {
			return nil, fmt.Errorf("%w: more than %d key configurations", ErrMalformed, MaxKeyConfigs)
		}
		b = b[n:]
	}
	return out, nil
}

func parseKeyConfig(b []byte) (KeyConfig, error) {
	if len(b) < 3 {
		return KeyConfig{}, errors.New("shorter than its header")
	}
	c := KeyConfig{ID: b[0], KEM: binary.BigEndian.Uint16(b[1:3])}
	npk, ok := publicKeySize[c.KEM]
	if !ok {
		return KeyConfig{}, fmt.Errorf("KEM 0x%04x is none of X25519 (0x0020) and MLKEM768-X25519 (0x647a)", c.KEM)
	}
	b = b[3:]
	if len(b) < npk+2 {
		return KeyConfig{}, fmt.Errorf("KEM 0x%04x needs a %d-byte public key", c.KEM, npk)
	}
	c.PublicKey = bytes.Clone(b[:npk])
	if err := checkPublicKey(c.KEM, c.PublicKey); err != nil {
		return KeyConfig{}, err
	}
	b = b[npk:]
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n == 0 || n%4 != 0 || n > 4*MaxSymmetric {
		return KeyConfig{}, fmt.Errorf("symmetric algorithms length %d, want a multiple of 4 from 4 to %d", n, 4*MaxSymmetric)
	}
	if n != len(b) {
		return KeyConfig{}, fmt.Errorf("symmetric algorithms length %d, but %d bytes follow", n, len(b))
	}
	seen := map[Symmetric]bool{}
	for i := 0; i < n; i += 4 {
		s := Symmetric{KDF: binary.BigEndian.Uint16(b[i:]), AEAD: binary.BigEndian.Uint16(b[i+2:])}
		if s.KDF < KDFHKDFSHA256 || s.KDF > KDFHKDFSHA512 || s.AEAD < AEADAES128GCM || s.AEAD > AEADChaCha20Poly1305 {
			return KeyConfig{}, fmt.Errorf("unknown KDF 0x%04x or AEAD 0x%04x", s.KDF, s.AEAD)
		}
		if seen[s] {
			return KeyConfig{}, fmt.Errorf("KDF 0x%04x with AEAD 0x%04x appears twice", s.KDF, s.AEAD)
		}
		seen[s] = true
		c.Symmetric = append(c.Symmetric, s)
	}
	return c, nil
}

// checkPublicKey asks crypto/hpke whether pk is a public key of kem.
func checkPublicKey(kem uint16, pk []byte) error {
	k, err := hpke.NewKEM(kem)
	if err != nil {
		return err
	}
	if _, err := k.NewPublicKey(pk); err != nil {
		return fmt.Errorf("public key of KEM 0x%04x: %v", kem, err)
	}
	return nil
}

// Marshal returns the canonical encoding of k, after checking everything
// Parse checks.
func (k *KeySet) Marshal() ([]byte, error) {
	b, err := k.marshalKeys()
	if err != nil {
		return nil, err
	}
	b = append(b, byte(len(k.GPUDigest)))
	b = append(b, k.GPUDigest...)
	if _, err := Parse(b); err != nil {
		return nil, err
	}
	return b, nil
}

// marshalKeys encodes every field before gpu_digest.
func (k *KeySet) marshalKeys() ([]byte, error) {
	if !k.NotBefore.Equal(k.NotBefore.Truncate(time.Second)) || !k.NotAfter.Equal(k.NotAfter.Truncate(time.Second)) {
		return nil, fmt.Errorf("%w: not_before and not_after are whole seconds", ErrMalformed)
	}
	if k.NotBefore.Unix() < 0 || k.NotAfter.Unix() < 0 {
		return nil, fmt.Errorf("%w: times before 1970", ErrMalformed)
	}
	configs := MarshalKeyConfigs(k.HPKE)
	if len(configs) > 0xffff {
		return nil, fmt.Errorf("%w: %d bytes of key configurations", ErrMalformed, len(configs))
	}
	b := []byte{Version}
	b = binary.BigEndian.AppendUint64(b, uint64(k.NotBefore.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(k.NotAfter.Unix()))
	b = append(b, k.TLSSPKIHash[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(configs)))
	return append(b, configs...), nil
}

// Parse reads an encoded key set strictly (see the package
// documentation); every error wraps ErrMalformed.
func Parse(b []byte) (*KeySet, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxSize {
		return nil, bad("%d bytes; the limit is %d", len(b), MaxSize)
	}
	const fixed = 1 + 8 + 8 + 32 + 2
	if len(b) < fixed+1 {
		return nil, bad("%d bytes, shorter than the fixed fields", len(b))
	}
	if b[0] != Version {
		return nil, bad("version %d, want %d", b[0], Version)
	}
	nb, na := binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:17])
	if nb > 1<<62 || na > 1<<62 {
		return nil, bad("times out of range")
	}
	k := &KeySet{NotBefore: time.Unix(int64(nb), 0).UTC(), NotAfter: time.Unix(int64(na), 0).UTC()}
	if na <= nb || time.Duration(na-nb)*time.Second > MaxLifetime {
		return nil, bad("valid from %d to %d; not_after must follow not_before, by at most %v", nb, na, MaxLifetime)
	}
	copy(k.TLSSPKIHash[:], b[17:49])
	n := int(binary.BigEndian.Uint16(b[49:51]))
	rest := b[fixed:]
	if n >= len(rest) {
		return nil, bad("key configurations of %d bytes, %d remain", n, len(rest))
	}
	cs, err := ParseKeyConfigs(rest[:n])
	if err != nil {
		return nil, err
	}
	k.HPKE = cs
	rest = rest[n:]
	g := int(rest[0])
	if g != 0 && g != GPUDigestSize {
		return nil, bad("GPU digest of %d bytes, want 0 or %d", g, GPUDigestSize)
	}
	if len(rest) != 1+g {
		return nil, bad("%d bytes after the key configurations, want %d", len(rest), 1+g)
	}
	if g > 0 {
		k.GPUDigest = bytes.Clone(rest[1:])
	}
	return k, nil
}

// GPUNonceSeed is what the enclave's GPUs answer for this key set: the
// SHA-256 of "attestlog-keyset-gpu-v1" ‖ 0x00 ‖ every encoded field
// before gpu_digest. GPU i answers evidence.GPUNonce(seed, i).
func (k *KeySet) GPUNonceSeed() ([32]byte, error) {
	b, err := k.marshalKeys()
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	h.Write([]byte("attestlog-keyset-gpu-v1\x00"))
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// Digest is the SHA-256 of the encoding: a key set's name in logs and on
// the dashboard.
func Digest(encoded []byte) [32]byte { return sha256.Sum256(encoded) }

// ValidAt reports whether the key set may be used at t: not before
// NotBefore (less skew) and before NotAfter. The error wraps ErrNotValid.
func (k *KeySet) ValidAt(t time.Time, skew time.Duration) error {
	switch {
	case t.Add(skew).Before(k.NotBefore):
		return fmt.Errorf("%w: it is valid from %s, %v from now", ErrNotValid, k.NotBefore.Format(time.RFC3339), k.NotBefore.Sub(t).Round(time.Second))
	case !t.Before(k.NotAfter):
		return fmt.Errorf("%w: it expired at %s, %v ago (fetch the enclave's current attestation document)", ErrNotValid, k.NotAfter.Format(time.RFC3339), t.Sub(k.NotAfter).Round(time.Second))
	}
	return nil
}

// KEMName names an HPKE KEM for people.
func KEMName(id uint16) string {
	switch id {
	case KEMX25519:
		return "X25519"
	case KEMMLKEM768X25519:
		return "MLKEM768-X25519"
	}
	return fmt.Sprintf("KEM 0x%04x", id)
}

// ErrConfigsNotAttested is returned by CheckServedConfigs.
var ErrConfigsNotAttested = errors.New("the served OHTTP key configurations are not the attested key set's")

// CheckServedConfigs is the rule every Oblivious HTTP client of an
// attestlog enclave applies before sealing a byte: the key configurations
// the gateway serves (an application/ohttp-keys body, fetched through the
// relay) must be byte for byte those of the key set a verified document
// commits to. Anything else is a key someone else holds (a relay's, an
// interceptor's). The error wraps ErrConfigsNotAttested.
func (k *KeySet) CheckServedConfigs(served []byte) error {
	if len(k.HPKE) == 0 {
		return fmt.Errorf("%w: the attested key set has no HPKE key (the enclave is no OHTTP gateway)", ErrConfigsNotAttested)
	}
	if !bytes.Equal(served, MarshalKeyConfigs(k.HPKE)) {
		return fmt.Errorf("%w: %d bytes served, and the attested key set commits to other keys", ErrConfigsNotAttested, len(served))
	}
	return nil
}
