package webcrypto

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

//go:generate go run gen.go

// vector is one known answer of the self-test: a signature made by Go's
// crypto (gen.go) that verifies, by a key (DER SubjectPublicKeyInfo), over
// a message hashed with hash (RSASSA-PSS when pss).
type vector struct {
	hash           crypto.Hash
	pss            bool
	spki, msg, sig string // hex
}

// request is v's Request and message.
func (v vector) request() (*Request, []byte, error) {
	der, _ := hex.DecodeString(v.spki)
	msg, _ := hex.DecodeString(v.msg)
	sig, _ := hex.DecodeString(v.sig)
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, nil, err
	}
	var r *Request
	ok := false
	if k, isEd := pub.(ed25519.PublicKey); isEd {
		r, ok = Ed25519(k, sig)
	} else {
		r, ok = X509(v.hash, v.pss, pub, sig)
	}
	if !ok {
		return nil, nil, fmt.Errorf("self-test vector %s: not a request WebCrypto may decide", v.spki[:16])
	}
	return r, msg, nil
}

// tampered returns a copy of b with one bit flipped (in its i-th byte).
func tampered(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}
