//go:build js && wasm && attestlog_overlay

// attestlog's WebAssembly build adds this file to crypto/x509 and renames
// x509.go's checkSignature to checkSignatureGo (see npm/overlay/README.md
// in the attestlog repository). Every certificate, CRL and OCSP signature
// check goes through checkSignature. Once attestlog's client installs a
// verifier (internal/webcrypto, through attestlogSetVerifier), a
// signature WebCrypto finds valid is valid; any other goes to Go's own
// code, which decides and words the error exactly as it does natively —
// and a signature Go accepts after WebCrypto refused it is refused (the
// two disagree: fail closed).

package x509

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	_ "unsafe" // go:linkname
)

// attestlogVerifier's answers.
const (
	attestlogUnhandled = iota // not a signature it takes: Go decides
	attestlogValid
	attestlogInvalid
)

// attestlogVerifier verifies signature over signed (the message, not its
// digest) by pub, with hash (and RSASSA-PSS with a salt as long as the
// hash when pss). Nil until the client installs it.
var attestlogVerifier func(hash crypto.Hash, pss bool, pub crypto.PublicKey, signed, signature []byte) int

// attestlogSetVerifier installs f; it must be called before any
// signature is checked, and once.
//
//go:linkname attestlogSetVerifier
func attestlogSetVerifier(f func(hash crypto.Hash, pss bool, pub crypto.PublicKey, signed, signature []byte) int) {
	attestlogVerifier = f
}

func checkSignature(algo SignatureAlgorithm, signed, signature []byte, publicKey crypto.PublicKey, allowSHA1 bool) error {
	answer := attestlogUnhandled
	if v := attestlogVerifier; v != nil {
		for _, d := range signatureAlgorithmDetails {
			if d.algo != algo {
				continue
			}
			switch d.hash {
			case crypto.SHA256, crypto.SHA384, crypto.SHA512:
				switch publicKey.(type) {
				case *rsa.PublicKey:
					if d.pubKeyAlgo == RSA {
						answer = v(d.hash, algo.isRSAPSS(), publicKey, signed, signature)
					}
				case *ecdsa.PublicKey:
					if d.pubKeyAlgo == ECDSA {
						answer = v(d.hash, false, publicKey, signed, signature)
					}
				}
			}
			break
		}
	}
	if answer == attestlogValid {
		return nil
	}
	err := checkSignatureGo(algo, signed, signature, publicKey, allowSHA1)
	if err == nil && answer == attestlogInvalid {
		return errors.New("x509: WebCrypto refused a signature that Go's code accepts; refused")
	}
	return err
}
