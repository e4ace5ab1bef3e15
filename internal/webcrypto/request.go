// Package webcrypto lets the WebAssembly client verify signatures with the
// platform's WebCrypto (crypto.subtle in browsers and Node), which runs
// native code, instead of Go's pure-Go RSA, ECDSA and Ed25519 compiled to
// WebAssembly — the bulk of a cold decision's time there.
//
// Install (js/wasm only) hooks crypto/x509's checkSignature and
// crypto/ed25519's Verify, which the WebAssembly build adds a hook to
// (npm/overlay/README.md). It holds the decision to what Go's own code
// would decide:
//
//   - WebCrypto is handed only signatures whose checks are the same in
//     both: the same parse of an ECDSA signature's ASN.1 (r and s in
//     range), RSA keys of 2048 to 8192 bits with exponent 65537 and
//     signatures of the modulus' length, Ed25519 signatures with a
//     canonical s under canonical keys (Request says which);
//   - at Install, each algorithm (curve, hash) must answer known answers
//     exactly — a valid signature valid, the same signature with one bit
//     flipped and the message with one bit flipped invalid — or it is not
//     used (Go decides it, as natively, more slowly);
//   - a signature WebCrypto finds valid is valid; any other is decided by
//     Go's code, which words the error as natively; one Go accepts after
//     WebCrypto refused it is refused (the two disagree: fail closed);
//   - without WebCrypto (an http page on another host than localhost has
//     none) or with it turned off, Go's code decides everything.
//
// Under Node the npm package provides globalThis.__attestlogNodeVerify,
// node:crypto's synchronous verify (the OpenSSL under Node's WebCrypto,
// without a promise and a thread-pool round trip per signature); it takes
// WebCrypto's place, self-test included.
package webcrypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Request is one signature verification in WebCrypto's terms.
type Request struct {
	// Class is what the self-test vouches for: the algorithm with its
	// curve and hash ("ECDSA P-384 SHA-384", "RSA-PSS SHA-384", "Ed25519").
	Class string
	// Alg is WebCrypto's algorithm name; Curve its namedCurve (ECDSA),
	// Hash its hash ("SHA-256", …; RSA and ECDSA), SaltLength RSA-PSS's.
	Alg, Curve, Hash string
	SaltLength       int
	// Raw is the public key in WebCrypto's "raw" format (ECDSA: the
	// uncompressed point; Ed25519: the 32 bytes); N and E are an RSA
	// key's modulus and exponent, big-endian (its JWK).
	Raw, N, E []byte
	// Sig is the signature in WebCrypto's encoding (ECDSA: r‖s, each as
	// wide as the curve's order).
	Sig []byte
}

var hashNames = map[crypto.Hash]string{crypto.SHA256: "SHA-256", crypto.SHA384: "SHA-384", crypto.SHA512: "SHA-512"}

// X509 is the Request for crypto/x509's check of signature by pub over a
// message hashed with hash (RSASSA-PSS with a salt as long as the hash
// when pss, as X.509 signs): ok is false when WebCrypto may not decide
// it as Go would, and Go must.
func X509(hash crypto.Hash, pss bool, pub crypto.PublicKey, signature []byte) (r *Request, ok bool) {
	hn, ok := hashNames[hash]
	if !ok {
		return nil, false
	}
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		var curve string
		switch pub.Curve {
		case elliptic.P256():
			curve = "P-256"
		case elliptic.P384():
			curve = "P-384"
		default:
			return nil, false
		}
		sig, ok := ecdsaP1363(pub.Curve.Params().N, signature)
		if !ok {
			return nil, false
		}
		raw, err := pub.Bytes()
		if err != nil {
			return nil, false
		}
		return &Request{Class: "ECDSA " + curve + " " + hn, Alg: "ECDSA", Curve: curve, Hash: hn, Raw: raw, Sig: sig}, true
	case *rsa.PublicKey:
		bits := pub.N.BitLen()
		if bits < 2048 || bits > 8192 || pub.E != 65537 || pub.N.Bit(0) == 0 || len(signature) != (bits+7)/8 {
			return nil, false
		}
		r := &Request{Alg: "RSASSA-PKCS1-v1_5", Hash: hn, N: pub.N.Bytes(), E: big.NewInt(int64(pub.E)).Bytes(), Sig: signature}
		if pss {
			r.Alg, r.SaltLength = "RSA-PSS", hash.Size()
		}
		r.Class = r.Alg + " " + hn
		return r, true
	}
	return nil, false
}

// ecdsaP1363 parses an ASN.1 ECDSA signature as crypto/ecdsa does (DER
// SEQUENCE of two minimally encoded non-negative INTEGERs, nothing
// after) and returns r‖s if both are in [1, n-1] — what Go's verification
// requires before any arithmetic.
func ecdsaP1363(n *big.Int, sig []byte) ([]byte, bool) {
	var inner cryptobyte.String
	var rb, sb []byte
	input := cryptobyte.String(sig)
	if !input.ReadASN1(&inner, asn1.SEQUENCE) || !input.Empty() ||
		!inner.ReadASN1Integer(&rb) || !inner.ReadASN1Integer(&sb) || !inner.Empty() {
		return nil, false
	}
	size := (n.BitLen() + 7) / 8
	out := make([]byte, 2*size)
	for i, b := range [][]byte{rb, sb} {
		v := new(big.Int).SetBytes(b)
		if v.Sign() <= 0 || v.Cmp(n) >= 0 {
			return nil, false
		}
		v.FillBytes(out[i*size : (i+1)*size])
	}
	return out, true
}

// ed25519Order is ℓ = 2^252 + 27742317777372353535851937790883648493,
// little-endian.
var ed25519Order = [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}

// Ed25519 is the Request for crypto/ed25519's Verify of sig by pub: ok is
// false when WebCrypto may not decide it as Go would (a signature that is
// not 64 bytes or whose s is not below ℓ, which Go refuses; a key whose y
// is not canonical, or whose x is zero, which implementations decode
// differently), and Go must.
func Ed25519(pub, sig []byte) (*Request, bool) {
	if len(pub) != 32 || len(sig) != 64 || !lessLE(sig[32:], ed25519Order[:]) || !canonicalKey(pub) {
		return nil, false
	}
	return &Request{Class: "Ed25519", Alg: "Ed25519", Raw: pub, Sig: sig}, true
}

// lessLE reports whether a < b, both little-endian of the same length.
func lessLE(a, b []byte) bool {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// canonicalKey reports whether an Ed25519 key's y (bit 255 cleared) is
// below p = 2^255-19 and is neither 1 nor p-1 (the points with x = 0).
func canonicalKey(pub []byte) bool {
	y := make([]byte, 32)
	copy(y, pub)
	y[31] &= 0x7f
	p := []byte{0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	one := make([]byte, 32)
	one[0] = 1
	pm1 := append([]byte(nil), p...)
	pm1[0]--
	return lessLE(y, p) && string(y) != string(one) && string(y) != string(pm1)
}
