package statement

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Key algorithms accepted for statement signatures.
const (
	AlgEd25519   = "ed25519"
	AlgECDSAP256 = "ecdsa-p256"
)

// PublicKey is an operator's or auditor's statement verification key.
//
// Its text form, used in policy files and printed by `attestlog keygen`, is
// "ed25519:BASE64" (the 32-byte key) or "ecdsa-p256:BASE64" (the PKIX
// SubjectPublicKeyInfo DER).
type PublicKey struct {
	key crypto.PublicKey
	id  string
}

func newPublicKey(k crypto.PublicKey) PublicKey {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return PublicKey{key: k}
	}
	h := sha256.Sum256(der)
	return PublicKey{key: k, id: hex.EncodeToString(h[:])}
}

// ID is the DSSE keyid of the key: lowercase hex SHA-256 of its PKIX DER.
func (k PublicKey) ID() string { return k.id }

// String returns the text form of the key.
func (k PublicKey) String() string {
	switch pk := k.key.(type) {
	case ed25519.PublicKey:
		return AlgEd25519 + ":" + base64.StdEncoding.EncodeToString(pk)
	case *ecdsa.PublicKey:
		der, _ := x509.MarshalPKIXPublicKey(pk)
		return AlgECDSAP256 + ":" + base64.StdEncoding.EncodeToString(der)
	}
	return ""
}

// Verify reports whether sig is a valid signature of msg under k.
// Ed25519 signs msg itself; ECDSA P-256 signs SHA-256(msg), ASN.1 encoded.
func (k PublicKey) Verify(msg, sig []byte) bool {
	switch pk := k.key.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(pk, msg, sig)
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(pk, h[:], sig)
	}
	return false
}

// ParsePublicKey parses the text form of a public key.
func ParsePublicKey(s string) (PublicKey, error) {
	alg, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return PublicKey{}, fmt.Errorf("public key %q: want ALG:BASE64 with ALG %s or %s", short(s), AlgEd25519, AlgECDSAP256)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key %q: bad base64: %v", short(s), err)
	}
	switch alg {
	case AlgEd25519:
		if len(raw) != ed25519.PublicKeySize {
			return PublicKey{}, fmt.Errorf("public key %q: ed25519 keys are %d bytes, got %d", short(s), ed25519.PublicKeySize, len(raw))
		}
		return newPublicKey(ed25519.PublicKey(raw)), nil
	case AlgECDSAP256:
		pk, err := x509.ParsePKIXPublicKey(raw)
		if err != nil {
			return PublicKey{}, fmt.Errorf("public key %q: %v", short(s), err)
		}
		ek, ok := pk.(*ecdsa.PublicKey)
		if !ok || ek.Curve != elliptic.P256() {
			return PublicKey{}, fmt.Errorf("public key %q: not an ECDSA P-256 key", short(s))
		}
		return newPublicKey(ek), nil
	}
	return PublicKey{}, fmt.Errorf("public key %q: unknown algorithm %q (want %s or %s)", short(s), alg, AlgEd25519, AlgECDSAP256)
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// Signer signs statements. It is an Ed25519 or ECDSA P-256 private key.
type Signer struct {
	key crypto.Signer
}

// Public returns the verification key of s.
func (s *Signer) Public() PublicKey { return newPublicKey(s.key.Public()) }

// Sign signs msg (Ed25519: msg itself; ECDSA: SHA-256 of msg).
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, k, h[:])
	}
	return nil, errors.New("unsupported key type")
}

// GenerateSigner returns a new random signer of the algorithm alg
// (AlgEd25519 or AlgECDSAP256).
func GenerateSigner(alg string) (*Signer, error) {
	switch alg {
	case AlgEd25519, "":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return &Signer{key: k}, nil
	case AlgECDSAP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return &Signer{key: k}, nil
	}
	return nil, fmt.Errorf("unknown key algorithm %q (want %s or %s)", alg, AlgEd25519, AlgECDSAP256)
}

// MarshalPrivateKey returns the PKCS #8 PEM encoding of s, the format of
// operator and auditor key files.
func (s *Signer) MarshalPrivateKey() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey parses a PKCS #8 PEM private key (Ed25519 or ECDSA P-256).
func ParsePrivateKey(pemBytes []byte) (*Signer, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" (PKCS #8) file; create one with 'attestlog keygen --kind operator'")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS #8 key: %v", err)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return &Signer{key: k}, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("ECDSA keys must be on P-256")
		}
		return &Signer{key: k}, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T (want Ed25519 or ECDSA P-256)", k)
}
