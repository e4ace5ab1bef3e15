//go:build js && wasm && attestlog_overlay

// attestlog's WebAssembly build adds this file to crypto/ed25519 and
// renames ed25519.go's Verify to verifyGo (see npm/overlay/README.md in
// the attestlog repository): checkpoints, cosignatures and statements are
// Ed25519 signatures. Once attestlog's client installs a verifier
// (internal/webcrypto, through attestlogSetVerifier), a signature
// WebCrypto finds valid is valid; any other goes to Go's own code — and
// one Go accepts after WebCrypto refused it is refused (the two disagree:
// fail closed).

package ed25519

import _ "unsafe" // go:linkname

// attestlogVerifier's answers.
const (
	attestlogUnhandled = iota // not a signature it takes: Go decides
	attestlogValid
	attestlogInvalid
)

// attestlogVerifier verifies sig over message by publicKey (32 bytes).
// Nil until the client installs it.
var attestlogVerifier func(publicKey, message, sig []byte) int

// attestlogSetVerifier installs f; it must be called before any
// signature is checked, and once.
//
//go:linkname attestlogSetVerifier
func attestlogSetVerifier(f func(publicKey, message, sig []byte) int) {
	attestlogVerifier = f
}

// Verify reports whether sig is a valid signature of message by publicKey. It
// will panic if len(publicKey) is not [PublicKeySize].
func Verify(publicKey PublicKey, message, sig []byte) bool {
	answer := attestlogUnhandled
	if v := attestlogVerifier; v != nil && len(publicKey) == PublicKeySize {
		answer = v(publicKey, message, sig)
	}
	if answer == attestlogValid {
		return true
	}
	ok := verifyGo(publicKey, message, sig)
	return ok && answer != attestlogInvalid
}
